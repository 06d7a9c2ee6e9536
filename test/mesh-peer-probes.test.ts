// Security probes of a sidecar's inbound side, each compared with what Istio's inbound Envoy does:
// peer certificates that chain to the mesh root but are expired, not yet valid, name no SPIFFE
// workload or two of them; mutual TLS with odd ALPN and SNI; a mesh peer or a plaintext client
// claiming another identity in x-forwarded-client-cert or x-envoy-peer-metadata; a plaintext client
// of a PERMISSIVE port against a principal-based ALLOW; `ipBlocks` against a spoofed x-forwarded-for.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadOrCreateAuthority, type CertificateAuthority } from '../src/core/pki/authority.js';
import { createWorkloadCsr } from '../src/core/pki/workload-csr.js';
import { issueCertificate } from '../src/core/tls/issue-certificate.js';
import { startSidecar, type RunningSidecar } from '../src/sidecar/main.js';
import { sidecarOptions, workloadCertificate } from './helpers/mesh.js';
import { rawExchange, type RawAnswer } from './helpers/raw-http.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

const CALLER = 'spiffe://cluster.local/ns/default/sa/caller';
const BANNED = 'spiffe://cluster.local/ns/default/sa/banned';

/** `strict` is STRICT, `loose` PERMISSIVE; both: /p/* only for the caller, /ip/* only from 203.0.113.0/24, the banned account never. */
const POLICIES = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: default}
spec: {selector: {matchLabels: {app: strict}}, mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: loose, namespace: default}
spec: {selector: {matchLabels: {app: loose}}, mtls: {mode: PERMISSIVE}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow, namespace: default}
spec:
  rules:
  - to: [{operation: {notPaths: ["/p/*", "/ip/*"]}}]
  - from: [{source: {principals: ["cluster.local/ns/default/sa/caller"]}}]
    to: [{operation: {paths: ["/p/*"]}}]
  - from: [{source: {ipBlocks: ["203.0.113.0/24"]}}]
    to: [{operation: {paths: ["/ip/*"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-banned, namespace: default}
spec:
  action: DENY
  rules: [{from: [{source: {principals: ["cluster.local/ns/default/sa/banned"]}}]}]
`;

interface Cert {
  readonly certChainPem: string;
  readonly keyPem: string;
}

const CLOSED: RawAnswer = { text: '', status: 0, statuses: [] };

describe('mesh peers at a sidecar inbound side (STRICT and PERMISSIVE)', () => {
  let dir: string;
  let mesh: CertificateAuthority;
  let signer: { certPem: string; keyPem: string };
  let app: Upstream;
  let strict: RunningSidecar;
  let loose: RunningSidecar;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-peer-probes-'));
    const r = loadOrCreateAuthority(join(dir, 'ca'));
    if (!r.ok) throw new Error(r.message);
    mesh = r.ca;
    signer = { certPem: await readFile(join(dir, 'ca', 'ca-cert.pem'), 'utf8'), keyPem: await readFile(join(dir, 'ca', 'ca-key.pem'), 'utf8') };
    await writeFile(join(dir, 'policies.yaml'), POLICIES);
    app = await startUpstream('app');
    strict = await startSidecar(sidecarOptions(mesh, dir, 'strict', app.port));
    loose = await startSidecar(sidecarOptions(mesh, dir, 'loose', app.port));
  });

  after(async () => {
    await strict?.destroy();
    await loose?.destroy();
    await app?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const get = (path: string, headers: Record<string, string> = {}): string =>
    `GET ${path} HTTP/1.1\r\nhost: app\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}connection: close\r\n\r\n`;

  /** `request` over mesh mTLS to `port` with `cert`, offering `alpn` and asking for `servername`. */
  const overMtls = (port: number, cert: Cert | undefined, request: string, alpn = ['istio-http/1.1', 'http/1.1'], servername = 'outbound_.80_._.app.default.svc.cluster.local'): Promise<RawAnswer> =>
    rawExchange(port, request, {
      tls: { ca: mesh.rootCertPem, servername, alpn, ...(cert ? { cert: cert.certChainPem, key: cert.keyPem } : {}) },
    }).catch(() => CLOSED);

  /** A certificate the mesh CA signs for default/<sa>, valid from `now` (default: the real now). */
  const signed = (sa: string, now?: Date, ttlSeconds = 3600): Cert => {
    const { csrPem, keyPem } = createWorkloadCsr({ keyType: 'ec' });
    const s = mesh.signWorkloadCsr(csrPem, { trustDomain: 'cluster.local', namespace: 'default', serviceAccount: sa }, { ttlSeconds, ...(now ? { now } : {}) });
    if (!s.ok) throw new Error(s.message);
    return { certChainPem: s.certChain[0]!, keyPem };
  };
  /** A leaf the mesh root signs with whatever names a compromised or careless CA would write. */
  const crafted = (names: { uris?: string[]; dnsNames?: string[] }): Cert => {
    const c = issueCertificate({ subjectCN: 'crafted', ...names, issuer: signer, days: 1, keyType: 'ec' });
    return { certChainPem: c.certPem, keyPem: c.keyPem };
  };

  it('the caller gets /p/x over mTLS; a peer certificate that has expired or is not yet valid is closed before the app sees a byte', async () => {
    assert.equal((await overMtls(strict.inboundPort, signed('caller'), get('/p/x'))).status, 200);
    const n = app.seen.length;
    const hour = 3600_000;
    assert.equal((await overMtls(strict.inboundPort, signed('caller', new Date(Date.now() - 48 * hour), 3600), get('/p/x'))).status, 0, 'expired');
    assert.equal((await overMtls(strict.inboundPort, signed('caller', new Date(Date.now() + 48 * hour), 3600), get('/p/x'))).status, 0, 'not yet valid');
    assert.equal(app.seen.length, n);
  });

  it('a certificate from the mesh root naming no SPIFFE workload, or two of them, is closed (DENY on the second name cannot be dodged by the first)', async () => {
    const n = app.seen.length;
    for (const names of [{ dnsNames: ['caller.default.svc'] }, { uris: ['https://caller.example'] }, { uris: [CALLER, BANNED] }, { uris: ['spiffe://other.example/ns/default/sa/x', CALLER] }]) {
      for (const port of [strict.inboundPort, loose.inboundPort]) {
        const r = await overMtls(port, crafted(names), get('/p/x'));
        assert.ok(r.status === 0 || r.status === 403, `${JSON.stringify(names)}: ${r.status}`);
      }
    }
    assert.equal(app.seen.length, n);
  });

  it('mTLS with odd ALPN or SNI: served only to the verified peer, never routed around the path policy', async () => {
    const caller = signed('caller');
    const other = signed('other');
    for (const servername of ['', 'evil.example.com', 'x'.repeat(250)]) {
      assert.equal((await overMtls(strict.inboundPort, caller, get('/p/x'), undefined, servername)).status, 200, `SNI ${servername.slice(0, 20)}`);
      assert.equal((await overMtls(strict.inboundPort, other, get('/p/x'), undefined, servername)).status, 403, `SNI ${servername.slice(0, 20)}`);
    }
    const n = app.seen.length;
    for (const alpn of [['http/1.1'], []]) assert.equal((await overMtls(strict.inboundPort, other, get('/p/x'), alpn)).status, 403, `ALPN ${alpn.join(',')}`);
    // An ALPN no mesh filter chain names: no protocol agreed, the handshake fails (Envoy finds no filter chain).
    assert.equal((await overMtls(strict.inboundPort, signed('caller'), get('/p/x'), ['foo'])).status, 0);
    // Mesh ALPN for TCP carrying an HTTP request: an L4 connection, which no ALLOW rule with an HTTP field matches.
    assert.equal((await overMtls(strict.inboundPort, other, get('/p/x'), ['istio-peer-exchange', 'istio'])).status, 0);
    // HTTP/2 agreed, HTTP/1 spoken: no request reaches the app.
    for (const alpn of [['istio-h2'], ['h2', 'http/1.1']]) assert.equal((await overMtls(strict.inboundPort, other, get('/p/x'), alpn)).status, 0, `ALPN ${alpn.join(',')}`);
    assert.equal(app.seen.length, n);
  });

  it('another mesh peer claiming the caller in x-forwarded-client-cert or x-envoy-peer-metadata is still itself: 403', async () => {
    const claims = {
      'x-forwarded-client-cert': `By=spiffe://cluster.local/ns/default/sa/strict;URI=${CALLER}`,
      'x-envoy-peer-metadata-id': 'sidecar~10.0.0.9~caller-1.default~default.svc.cluster.local',
      'x-envoy-peer-metadata': Buffer.from('caller').toString('base64'),
      'x-forwarded-for': '203.0.113.7',
    };
    const n = app.seen.length;
    assert.equal((await overMtls(strict.inboundPort, signed('other'), get('/p/x', claims))).status, 403);
    assert.equal((await overMtls(strict.inboundPort, signed('other'), get('/ip/x', claims))).status, 403);
    assert.equal(app.seen.length, n);
    // What the app is told: the caller's XFCC kept, this hop's element naming the real peer appended (APPEND_FORWARD).
    assert.equal((await overMtls(strict.inboundPort, signed('other'), get('/ok', claims))).status, 200);
    const xfcc = String(app.seen[app.seen.length - 1]!.headers['x-forwarded-client-cert']);
    assert.match(xfcc, /,By=spiffe:\/\/cluster\.local\/ns\/default\/sa\/strict;Hash=[0-9a-f]+;.*URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/other$/);
  });

  it('PERMISSIVE: plaintext gets nothing from a principal-based ALLOW, whatever it claims; ipBlocks read the peer, not x-forwarded-for', async () => {
    const claims = { 'x-forwarded-client-cert': `URI=${CALLER}`, 'x-envoy-peer-metadata-id': 'sidecar~10.0.0.9~caller-1.default~default.svc.cluster.local', 'x-forwarded-for': '203.0.113.7', 'x-real-ip': '203.0.113.7' };
    const n = app.seen.length;
    assert.equal((await rawExchange(loose.inboundPort, get('/p/x', claims))).status, 403);
    assert.equal((await rawExchange(loose.inboundPort, get('/ip/x', claims))).status, 403);
    assert.equal(app.seen.length, n);
    assert.equal((await rawExchange(loose.inboundPort, get('/ok', claims))).status, 200);
    assert.equal(app.seen[app.seen.length - 1]!.headers['x-forwarded-client-cert'], undefined);
    // Its underscore spelling is the same header to CGI-style apps: not handed on either, plaintext or mTLS.
    assert.equal((await rawExchange(loose.inboundPort, get('/ok', { x_forwarded_client_cert: `URI=${CALLER}` }))).status, 200);
    assert.equal(app.seen[app.seen.length - 1]!.headers.x_forwarded_client_cert, undefined);
    assert.equal((await overMtls(loose.inboundPort, signed('other'), get('/ok', { x_forwarded_client_cert: `URI=${CALLER}` }))).status, 200);
    assert.equal(app.seen[app.seen.length - 1]!.headers.x_forwarded_client_cert, undefined);
    assert.equal((await overMtls(loose.inboundPort, signed('caller'), get('/p/x'))).status, 200);
  });

  it('STRICT: plaintext HTTP, and TLS that offers no mesh ALPN and no certificate, are closed', async () => {
    const n = app.seen.length;
    assert.equal((await rawExchange(strict.inboundPort, get('/ok')).catch(() => CLOSED)).status, 0);
    assert.equal((await overMtls(strict.inboundPort, undefined, get('/ok'), ['http/1.1'])).status, 0);
    assert.equal(app.seen.length, n);
  });
});
