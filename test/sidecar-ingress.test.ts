// Integration: a Sidecar resource's ingress listeners on real sockets. A port's traffic goes to its
// defaultEndpoint (another port, a Unix socket) instead of the app's same port; its tls, where
// PeerAuthentication leaves the port DISABLE, is terminated for a plain TLS client outside the mesh
// (SIMPLE) or one whose certificate the listener's caCertificates signed (MUTUAL), and the request
// still reaches the app, counted in the sidecar's metrics. Where PeerAuthentication keeps mTLS on
// the port, the tls block does nothing, as in Istio.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, get as httpGet, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CertificateAuthority } from '../src/core/pki/authority.js';
import { issueCertificate, type IssuedCertificate } from '../src/core/tls/issue-certificate.js';
import { startSidecar, type RunningSidecar } from '../src/sidecar/main.js';
import { sidecarOptions, testAuthority, untilSnapshot, workloadCertificate } from './helpers/mesh.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

// Port numbers named in the configuration only: the sidecars' inbound sides listen on ports the
// system chose, and serve these as the ports their callers dialled.
const EXTERNAL = 9080;
const INTERNAL = 9081;

function sidecarYaml(app: string, listeners: string): string {
  return `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: ingress-${app}, namespace: default}
spec:
  workloadSelector: {labels: {app: ${app}}}
  ingress:
${listeners}---
`;
}

function tlsListener(mode: string, files: { cert: string; key: string; ca?: string }, appPort: number, protocol = 'HTTPS'): string {
  return `  - port: {number: ${EXTERNAL}, protocol: ${protocol}, name: external}
    defaultEndpoint: 127.0.0.1:${appPort}
    tls:
      mode: ${mode}
      serverCertificate: ${files.cert}
      privateKey: ${files.key}
${files.ca ? `      caCertificates: ${files.ca}\n` : ''}`;
}

/** Namespace-wide STRICT, and the external port DISABLE for the given workloads (the task's two policies). */
function peerAuthentication(apps: string[]): string {
  return `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec: {mtls: {mode: STRICT}}
---
${apps
  .map(
    (app) => `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: external-${app}, namespace: default}
spec:
  selector: {matchLabels: {app: ${app}}}
  mtls: {mode: STRICT}
  portLevelMtls: {${EXTERNAL}: {mode: DISABLE}}
---
`,
  )
  .join('')}`;
}

interface Answer {
  readonly status: number;
  readonly text: string;
}

/** HTTPS as a client outside the mesh: trusts `ca`, presents `client` when given. */
function httpsGet(port: number, path: string, ca: string, client?: IssuedCertificate): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, servername: 'httpbin.test.svc.cluster.local', headers: { host: 'httpbin.test.svc.cluster.local' }, ca, agent: false, ...(client ? { cert: client.certPem, key: client.keyPem } : {}) }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Mesh mutual TLS as another sidecar would send it. */
function meshGet(port: number, cert: { certChainPem: string; keyPem: string; rootCertPem: string }, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const connection = (): ReturnType<typeof tlsConnect> => tlsConnect({ host: '127.0.0.1', port, cert: cert.certChainPem, key: cert.keyPem, ca: cert.rootCertPem, checkServerIdentity: () => undefined, ALPNProtocols: ['istio-http/1.1', 'http/1.1'] });
    const req = httpRequest({ host: '127.0.0.1', port, path, headers: { host: 'httpbin' }, createConnection: connection }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A plaintext HTTP request: what came back, or that the connection was closed without an answer. */
function plainGet(port: number): Promise<Answer | 'closed'> {
  return new Promise((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/plain', agent: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', () => resolve('closed'));
    req.end();
  });
}

function metrics(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port, path: '/stats/prometheus' }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve(text));
    }).on('error', reject);
  });
}

