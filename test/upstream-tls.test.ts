// Integration: TLS from the gateway to its upstreams, on real sockets. Istio mutual TLS to endpoints
// with a sidecar (auto mTLS, or ISTIO_MUTUAL in a DestinationRule) presenting the gateway's SPIFFE
// certificate and checking the server's; DestinationRule DISABLE, SIMPLE and MUTUAL; identity
// rotation without breaking pooled connections; HTTP/2 (gRPC) ports over mTLS.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestGateway, eventually, accessLogLine, type Reply, type TestGateway } from './helpers/gateway.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { gatewayYaml } from './helpers/cluster-yaml.js';
import { issueCertificate } from '../src/core/tls/issue-certificate.js';
import { ManualIdentity, meshServiceYaml, newRoot, startTlsUpstream, workloadCertificate, type Pem, type TlsSeen, type TlsUpstream } from './helpers/mesh-tls.js';

const GATEWAY_ID = 'spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account';
const spiffe = (ns: string, sa: string): string => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;

function vs(name: string, host: string, destination: string, port?: number): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}, namespace: default}
spec:
  hosts: [${host}]
  gateways: [gw]
  http:
  - route: [{destination: {host: ${destination}${port ? `, port: {number: ${port}}` : ''}}}]
`;
}

function dr(name: string, host: string, tls: string): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${name}, namespace: default}
spec:
  host: ${host}
  trafficPolicy:
    tls: ${tls}
`;
}

function peerAuthentication(app: string, mtls: string, portLevelMtls?: string): string {
  return `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ${app}, namespace: default}
spec:
  selector: {matchLabels: {app: ${app}}}
  mtls: ${mtls}${portLevelMtls ? `\n  portLevelMtls: ${portLevelMtls}` : ''}
`;
}

function serviceEntry(name: string, host: string, port: number): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: default}
spec:
  hosts: [${host}]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.1, ports: {http: ${port}}}]
