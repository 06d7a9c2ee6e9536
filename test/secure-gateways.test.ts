// Istio's "Secure Gateways" task at the ingress gateway, with the task's own openssl commands for
// the certificates and curl as the client, its YAML unchanged (test/fixtures/istio-tasks/secure-gateways/).
// credentialName is a folder of --certs holding what the task's `kubectl create secret` holds
// (tls.crt, tls.key, and ca.crt for mutual TLS, or ca.crt in `<name>-cacert`). Outputs compared with
// the task's: the teapot for /status/418 over TLS, a second host with its own certificate on the same
// port, and under MUTUAL curl's `tlsv13 alert certificate required` without a client certificate.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { startHttpbin, type Httpbin } from './helpers/httpbin.js';
import { repoPath } from './helpers/route-table.js';
import { untilServed } from './helpers/task-mesh.js';

const task = (file: string): Promise<string> => readFile(repoPath(`test/fixtures/istio-tasks/secure-gateways/${file}`), 'utf8');
const run = (cmd: string, args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> =>
  new Promise((resolve) => execFile(cmd, args, { cwd, timeout: 30_000 }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })));

describe('Secure Gateways', () => {
  let work: string;
  let certs: string;
  let httpbin: Httpbin, helloworld: Httpbin;
  let gw: TestGateway;
  let httpbinVs: string;

  /** The task's curl: `--resolve` the host to the gateway, trust example_certs1's root. */
  const curl = (host: string, path: string, extra: string[] = []) =>
    run('curl', ['-sS', '-v', `-HHost:${host}`, '--resolve', `${host}:${gw.port}:127.0.0.1`, '--cacert', 'example_certs1/example.com.crt', ...extra, `https://${host}:${gw.port}${path}`], work);
  const apply = async (yaml: string): Promise<void> => {
    await gw.write('task.yaml', yaml);
    await untilServed(gw.gw.holder, yaml);
  };
  const credential = async (name: string, files: Record<string, string>): Promise<void> => {
    await mkdir(join(certs, name), { recursive: true });
    for (const [to, from] of Object.entries(files)) await copyFile(join(work, from), join(certs, name, to));
  };

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'meshgate-secure-gw-'));
    certs = join(work, 'certs');
    await mkdir(join(work, 'example_certs1'));
    const openssl = async (...args: string[]): Promise<void> => assert.equal((await run('openssl', args, work)).code, 0);
    await openssl('req', '-x509', '-sha256', '-nodes', '-days', '365', '-newkey', 'rsa:2048', '-subj', '/O=example Inc./CN=example.com', '-keyout', 'example_certs1/example.com.key', '-out', 'example_certs1/example.com.crt');
    for (const [name, org, serial] of [['httpbin.example.com', 'httpbin organization', '0'], ['helloworld.example.com', 'helloworld organization', '1'], ['client.example.com', 'client organization', '1']] as const) {
      await openssl('req', '-out', `example_certs1/${name}.csr`, '-newkey', 'rsa:2048', '-nodes', '-keyout', `example_certs1/${name}.key`, '-subj', `/CN=${name}/O=${org}`);
      await openssl('x509', '-req', '-sha256', '-days', '365', '-CA', 'example_certs1/example.com.crt', '-CAkey', 'example_certs1/example.com.key', '-set_serial', serial, '-in', `example_certs1/${name}.csr`, '-out', `example_certs1/${name}.crt`);
    }
    await credential('httpbin-credential', { 'tls.key': 'example_certs1/httpbin.example.com.key', 'tls.crt': 'example_certs1/httpbin.example.com.crt' });
    await credential('helloworld-credential', { 'tls.key': 'example_certs1/helloworld.example.com.key', 'tls.crt': 'example_certs1/helloworld.example.com.crt' });
    httpbin = await startHttpbin();
    helloworld = await startHttpbin();
    const services = serviceYaml('httpbin', [{ pod: 'httpbin-0', port: httpbin.port }], { port: 8000 }) + '---\n' + serviceYaml('helloworld', [{ pod: 'helloworld-0', port: helloworld.port }], { port: 5000 });
    gw = await startTestGateway({ 'services.yaml': services }, { gatewayPort: 443, certsDir: certs });
    const simple = await task('simple.yaml');
    httpbinVs = simple.slice(simple.indexOf('apiVersion', simple.indexOf('---')));
    await apply(simple);
  });
  after(async () => {
    await gw?.close();
    await Promise.all([httpbin?.close(), helloworld?.close()]);
    await rm(work, { recursive: true, force: true });
  });

  it('one host: 418 and the teapot over TLS, the certificate httpbin.example.com\'s', async () => {
    const r = await curl('httpbin.example.com', '/status/418');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /-=\[ teapot \]=-/);
    assert.match(r.stderr, /< HTTP\/2 418/);
    assert.match(r.stderr, /subject: CN=httpbin\.example\.com; O=httpbin organization/);
  });

  it('two hosts on 443, each with its own credential', async () => {
    await apply(`${await task('multiple-hosts.yaml')}---\n${httpbinVs}`);
    const hello = await curl('helloworld.example.com', '/hello');
    assert.equal(hello.code, 0, hello.stderr);
    assert.match(hello.stderr, /< HTTP\/2 200/);
    assert.match(hello.stderr, /subject: CN=helloworld\.example\.com/);
    assert.deepEqual(helloworld.paths, ['/hello']);
    assert.match((await curl('httpbin.example.com', '/status/418')).stdout, /-=\[ teapot \]=-/);
  });

  it('MUTUAL with ca.crt in the credential: no client certificate is refused, the task\'s client certificate gets the teapot', async () => {
    await credential('httpbin-credential', { 'ca.crt': 'example_certs1/example.com.crt' });
    await apply(`${await task('mutual.yaml')}---\n${httpbinVs}`);
    const refused = await curl('httpbin.example.com', '/status/418');
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /alert certificate required/);
    const ok = await curl('httpbin.example.com', '/status/418', ['--cert', 'example_certs1/client.example.com.crt', '--key', 'example_certs1/client.example.com.key']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /-=\[ teapot \]=-/);
  });
});
