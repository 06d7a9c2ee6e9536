// TLS session resumption at the edge under `meshgate gateway --workers 2`: the primary hands both
// workers the same ticket keys, so a session from the first connection resumes on every later one,
// whichever worker node:cluster gives it to (it alternates them); a session never resumes on another
// Gateway server of the port (one that requires client certificates, say); and
// `--tls-session-tickets off` turns resumption off.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type ConnectionOptions } from 'node:tls';
import { issueCertificate } from '../src/core/tls/issue-certificate.js';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { startWorkersGateway, type WorkersGateway } from './helpers/gateway-workers.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { writeCredential } from './helpers/credentials.js';

const root = issueCertificate({ subjectCN: 'tickets test root', isCA: true, issuer: 'self', days: 30, keyType: 'ec' });
const clientRoot = issueCertificate({ subjectCN: 'tickets client root', isCA: true, issuer: 'self', days: 30, keyType: 'ec' });
const client = issueCertificate({ subjectCN: 'client', dnsNames: ['client.example.com'], issuer: clientRoot, days: 30, keyType: 'ec' });

interface Visit {
  readonly reused: boolean;
  readonly status: string;
  /** The newest session the server gave (a ticket), to resume with. */
  readonly session: Buffer | undefined;
}

/** One HTTPS request on a new TLS connection, offering `session` when given. */
function visit(port: number, servername: string, session?: Buffer, extra: ConnectionOptions = {}): Promise<Visit> {
  return new Promise((resolve, reject) => {
    let reused = false;
    let latest: Buffer | undefined;
    let text = '';
    const s = connect({ host: '127.0.0.1', port, servername, ca: root.certPem, ALPNProtocols: ['http/1.1'], ...(session ? { session } : {}), ...extra });
    s.on('session', (b: Buffer) => (latest = b));
    s.once('secureConnect', () => {
      reused = s.isSessionReused();
      s.write(`GET / HTTP/1.1\r\nHost: ${servername}\r\nConnection: close\r\n\r\n`);
    });
    s.setEncoding('utf8').on('data', (d: string) => (text += d));
    s.once('end', () => resolve({ reused, status: text.slice(9, 12), session: latest }));
    s.once('error', reject);
  });
}

const serverPem = (host: string) => issueCertificate({ subjectCN: host, dnsNames: [host], issuer: root, days: 30, keyType: 'ec' });

describe('gateway --workers 2: TLS session tickets', { timeout: 120_000 }, () => {
  let dir: string;
  let app: Upstream;
  let on: WorkersGateway;
  let off: WorkersGateway;
  let onPort: number;
  let offPort: number;

  before(async () => {
    app = await startUpstream('app');
    dir = await mkdtemp(join(tmpdir(), 'meshgate-tickets-'));
    const certs = join(dir, 'certs');
    const config = join(dir, 'config');
    await mkdir(config);
    await writeCredential(certs, 'open-cert', serverPem('open.example.com'));
    await writeCredential(certs, 'mutual-cert', serverPem('mutual.example.com'), clientRoot.certPem);
    await writeFile(join(config, 'svc.yaml'), serviceYaml('app', [{ pod: 'app-0', port: app.port }]));
    await writeFile(
      join(config, 'edge.yaml'),
      `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https-open, protocol: HTTPS}
    hosts: [open.example.com]
    tls: {mode: SIMPLE, credentialName: open-cert}
  - port: {number: 443, name: https-mutual, protocol: HTTPS}
    hosts: [mutual.example.com]
    tls: {mode: MUTUAL, credentialName: mutual-cert}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app}
spec:
  hosts: [open.example.com, mutual.example.com]
  gateways: [edge]
  http:
  - route: [{destination: {host: app}}]
`,
    );
    // The last --ports wins over the helper's own: only the HTTPS port listens, on a port of its choosing.
    on = await startWorkersGateway(config, 2, ['--certs', certs, '--ports', '443=0']);
    off = await startWorkersGateway(config, 2, ['--certs', certs, '--ports', '443=0', '--tls-session-tickets', 'off']);
    onPort = on.ports['443']!;
    offPort = off.ports['443']!;
  });

  after(async () => {
    on?.kill();
    off?.kill();
    await app.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('resumes one session on every new connection, on both workers', async () => {
    const first = await visit(onPort, 'open.example.com');
    assert.equal(first.status, '200');
    assert.equal(first.reused, false);
    assert.ok(first.session, 'the server sent a session ticket');
    // Connections alternate between the two workers: with keys per worker, every other one would
    // be a full handshake.
    let session = first.session;
    for (let i = 0; i < 8; i++) {
      const again = await visit(onPort, 'open.example.com', session);
      assert.equal(again.status, '200');
      assert.equal(again.reused, true, `connection ${i + 2} did not resume`);
      session = again.session ?? session;
    }
    // The first ticket still works too: tickets are not single-use.
    assert.equal((await visit(onPort, 'open.example.com', first.session)).reused, true);
  });

  it('never resumes a session on another server of the port (one that requires a client certificate)', async () => {
    const open = await visit(onPort, 'open.example.com');
    // Without a client certificate the MUTUAL server refuses the handshake, ticket or not.
    await assert.rejects(visit(onPort, 'mutual.example.com', open.session));
    const mutual = await visit(onPort, 'mutual.example.com', open.session, { cert: client.certPem, key: client.keyPem });
    assert.equal(mutual.status, '200');
    assert.equal(mutual.reused, false, 'a session of the SIMPLE server resumed on the MUTUAL one');
  });

  it('with --tls-session-tickets off, every connection is a full handshake', async () => {
    const first = await visit(offPort, 'open.example.com');
    assert.equal(first.status, '200');
    for (let i = 0; i < 4; i++) assert.equal((await visit(offPort, 'open.example.com', first.session)).reused, false);
  });
});