`;
}

describe('upstream TLS', () => {
  let meshRoot: Pem, otherRoot: Pem, extRoot: Pem, clientRoot: Pem;
  let identity: ManualIdentity;
  let reviews: TlsUpstream, foreign: TlsUpstream, grpc: TlsUpstream, rotating: TlsUpstream, external: TlsUpstream, mutualExternal: TlsUpstream;
  let plain: Upstream;
  let gw: TestGateway, bare: TestGateway;
  let dir: string, logFile: string, bareLogFile: string;

  const body = (r: Reply): TlsSeen => r.json<TlsSeen>();
  const logLine = accessLogLine;

  before(async () => {
    meshRoot = newRoot('mesh root');
    otherRoot = newRoot('another mesh root');
    extRoot = newRoot('external root');
    clientRoot = newRoot('external client root');
    identity = new ManualIdentity(workloadCertificate(meshRoot, GATEWAY_ID));

    reviews = await startTlsUpstream('reviews', { cert: workloadCertificate(meshRoot, spiffe('default', 'reviews')), clientCa: meshRoot.certPem });
    foreign = await startTlsUpstream('foreign', { cert: workloadCertificate(otherRoot, spiffe('default', 'foreign')), clientCa: meshRoot.certPem });
    grpc = await startTlsUpstream('grpc', { cert: workloadCertificate(meshRoot, spiffe('default', 'grpc')), clientCa: meshRoot.certPem, h2: true });
    rotating = await startTlsUpstream('rotating', { cert: workloadCertificate(meshRoot, spiffe('default', 'rotating')), clientCa: meshRoot.certPem });
    external = await startTlsUpstream('external', { cert: issueCertificate({ subjectCN: 'api.external.test', dnsNames: ['api.external.test', 'edition.external.test'], issuer: extRoot, days: 1, keyType: 'ec' }) });
    mutualExternal = await startTlsUpstream('mutual', {
      cert: issueCertificate({ subjectCN: 'mtls.external.test', dnsNames: ['mtls.external.test'], issuer: extRoot, days: 1, keyType: 'ec' }),
      clientCa: clientRoot.certPem,
    });
    plain = await startUpstream('plain');

    dir = await mkdtemp(join(tmpdir(), 'meshgate-upstream-tls-'));
    const certs = join(dir, 'certs');
    await mkdir(join(certs, 'ext-client'), { recursive: true });
    const client = issueCertificate({ subjectCN: 'gateway client', issuer: clientRoot, days: 1, keyType: 'ec', extKeyUsage: ['clientAuth'] });
    await writeFile(join(certs, 'ext-client', 'tls.crt'), client.certPem);
    await writeFile(join(certs, 'ext-client', 'tls.key'), client.keyPem, { mode: 0o600 });
    await writeFile(join(certs, 'ext-client', 'ca.crt'), extRoot.certPem);
    const caFile = join(dir, 'external-ca.pem');
    await writeFile(caFile, extRoot.certPem);
    const fileClient = issueCertificate({ subjectCN: 'file client', issuer: clientRoot, days: 1, keyType: 'ec', extKeyUsage: ['clientAuth'] });
    await writeFile(join(dir, 'client.crt'), fileClient.certPem);
    await writeFile(join(dir, 'client.key'), fileClient.keyPem, { mode: 0o600 });

    const files: Record<string, string> = {
      'gw.yaml': gatewayYaml(['*']),
      'reviews.yaml': meshServiceYaml('reviews', reviews.port, { sa: 'reviews' }) + '---\n' + vs('reviews', 'reviews.example.com', 'reviews'),
      // The pod runs as `ratings`, but the server behind it presents the reviews identity.
      'impostor.yaml': meshServiceYaml('impostor', reviews.port, { sa: 'ratings' }) + '---\n' + vs('impostor', 'impostor.example.com', 'impostor'),
      'foreign.yaml': meshServiceYaml('foreign', foreign.port, { sa: 'foreign' }) + '---\n' + vs('foreign', 'foreign.example.com', 'foreign'),
      'disabled.yaml':
        meshServiceYaml('disabled', plain.port, { sa: 'disabled' }) + '---\n' + vs('disabled', 'disabled.example.com', 'disabled') + '---\n' + dr('disabled', 'disabled', '{mode: DISABLE}'),
      'legacy.yaml': meshServiceYaml('legacy', plain.port, { sa: 'legacy' }) + '---\n' + vs('legacy', 'legacy.example.com', 'legacy'),
      // Sidecars whose PeerAuthentication turns mTLS off: for the whole workload, or on one port only.
      'pa-disabled.yaml': [
        meshServiceYaml('pa-off', plain.port, { sa: 'pa-off' }),
        vs('pa-off', 'pa-off.example.com', 'pa-off'),
        peerAuthentication('pa-off', '{mode: DISABLE}'),
        meshServiceYaml('pa-port', plain.port, { sa: 'pa-port' }),
        vs('pa-port', 'pa-port.example.com', 'pa-port'),
        peerAuthentication('pa-port', '{mode: STRICT}', `{${plain.port}: {mode: DISABLE}}`),
        meshServiceYaml('pa-other-port', reviews.port, { sa: 'reviews' }),
        vs('pa-other-port', 'pa-other-port.example.com', 'pa-other-port'),
        peerAuthentication('pa-other-port', '{mode: PERMISSIVE}', `{${plain.port}: {mode: DISABLE}}`),
      ].join('---\n'),
      'explicit.yaml':
        meshServiceYaml('explicit', reviews.port, { sa: 'reviews', sidecar: false }) +
        '---\n' +
        vs('explicit', 'explicit.example.com', 'explicit') +
        '---\n' +
        dr('explicit', 'explicit', `{mode: ISTIO_MUTUAL, subjectAltNames: ['${spiffe('default', 'reviews')}']}`),
      'grpc.yaml':
        meshServiceYaml('grpc-svc', grpc.port, { sa: 'grpc', portName: 'grpc', servicePort: 50051 }) +
        '---\n' +
        vs('grpc', 'grpc.example.com', 'grpc-svc') +
        '---\n' +
        meshServiceYaml('grpc-impostor', grpc.port, { sa: 'other', portName: 'grpc', servicePort: 50051 }) +
        '---\n' +
        vs('grpc-impostor', 'grpc-impostor.example.com', 'grpc-impostor'),
      'rotating.yaml': meshServiceYaml('rotating', rotating.port, { sa: 'rotating' }) + '---\n' + vs('rotating', 'rotating.example.com', 'rotating'),
      'external.yaml': [
        serviceEntry('api', 'api.external.test', external.port),
        vs('api', 'api.external.test', 'api.external.test'),
        dr('api', 'api.external.test', `{mode: SIMPLE, caCertificates: ${caFile}}`),
        serviceEntry('wrong', 'wrong.external.test', external.port),
        vs('wrong', 'wrong.external.test', 'wrong.external.test'),
        dr('wrong', 'wrong.external.test', `{mode: SIMPLE, caCertificates: ${caFile}}`),
        serviceEntry('named', 'named.external.test', external.port),
        vs('named', 'named.example.com', 'named.external.test'),
        dr('named', 'named.external.test', `{mode: SIMPLE, sni: api.external.test, caCertificates: ${caFile}}`),
        serviceEntry('public', 'public.external.test', external.port),
        vs('public', 'public.external.test', 'public.external.test'),
        dr('public', 'public.external.test', '{mode: SIMPLE}'),
        // Istio's egress TLS origination task: the app sends plain HTTP to port 80, which the
        // ServiceEntry maps to 443 (targetPort) and the DestinationRule's port 80 turns into TLS.
        `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: edition, namespace: default}
