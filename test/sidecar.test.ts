// Integration: two sidecars on loopback with real mesh certificates. An app calls another service by
// name through its sidecar; the call crosses mutual TLS, and the receiving sidecar enforces
// PeerAuthentication STRICT and AuthorizationPolicy before its app sees anything.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import { connect as netConnect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { CertificateAuthority } from '../src/core/pki/authority.js';
import { spiffeIdsOfCertificate } from '../src/core/pki/spiffe.js';
import { FileSource } from '../src/core/sources/file-source.js';
import { startSidecar, type RunningSidecar } from '../src/sidecar/main.js';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { fixedIdentity, testAuthority, untilSnapshot, viaProxy, workloadCertificate } from './helpers/mesh.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { NO_APP } from './helpers/ports.js';
import { issueCertificate } from '../src/core/tls/issue-certificate.js';
import { peekClientHello } from '../src/core/tls/client-hello.js';

const SECURITY = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: user-callers, namespace: default}
spec:
  selector: {matchLabels: {app: user-service}}
  rules:
  - from: [{source: {principals: [cluster.local/ns/default/sa/product-service]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-admin, namespace: default}
spec:
  selector: {matchLabels: {app: user-service}}
  action: DENY
  rules:
  - to: [{operation: {paths: [/admin, /admin/*]}}]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: legacy, namespace: default}
spec:
  selector: {matchLabels: {app: legacy}}
  mtls: {mode: PERMISSIVE}
`;

/**
 * An app on one port that speaks plain HTTP and also terminates TLS itself (its own certificate,
 * not the mesh's): what a PERMISSIVE sidecar must pass TLS through to untouched.
 */
async function startDualApp(http: Upstream): Promise<{ port: number; close(): Promise<void> }> {
  const own = issueCertificate({ subjectCN: 'legacy.app.test', dnsNames: ['legacy.app.test'], days: 1, keyType: 'ec' });
  const tls = createTlsServer({ cert: own.certPem, key: own.keyPem }, (s) => s.end('answered by the app over its own TLS\n'));
  const sockets = new Set<Socket>();
  const front = createNetServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    void peekClientHello(socket).then(({ data, hello }) => {
      socket.unshift(data);
      (hello.state === 'not-tls' ? http.server : tls).emit('connection', socket);
    });
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  return {
    port: (front.address() as AddressInfo).port,
    close: () =>
      new Promise((r) => {
        for (const socket of sockets) socket.destroy();
        front.close(() => r());
      }),
  };
}

/** A TLS handshake to `port` offering `alpn`, with or without a client certificate: what came back. */
function tlsExchange(port: number, alpn: string[], cert?: { certChainPem: string; keyPem: string }): Promise<{ handshake: boolean; peerCn?: string; data: string }> {
  return new Promise((resolve) => {
    let handshake = false;
    let peerCn: string | undefined;
    let data = '';
    const s = tlsConnect({ host: '127.0.0.1', port, ALPNProtocols: alpn, rejectUnauthorized: false, ...(cert ? { cert: cert.certChainPem, key: cert.keyPem } : {}) }, () => {
      handshake = true;
      peerCn = String(s.getPeerCertificate().subject?.CN ?? '');
      s.write('GET / HTTP/1.1\r\nhost: legacy\r\nconnection: close\r\n\r\n');
    });
    s.on('data', (d: Buffer) => (data += d.toString()));
    s.on('error', () => undefined);
    s.on('close', () => resolve({ handshake, ...(peerCn !== undefined ? { peerCn } : {}), data }));
  });
}


/** A request straight to a sidecar's inbound port over mTLS with the given certificate. */
function mtlsGet(port: number, cert: { certChainPem: string; keyPem: string; rootCertPem: string }, path: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, headers: { host: 'user-service' }, createConnection: () => tlsConnect({ host: '127.0.0.1', port, cert: cert.certChainPem, key: cert.keyPem, ca: cert.rootCertPem, checkServerIdentity: () => undefined, ALPNProtocols: ['http/1.1'] }) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('sidecars: service to service over mutual TLS', () => {
  let ca: CertificateAuthority;
  let dir: string;
  let userApp: Upstream, outside: Upstream, legacyHttp: Upstream;
  let legacyApp: { port: number; close(): Promise<void> };
  let userSidecar: RunningSidecar, productSidecar: RunningSidecar, strictEgress: RunningSidecar, legacySidecar: RunningSidecar;
  const quiet = pino({ level: 'silent' });
  const common = { statusPort: 0, adminPort: 0, outboundPort: 0, listenHost: '127.0.0.1', accessLog: 'off', logger: quiet, namespace: 'default' };

  before(async () => {
    ca = await testAuthority();
    userApp = await startUpstream('user-app');
    outside = await startUpstream('outside');
    legacyHttp = await startUpstream('legacy-app');
    legacyApp = await startDualApp(legacyHttp);
    dir = await mkdtemp(join(tmpdir(), 'meshgate-sidecar-'));
    await writeFile(join(dir, 'security.yaml'), SECURITY);
    const sidecarLabel = { 'security.istio.io/tlsMode': 'istio' };
    userSidecar = await startSidecar({
      ...common,
      identity: fixedIdentity(ca, 'default', 'user-service'),
      source: new FileSource({ dir }),
      serviceAccount: 'user-service',
      labels: { app: 'user-service' },
      appPort: userApp.port,
      inboundPort: 0,
    });
    productSidecar = await startSidecar({
      ...common,
      identity: fixedIdentity(ca, 'default', 'product-service'),
      source: new FileSource({ dir }),
      serviceAccount: 'product-service',
      labels: { app: 'product-service' },
      appPort: NO_APP,
      inboundPort: 0,
    });
    strictEgress = await startSidecar({
      ...common,
      identity: fixedIdentity(ca, 'default', 'product-service'),
      source: new FileSource({ dir }),
      serviceAccount: 'product-service',
      labels: { app: 'product-service' },
      appPort: NO_APP,
      inboundPort: 0,
      outboundTrafficPolicy: 'REGISTRY_ONLY',
    });
    legacySidecar = await startSidecar({
      ...common,
      identity: fixedIdentity(ca, 'default', 'legacy'),
      source: new FileSource({ dir }),
      serviceAccount: 'legacy',
      labels: { app: 'legacy' },
      appPort: legacyApp.port,
      inboundPort: 0,
    });
    // The services' endpoints are the sidecars' inbound ports, which they chose (port 0).
    await writeFile(
      join(dir, 'services.yaml'),
      serviceYaml('user-service', [{ pod: 'user-0', port: userSidecar.inboundPort, serviceAccount: 'user-service', labels: sidecarLabel }]) +
        '---\n' +
        serviceYaml('legacy', [{ pod: 'legacy-0', port: legacySidecar.inboundPort, serviceAccount: 'legacy', labels: sidecarLabel }]),
    );
    await Promise.all([userSidecar, productSidecar, strictEgress, legacySidecar].map((s) => untilSnapshot(s.holder, (snap) => snap.registry.lookup('legacy.default.svc.cluster.local') !== undefined)));
  });

  after(async () => {
    await Promise.all([userSidecar?.destroy(), productSidecar?.destroy(), strictEgress?.destroy(), legacySidecar?.destroy()]);
    await Promise.all([userApp?.close(), outside?.close(), legacyApp?.close(), legacyHttp?.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  it('carries a call by short name through both sidecars, and the app sees the caller in x-forwarded-client-cert', async () => {
    const r = await viaProxy(productSidecar.outboundPort, 'http://user-service/hello?x=1');
    assert.equal(r.status, 200, r.text);
    const echo = JSON.parse(r.text) as { name: string; url: string; headers: Record<string, string> };
    assert.equal(echo.name, 'user-app');
    assert.equal(echo.url, '/hello?x=1');
    assert.match(echo.headers['x-forwarded-client-cert'] ?? '', /By=spiffe:\/\/cluster\.local\/ns\/default\/sa\/user-service;Hash=[0-9a-f]{64};Subject="[^"]*";URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/product-service/);
    const fqdn = await viaProxy(productSidecar.outboundPort, 'http://user-service.default.svc.cluster.local/x');
    assert.equal(fqdn.status, 200);
  });

  it("refuses to start when its namespace and service account are not its certificate's identity", async () => {
    await assert.rejects(
      startSidecar({
        ...common,
        inboundPort: 0,
        identity: fixedIdentity(ca, 'default', 'product-service'),
        source: new FileSource({ dir }),
        serviceAccount: 'user-service',
        labels: { app: 'user-service' },
        appPort: userApp.port,
      }),
      /refused to start: the workload certificate names spiffe:\/\/cluster\.local\/ns\/default\/sa\/product-service, not namespace default and service account user-service/,
    );
  });

  it('presents the workload certificate with its SPIFFE identity', async () => {
    const client = workloadCertificate(ca, 'default', 'product-service');
    const sans = await new Promise<string[]>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port: userSidecar.inboundPort, cert: client.certChainPem, key: client.keyPem, ca: ca.rootCertPem, checkServerIdentity: () => undefined }, () => {
        resolve(spiffeIdsOfCertificate(s.getPeerCertificate()));
        s.end();
      });
      s.on('error', reject);
    });
    assert.deepEqual(sans, ['spiffe://cluster.local/ns/default/sa/user-service']);
  });

  it('refuses plaintext under STRICT', async () => {
    const outcome = await new Promise<string>((resolve) => {
      const s = netConnect(userSidecar.inboundPort, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nhost: user-service\r\n\r\n'));
      let data = '';
      s.on('data', (d: Buffer) => (data += d.toString()));
      s.on('close', () => resolve(data));
      s.on('error', () => undefined);
    });
    assert.equal(outcome, '', 'no HTTP answer for a plaintext caller');
    assert.equal(userApp.seen.some((e) => e.url === '/plain'), false);
  });

  it('denies a mesh identity the AuthorizationPolicy does not allow, and allows the right one', async () => {
    const stranger = workloadCertificate(ca, 'default', 'stranger');
    const denied = await mtlsGet(userSidecar.inboundPort, stranger, '/who');
    assert.equal(denied.status, 403);
    assert.equal(denied.text, 'RBAC: access denied');
    const allowed = await mtlsGet(userSidecar.inboundPort, workloadCertificate(ca, 'default', 'product-service'), '/who');
    assert.equal(allowed.status, 200);
  });

  it('forwards to the app the normalized path it authorized, not the raw one', async () => {
    const product = workloadCertificate(ca, 'default', 'product-service');
    const r = await mtlsGet(userSidecar.inboundPort, product, '/x/../users/%31?q=%2e');
    assert.equal(r.status, 200, r.text);
    assert.equal((JSON.parse(r.text) as { url: string }).url, '/users/1?q=%2e');
    const sneaky = await mtlsGet(userSidecar.inboundPort, product, '/x/../admin/%75sers');
    assert.equal(sneaky.status, 403);
    assert.equal(userApp.seen.some((e) => e.url.includes('admin')), false);
  });

  it('refuses a client certificate from another mesh root', async () => {
    const other = await testAuthority();
    await assert.rejects(mtlsGet(userSidecar.inboundPort, workloadCertificate(other, 'default', 'product-service'), '/x'));
  });

  it('applies a DENY policy on paths before the ALLOW policy', async () => {
    const r = await viaProxy(productSidecar.outboundPort, 'http://user-service/admin/users');
    assert.equal(r.status, 403);
    assert.equal(r.text, 'RBAC: access denied');
    const r2 = await viaProxy(productSidecar.outboundPort, 'http://user-service/administrator');
    assert.equal(r2.status, 200);
  });

  describe('PERMISSIVE', () => {
    it('lets plaintext in to the app', async () => {
      const r = await new Promise<string>((resolve) => {
        const sock = netConnect(legacySidecar.inboundPort, '127.0.0.1', () => sock.write('GET /plain HTTP/1.1\r\nhost: legacy\r\nconnection: close\r\n\r\n'));
        let data = '';
        sock.on('data', (d: Buffer) => (data += d.toString()));
        sock.on('close', () => resolve(data));
      });
      assert.match(r, /^HTTP\/1\.1 200/);
      assert.equal(legacyHttp.seen.at(-1)?.url, '/plain');
    });

    it('terminates mesh mTLS (istio ALPN) only with a client certificate', async () => {
      const without = await tlsExchange(legacySidecar.inboundPort, ['istio-http/1.1', 'istio', 'http/1.1']);
      assert.equal(without.data, '', 'no answer without a client certificate');
      const seen = legacyHttp.seen.length;
      const withCert = await tlsExchange(legacySidecar.inboundPort, ['istio-http/1.1', 'istio', 'http/1.1'], workloadCertificate(ca, 'default', 'product-service'));
      assert.match(withCert.data, /^HTTP\/1\.1 200/);
      assert.equal(legacyHttp.seen.length, seen + 1);
      assert.match(String(legacyHttp.seen.at(-1)?.headers['x-forwarded-client-cert']), /URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/product-service/);
    });

    it('passes other TLS through to the app, which terminates it with its own certificate', async () => {
      for (const alpn of [[], ['http/1.1'], ['h2', 'http/1.1']]) {
        const r = await tlsExchange(legacySidecar.inboundPort, alpn);
        assert.equal(r.handshake, true, `ALPN ${JSON.stringify(alpn)}`);
        assert.equal(r.peerCn, 'legacy.app.test', 'the app, not the sidecar, answered the handshake');
        assert.equal(r.data, 'answered by the app over its own TLS\n');
      }
    });

    it('is reached by other sidecars over mesh mTLS, their identity forwarded', async () => {
      const r = await viaProxy(productSidecar.outboundPort, 'http://legacy/through-mesh');
      assert.equal(r.status, 200, r.text);
      assert.match(String(legacyHttp.seen.at(-1)?.headers['x-forwarded-client-cert']), /URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/product-service/);
    });
  });

  it('passes hosts outside the mesh through (ALLOW_ANY), and answers 502 with REGISTRY_ONLY', async () => {
    const r = await viaProxy(productSidecar.outboundPort, `http://127.0.0.1:${outside.port}/out`);
    assert.equal(r.status, 200);
    assert.equal((JSON.parse(r.text) as { name: string }).name, 'outside');
    const blocked = await viaProxy(strictEgress.outboundPort, `http://127.0.0.1:${outside.port}/out`);
    assert.equal(blocked.status, 502);
    const inMesh = await viaProxy(strictEgress.outboundPort, 'http://user-service/ok');
    assert.equal(inMesh.status, 200);
  });
});