describe('Sidecar ingress listeners: defaultEndpoint and TLS terminated in the sidecar', () => {
  let ca: CertificateAuthority;
  let dir: string;
  let app: Upstream;
  let udsApp: ReturnType<typeof createServer>;
  let udsPath: string;
  let exampleCa: IssuedCertificate, otherCa: IssuedCertificate, client: IssuedCertificate, stranger: IssuedCertificate;
  let tcpApp: ReturnType<typeof createNetServer>;
  let tlsTcp: RunningSidecar;
  let internal: RunningSidecar, uds: RunningSidecar, simple: RunningSidecar, mutual: RunningSidecar, strict: RunningSidecar, pooled: RunningSidecar;
  // The pooled workload's app: holds every request until the test lets them go, and counts how many it holds at once.
  let slowApp: Upstream;
  const held: Array<() => void> = [];
  let heldMost = 0;
  let onHeld: (() => void) | undefined;

  before(async () => {
    ca = await testAuthority();
    app = await startUpstream('httpbin');
    slowApp = await startUpstream('slow', (_req, res) => {
      held.push(() => res.end('released'));
      heldMost = Math.max(heldMost, held.length);
      onHeld?.();
      return true;
    });
    dir = await mkdtemp(join(tmpdir(), 'meshgate-sidecar-ingress-'));
    udsPath = join(dir, 'app.sock');
    udsApp = createServer((req, res) => res.end(`over the unix socket ${req.url}`));
    await new Promise<void>((r) => udsApp.listen(udsPath, r));
    // A TCP app: answers what it was sent, in plaintext (the sidecar took the TLS off).
    tcpApp = createNetServer((socket) => socket.once('data', (d: Buffer) => socket.end(`tcp app got ${d.toString()}`)));
    await new Promise<void>((r) => tcpApp.listen(0, '127.0.0.1', r));
    // The task's certificates: a CA, the server's certificate, and a client's, all signed by it.
    exampleCa = issueCertificate({ subjectCN: 'example.com', organization: 'example Inc.', issuer: 'self', isCA: true, days: 1 });
    otherCa = issueCertificate({ subjectCN: 'other.example', issuer: 'self', isCA: true, days: 1 });
    const server = issueCertificate({ subjectCN: 'httpbin.test.svc.cluster.local', dnsNames: ['httpbin.test.svc.cluster.local'], issuer: exampleCa, days: 1 });
    client = issueCertificate({ subjectCN: 'client.test.svc.cluster.local', dnsNames: ['client.test.svc.cluster.local'], issuer: exampleCa, days: 1, extKeyUsage: ['clientAuth'] });
    stranger = issueCertificate({ subjectCN: 'stranger.example', issuer: otherCa, days: 1, extKeyUsage: ['clientAuth'] });
    const certs = join(dir, 'tls');
    await mkdir(certs);
    const files = { cert: join(certs, 'tls.crt'), key: join(certs, 'tls.key'), ca: join(certs, 'ca.crt') };
    await writeFile(files.cert, server.certPem);
    await writeFile(files.key, server.keyPem);
    await writeFile(files.ca, exampleCa.certPem);
    const config = join(dir, 'config');
    await mkdir(config);
    await writeFile(
      join(config, 'mesh.yaml'),
      peerAuthentication(['simple', 'mutual', 'tlstcp']) +
        sidecarYaml('internal', `  - port: {number: ${INTERNAL}, protocol: HTTP, name: internal}\n    defaultEndpoint: 127.0.0.1:${app.port}\n`) +
        sidecarYaml('uds', `  - port: {number: ${INTERNAL}, protocol: HTTP, name: internal}\n    defaultEndpoint: unix://${udsPath}\n`) +
        sidecarYaml('simple', tlsListener('SIMPLE', { cert: files.cert, key: files.key }, app.port)) +
        sidecarYaml('mutual', tlsListener('MUTUAL', files, app.port)) +
        sidecarYaml('strict', tlsListener('SIMPLE', { cert: files.cert, key: files.key }, app.port)) +
        sidecarYaml('tlstcp', tlsListener('SIMPLE', { cert: files.cert, key: files.key }, (tcpApp.address() as AddressInfo).port, 'TLS')) +
        sidecarYaml('pooled', `  - port: {number: ${INTERNAL}, protocol: HTTP, name: internal}\n    defaultEndpoint: 127.0.0.1:${slowApp.port}\n    connectionPool: {tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 1}}\n`),
    );
    const start = (name: string, port: number): Promise<RunningSidecar> => startSidecar({ ...sidecarOptions(ca, config, name, port), metricsPort: 0 });
    [internal, uds, simple, mutual, strict, pooled] = await Promise.all([start('internal', INTERNAL), start('uds', INTERNAL), start('simple', EXTERNAL), start('mutual', EXTERNAL), start('strict', EXTERNAL), start('pooled', INTERNAL)]);
    tlsTcp = await start('tlstcp', EXTERNAL);
    await Promise.all([internal, uds, simple, mutual, strict, pooled, tlsTcp].map((s) => untilSnapshot(s.holder, (snap) => snap.resources.some((r) => r.kind === 'Sidecar'))));
  });

  after(async () => {
    await Promise.all([internal, uds, simple, mutual, strict, pooled, tlsTcp].map((s) => s?.destroy()));
    await new Promise<void>((r) => (tcpApp ? tcpApp.close(() => r()) : r()));
    for (const release of held.splice(0)) release();
    await Promise.all([app?.close(), slowApp?.close()]);
    await new Promise<void>((r) => (udsApp ? udsApp.close(() => r()) : r()));
    await rm(dir, { recursive: true, force: true });
  });

  it('sends a port\'s mesh traffic to its defaultEndpoint instead of the app\'s same port', async () => {
    const r = await meshGet(internal.inboundPort, workloadCertificate(ca, 'default', 'sleep'), '/status/200');
    assert.equal(r.status, 200, r.text);
    assert.equal((JSON.parse(r.text) as { name: string }).name, 'httpbin');
  });

  it('reaches an app on a Unix domain socket (defaultEndpoint unix:///path)', async () => {
    const r = await meshGet(uds.inboundPort, workloadCertificate(ca, 'default', 'sleep'), '/via-uds');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.text, 'over the unix socket /via-uds');
  });

  it('SIMPLE: a plain TLS client outside the mesh gets through with the given certificate, and the app sees https', async () => {
    const r = await httpsGet(simple.inboundPort, '/status/200', exampleCa.certPem);
    assert.equal(r.status, 200, r.text);
    const echo = JSON.parse(r.text) as { name: string; url: string; headers: Record<string, string> };
    assert.equal(echo.name, 'httpbin');
    assert.equal(echo.url, '/status/200');
    assert.equal(echo.headers['x-forwarded-proto'], 'https');
    assert.equal(echo.headers['x-forwarded-client-cert'], undefined);
  });

  it('SIMPLE: plaintext on the port is closed', async () => {
    assert.equal(await plainGet(simple.inboundPort), 'closed');
  });

  it('MUTUAL: a client certificate signed by caCertificates gets through, and the app sees it in XFCC', async () => {
    const r = await httpsGet(mutual.inboundPort, '/headers', exampleCa.certPem, client);
    assert.equal(r.status, 200, r.text);
    const echo = JSON.parse(r.text) as { headers: Record<string, string> };
    assert.match(echo.headers['x-forwarded-client-cert'] ?? '', /^By=spiffe:\/\/cluster\.local\/ns\/default\/sa\/mutual;Hash=[0-9a-f]{64};Subject="[^"]*CN=client\.test\.svc\.cluster\.local[^"]*";DNS=client\.test\.svc\.cluster\.local$/);
  });

  it('MUTUAL: no client certificate, or one another CA signed, is refused', async () => {
    await assert.rejects(httpsGet(mutual.inboundPort, '/x', exampleCa.certPem));
    await assert.rejects(httpsGet(mutual.inboundPort, '/x', exampleCa.certPem, stranger));
  });

  it('records the terminated requests in the sidecar\'s metrics, as the destination, for the dialled port', async () => {
    const text = await metrics(mutual.metricsPort);
    const line = text.split('\n').find((l) => l.startsWith('istio_requests_total{') && l.includes('reporter="destination"') && l.includes('response_code="200"'));
    assert.ok(line, text);
    assert.match(line, / [1-9]\d*$/);
  });

  it('does nothing with tls where PeerAuthentication keeps mutual TLS on the port (STRICT): mesh mTLS only', async () => {
    await assert.rejects(httpsGet(strict.inboundPort, '/x', exampleCa.certPem));
    const r = await meshGet(strict.inboundPort, workloadCertificate(ca, 'default', 'sleep'), '/mesh');
    assert.equal(r.status, 200, r.text);
  });

  it('a mesh client on the terminating port is served with the listener\'s certificate, not the mesh\'s', async () => {
    const peerCn = await new Promise<string>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port: simple.inboundPort, ca: exampleCa.certPem, servername: 'httpbin.test.svc.cluster.local' }, () => {
        resolve(String(s.getPeerCertificate().subject?.CN ?? ''));
        s.end();
      });
      s.on('error', reject);
    });
    assert.equal(peerCn, 'httpbin.test.svc.cluster.local');
  });

  it('keeps to the listener\'s connectionPool towards the app: one connection, one request waiting, the next 503 UO', async () => {
    const cert = workloadCertificate(ca, 'default', 'sleep');
    const first = new Promise<void>((r) => (onHeld = r));
    const a = meshGet(pooled.inboundPort, cert, '/a');
    await first;
    // The app holds /a: of the next two, one waits for the connection and the other overflows at once.
    const b = meshGet(pooled.inboundPort, cert, '/b');
    const c = meshGet(pooled.inboundPort, cert, '/c');
    const overflowed = await Promise.race([b, c]);
    assert.equal(overflowed.status, 503);
    assert.match(overflowed.text, /reset reason: overflow/);
    // From now on the app answers at once; the waiting request gets the connection after /a.
    onHeld = () => held.splice(0).forEach((release) => release());
    onHeld();
    assert.equal((await a).status, 200);
    assert.deepEqual([(await b).status, (await c).status].sort(), [200, 503]);
    assert.equal(heldMost, 1);
  });

  it('a TLS port: the sidecar terminates the client\'s TLS and the app gets the bytes as TCP', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      let text = '';
      const s = tlsConnect({ host: '127.0.0.1', port: tlsTcp.inboundPort, ca: exampleCa.certPem, servername: 'httpbin.test.svc.cluster.local' }, () => s.write('ping'));
      s.on('data', (d: Buffer) => (text += d.toString()));
      s.on('end', () => resolve(text));
      s.on('error', reject);
    });
    assert.equal(answer, 'tcp app got ping');
  });
});