spec:
  hosts: [edition.external.test]
  ports:
  - {number: 80, name: http-port, protocol: HTTP, targetPort: ${external.port}}
  - {number: 443, name: https-port, protocol: HTTPS}
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
`,
        vs('edition', 'edition.external.test', 'edition.external.test', 80),
        `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: edition, namespace: default}
spec:
  host: edition.external.test
  trafficPolicy:
    portLevelSettings:
    - port: {number: 80}
      tls: {mode: SIMPLE, caCertificates: ${caFile}}
`,
        serviceEntry('mtls', 'mtls.external.test', mutualExternal.port),
        vs('mtls', 'mtls.external.test', 'mtls.external.test'),
        dr('mtls', 'mtls.external.test', '{mode: MUTUAL, credentialName: ext-client}'),
        serviceEntry('mtls-files', 'files.external.test', mutualExternal.port),
        vs('mtls-files', 'files.example.com', 'files.external.test'),
        dr(
          'mtls-files',
          'files.external.test',
          `{mode: MUTUAL, sni: mtls.external.test, clientCertificate: ${join(dir, 'client.crt')}, privateKey: ${join(dir, 'client.key')}, caCertificates: ${caFile}}`,
        ),
      ].join('---\n'),
    };
    logFile = join(dir, 'access.log');
    bareLogFile = join(dir, 'bare-access.log');
    gw = await startTestGateway(files, { identity, certsDir: certs, accessLog: logFile });
    bare = await startTestGateway(files, { certsDir: certs, accessLog: bareLogFile });
  });

  after(async () => {
    await gw?.close();
    await bare?.close();
    for (const u of [reviews, foreign, grpc, rotating, external, mutualExternal, plain]) await u?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe('Istio mutual TLS', () => {
    it('auto mTLS to an endpoint with a sidecar presents the gateway identity', async () => {
      const r = await gw.get('reviews.example.com', '/auto');
      assert.equal(r.status, 200, r.text);
      const seen = body(r);
      assert.deepEqual(seen.peerUris, [GATEWAY_ID]);
      assert.equal(seen.sni, 'outbound_.80_._.reviews.default.svc.cluster.local');
      assert.equal(seen.alpn, 'http/1.1');
    });

    it('refuses a server whose SPIFFE identity is not the endpoint service account: 503 UF', async () => {
      const before = reviews.seen.length;
      const r = await gw.get('impostor.example.com', '/', { 'x-request-id': 'impostor-1' });
      assert.equal(r.status, 503);
      assert.equal(reviews.seen.length, before, 'no request reached the impostor');
      const line = await logLine(logFile, 'impostor-1');
      assert.match(String(line.response_flags), /^UF(,URX)?$/);
      assert.equal(line.response_code_details, 'upstream_tls_error:peer_identity_mismatch');
    });

    it('refuses a server certificate from another root: 503 UF', async () => {
      const r = await gw.get('foreign.example.com', '/', { 'x-request-id': 'foreign-1' });
      assert.equal(r.status, 503);
      assert.equal(foreign.seen.length, 0);
      const line = await logLine(logFile, 'foreign-1');
      assert.match(String(line.response_flags), /^UF(,URX)?$/);
      assert.match(String(line.response_code_details), /^upstream_tls_error:certificate_verify_failed:/);
    });

    it('DestinationRule tls.mode DISABLE sends plaintext even to a sidecar', async () => {
      const r = await gw.get('disabled.example.com', '/plain');
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json().name, 'plain');
    });

    it("auto mTLS sends plaintext to a sidecar whose PeerAuthentication is DISABLE, for the workload or its port", async () => {
      for (const host of ['pa-off.example.com', 'pa-port.example.com']) {
        const r = await gw.get(host, '/plain');
        assert.equal(r.status, 200, `${host}: ${r.text}`);
        assert.equal(r.json().name, 'plain');
      }
      // DISABLE on another port than the one the endpoint serves: still mutual TLS.
      const other = await gw.get('pa-other-port.example.com', '/tls');
      assert.equal(other.status, 200, other.text);
      assert.deepEqual(body(other).peerUris, [GATEWAY_ID]);
    });

    it('explicit ISTIO_MUTUAL checks the DestinationRule subjectAltNames', async () => {
      const r = await gw.get('explicit.example.com', '/explicit');
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(body(r).peerUris, [GATEWAY_ID]);
    });

    it('HTTP/2 (gRPC) ports get mTLS with ALPN h2, and the same identity check', async () => {
      const r = await gw.get('grpc.example.com', '/pkg.Svc/Call', { 'content-type': 'application/grpc' }, 'POST', Buffer.alloc(5));
      assert.equal(r.status, 200, r.text);
      const seen = body(r);
      assert.deepEqual(seen.peerUris, [GATEWAY_ID]);
      assert.equal(seen.alpn, 'h2');
      assert.equal(seen.sni, 'outbound_.50051_._.grpc-svc.default.svc.cluster.local');

      const bad = await gw.get('grpc-impostor.example.com', '/pkg.Svc/Call', { 'content-type': 'application/grpc', 'x-request-id': 'grpc-impostor-1' }, 'POST', Buffer.alloc(5));
      // A gRPC request gets its local reply the gRPC way: HTTP 200, 503 mapped to UNAVAILABLE.
      assert.equal(bad.status, 200);
      assert.equal(bad.headers['grpc-status'], '14');
      const line = await logLine(logFile, 'grpc-impostor-1');
      assert.equal(line.response_code_details, 'upstream_tls_error:peer_identity_mismatch');
    });

    it('a WebSocket upgrade to a mesh endpoint goes over mTLS too', async () => {
      const socket = connect(gw.port, '127.0.0.1');
      await new Promise((r) => socket.once('connect', r));
      socket.write('GET /ws HTTP/1.1\r\nhost: reviews.example.com\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n');
      let got = '';
      await new Promise<void>((resolve, reject) => {
        socket.on('data', (d: Buffer) => {
          got += d.toString();
          if (got.includes('\r\n\r\n') && !got.includes('echo:')) socket.write('ping');
          if (got.includes('echo:ping')) resolve();
        });
        socket.on('close', () => reject(new Error(`closed; got ${JSON.stringify(got)}`)));
      });
      socket.destroy();
      assert.match(got, /^HTTP\/1\.1 101/);
      assert.match(got, new RegExp(`x-peer-uri: ${GATEWAY_ID}`));
    });
  });

  describe('without a workload identity', () => {
    it('auto mTLS stays plaintext: a gateway without a control plane keeps working', async () => {
      const r = await bare.get('legacy.example.com', '/');
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json().name, 'plain');
    });

    it('explicit ISTIO_MUTUAL is refused with 503 UF, never sent in plaintext', async () => {
      const before = reviews.seen.length;
      const r = await bare.get('explicit.example.com', '/', { 'x-request-id': 'no-cert-1' });
      assert.equal(r.status, 503);
      assert.equal(reviews.seen.length, before);
      const line = await logLine(bareLogFile, 'no-cert-1');
      assert.equal(line.response_flags, 'UF');
      assert.equal(line.response_code_details, 'upstream_tls_error:no_workload_certificate');
    });
  });

  describe('TLS origination (SIMPLE, MUTUAL)', () => {
    it('SIMPLE with caCertificates reaches an HTTPS upstream, SNI from the Host', async () => {
      const r = await gw.get('api.external.test', '/simple');
      assert.equal(r.status, 200, r.text);
      const seen = body(r);
      assert.equal(seen.sni, 'api.external.test');
      assert.deepEqual(seen.peerUris, [], 'no client certificate for SIMPLE');
    });

    it("port-level SIMPLE on a ServiceEntry's port 80 with targetPort 443 (egress TLS origination task)", async () => {
      const r = await gw.get('edition.external.test', '/politics');
      assert.equal(r.status, 200, r.text);
      assert.equal(body(r).sni, 'edition.external.test');
    });

    it('SIMPLE verifies the host name against the server certificate', async () => {
      const r = await gw.get('wrong.external.test', '/', { 'x-request-id': 'wrong-host-1' });
      assert.equal(r.status, 503);
      const line = await logLine(logFile, 'wrong-host-1');
      assert.equal(line.response_code_details, 'upstream_tls_error:hostname_mismatch');
    });

    it('SIMPLE with sni sends that name and verifies it', async () => {
      const r = await gw.get('named.example.com', '/named');
      assert.equal(r.status, 200, r.text);
      assert.equal(body(r).sni, 'api.external.test');
    });

    it('SIMPLE without a CA verifies against the public roots, so a private CA is refused', async () => {
      const r = await gw.get('public.external.test', '/', { 'x-request-id': 'public-1' });
      assert.equal(r.status, 503);
      const line = await logLine(logFile, 'public-1');
      assert.match(String(line.response_code_details), /^upstream_tls_error:certificate_verify_failed:/);
    });

    it('MUTUAL with credentialName presents the client certificate', async () => {
      const r = await gw.get('mtls.external.test', '/mutual');
      assert.equal(r.status, 200, r.text);
      const seen = body(r);
      assert.equal(seen.peerCN, 'gateway client');
      assert.equal(seen.sni, 'mtls.external.test');
    });

    it('MUTUAL with clientCertificate and privateKey files presents that certificate', async () => {
      const r = await gw.get('files.example.com', '/mutual-files');
      assert.equal(r.status, 200, r.text);
      assert.equal(body(r).peerCN, 'file client');
    });
  });

  describe('identity rotation', () => {
    it('connections opened after a rotation present the new certificate; pooled ones keep working', async () => {
      const first = identity.current();
      const r0 = await gw.get('rotating.example.com', '/warm');
      assert.equal(r0.status, 200);
      const firstPrint = new X509Certificate(first.certChainPem).fingerprint256;
      assert.equal(body(r0).peerFingerprint, firstPrint);

      // The pooled connection carries a request that is still waiting for its answer.
      const held = gw.get('rotating.example.com', '/hold');
      await eventually(async () => rotating.seen.some((s) => s.path === '/hold'));
      const heldOn = rotating.seen.find((s) => s.path === '/hold')!;
      assert.equal(heldOn.connection, body(r0).connection, 'the held request reuses the pooled connection');

      const rotated = workloadCertificate(meshRoot, GATEWAY_ID);
      identity.rotate(rotated);
      const r1 = await gw.get('rotating.example.com', '/after');
      assert.equal(r1.status, 200);
      assert.notEqual(body(r1).connection, heldOn.connection);
      assert.equal(body(r1).peerFingerprint, new X509Certificate(rotated.certChainPem).fingerprint256);

      rotating.release();
      const answer = await held;
      assert.equal(answer.status, 200, 'the request in flight across the rotation completes');
      assert.equal(body(answer).peerFingerprint, firstPrint);
    });
  });
});
