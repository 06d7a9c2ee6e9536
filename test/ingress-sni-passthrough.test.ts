// Istio's "Ingress Gateway without TLS Termination" task: the gateway routes TLS by SNI to an HTTPS
// server (a stand-in for the task's nginx, with the task's openssl certificates) without terminating
// it. Its YAML unchanged (test/fixtures/istio-tasks/ingress-sni-passthrough/); curl as in the task
// sees nginx's own certificate and answer; an SNI the gateway does not pass through gets no TLS.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { repoPath } from './helpers/route-table.js';
import { untilServed } from './helpers/task-mesh.js';

const run = (cmd: string, args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> =>
  new Promise((resolve) => execFile(cmd, args, { cwd, timeout: 30_000 }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })));

const WELCOME = '<!DOCTYPE html>\n<html>\n<head>\n<title>Welcome to nginx!</title>\n</head>\n</html>\n';

describe('Ingress Gateway without TLS Termination', () => {
  let work: string;
  let nginx: Server;
  let gw: TestGateway;
  const curl = (host: string) => run('curl', ['-sS', '-v', '--resolve', `${host}:${gw.port}:127.0.0.1`, '--cacert', 'example_certs/example.com.crt', `https://${host}:${gw.port}`], work);

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'meshgate-sni-'));
    await mkdir(join(work, 'example_certs'));
    const openssl = async (...args: string[]): Promise<void> => assert.equal((await run('openssl', args, work)).code, 0);
    await openssl('req', '-x509', '-sha256', '-nodes', '-days', '365', '-newkey', 'rsa:2048', '-subj', '/O=example Inc./CN=example.com', '-keyout', 'example_certs/example.com.key', '-out', 'example_certs/example.com.crt');
    await openssl('req', '-out', 'example_certs/nginx.example.com.csr', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'example_certs/nginx.example.com.key', '-subj', '/CN=nginx.example.com/O=some organization');
    await openssl('x509', '-req', '-sha256', '-days', '365', '-CA', 'example_certs/example.com.crt', '-CAkey', 'example_certs/example.com.key', '-set_serial', '0', '-in', 'example_certs/nginx.example.com.csr', '-out', 'example_certs/nginx.example.com.crt');
    const [cert, key] = await Promise.all([readFile(join(work, 'example_certs/nginx.example.com.crt')), readFile(join(work, 'example_certs/nginx.example.com.key'))]);
    nginx = createServer({ cert, key }, (_req, res) => res.writeHead(200, { server: 'nginx/1.27.0', 'content-type': 'text/html' }).end(WELCOME));
    await new Promise<void>((r) => nginx.listen(0, '127.0.0.1', r));
    const service = serviceYaml('my-nginx', [{ pod: 'my-nginx-0', port: (nginx.address() as AddressInfo).port }], { port: 443, portName: 'https' });
    gw = await startTestGateway({ 'services.yaml': service }, { gatewayPort: 443 });
    const yaml = await readFile(repoPath('test/fixtures/istio-tasks/ingress-sni-passthrough/gateway.yaml'), 'utf8');
    await gw.write('task.yaml', yaml);
    await untilServed(gw.gw.holder, yaml);
  });
  after(async () => {
    await gw?.close();
    nginx?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('curl reaches nginx through the gateway: nginx\'s certificate, nginx\'s answer', async () => {
    const r = await curl('nginx.example.com');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /subject: CN=nginx\.example\.com; O=some organization/);
    assert.match(r.stderr, /< server: nginx/i);
    assert.match(r.stdout, /<title>Welcome to nginx!<\/title>/);
  });

  it('another SNI is not passed through: the handshake fails', async () => {
    const r = await run('curl', ['-sS', '--resolve', `other.example.com:${gw.port}:127.0.0.1`, '--cacert', 'example_certs/example.com.crt', `https://other.example.com:${gw.port}`], work);
    assert.equal(r.code, 35, r.stderr);
  });
});
