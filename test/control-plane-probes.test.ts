// Probe of the control plane's proxy port (15012) as an attacker holding one proxy's token, or none:
// certificates for someone else's identity, CSRs asking for more than a workload certificate, lifetimes
// beyond the maximum, bodies that are not CSRs, and configuration streams under another proxy's id.
// Real TLS on 127.0.0.1; CSRs written by openssl the way a hand-made request would be.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadOrCreateAuthority, type CertificateAuthority } from '../src/core/pki/authority.js';
import { createWorkloadCsr } from '../src/core/pki/workload-csr.js';
import { ControlPlaneClient } from '../src/core/sources/control-plane-client.js';
import { decodeResources, type StreamMessage } from '../src/core/sources/control-plane-wire.js';
import { startControlPlane, type RunningControlPlane } from '../src/control/main.js';
import { readReview } from '../src/control/token-review.js';
import { FileTokenAuthenticator } from '../src/control/token-authenticator.js';
import { ProxyRegistry } from '../src/control/proxy-registry.js';
import { gatewayYaml } from './helpers/cluster-yaml.js';
import { eventually } from './helpers/gateway.js';

const SHOP_TOKEN = 'shop-token-0123456789';
const GATEWAY_TOKEN = 'gateway-token-0123456789';
const TOKENS = `- {token: ${SHOP_TOKEN}, namespace: shop, serviceAccount: reviews}
- {token: ${GATEWAY_TOKEN}, namespace: istio-system, serviceAccount: ingress}
`;
const SHOP_ID = 'spiffe://cluster.local/ns/shop/sa/reviews';
const SECRET_KEY_TEXT = 'LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0t';
const SECRET = `apiVersion: v1
kind: Secret
metadata: {name: app-cert, namespace: istio-system}
type: kubernetes.io/tls
data: {tls.crt: ${SECRET_KEY_TEXT}, tls.key: ${SECRET_KEY_TEXT}}
`;

const POD_SECRET = 'hunter2-db-password';
const PAYMENTS = `apiVersion: v1
kind: Service
metadata: {name: payments, namespace: payments}
spec:
  selector: {app: payments}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Pod
metadata:
  name: payments-1
  namespace: payments
  labels: {app: payments}
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: '{"env":"${POD_SECRET}"}'
    sidecar.istio.io/status: '{}'
spec:
  serviceAccountName: payments
  containers:
  - name: app
    image: payments:1
    command: [run, --password, ${POD_SECRET}]
    env: [{name: DB_PASSWORD, value: ${POD_SECRET}}]
    ports: [{name: http, containerPort: 8080}]
status: {phase: Running, podIP: 10.0.0.7}
`;

interface Answer {
  status: number;
  text: string;
}

let dir: string;
let cp: RunningControlPlane;
let ca: CertificateAuthority;
const clients: ControlPlaneClient[] = [];

function call(path: string, opts: { method?: string; token?: string; body?: string | Buffer; headers?: Record<string, string> } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...(opts.token !== undefined ? { authorization: `Bearer ${opts.token}` } : {}), ...opts.headers };
    const req = httpsRequest({ host: '127.0.0.1', port: cp.port, path, method: opts.method ?? 'GET', ca: ca.rootCertPem, servername: 'localhost', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

const askCertificate = (csr: string, token = SHOP_TOKEN, validitySeconds: unknown = 3600): Promise<Answer> =>
  call('/v1/certificates', { method: 'POST', token, body: JSON.stringify({ csr, validitySeconds }), headers: { 'content-type': 'application/json' } });

/** A CSR from openssl for a fresh EC key, with whatever extensions `addext` asks for. */
function opensslCsr(subject: string, addext: string[]): string {
  const keyFile = join(dir, `key-${Math.random().toString(36).slice(2)}.pem`);
  execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', keyFile]);
  return execFileSync('openssl', ['req', '-new', '-key', keyFile, '-subj', subject, ...addext.flatMap((e) => ['-addext', e])], { encoding: 'utf8' });
}

function client(token: string): ControlPlaneClient {
  const c = new ControlPlaneClient({ url: `https://127.0.0.1:${cp.port}`, rootCertPem: ca.rootCertPem, token });
  clients.push(c);
  return c;
}

/** The first configuration message a stream gets, or the error it ends with. */
function firstConfig(c: ControlPlaneClient, id: string, role: 'sidecar' | 'gateway', labels: Record<string, string>): Promise<StreamMessage | Error> {
  return new Promise((resolve) => {
    const s = c.openStream(id, {
      onMessage: (m) => {
        if (m.type !== 'config') return;
        s.close();
        resolve(m);
      },
      onEnd: (err) => resolve(err ?? new Error('ended')),
    }, { role, labels });
  });
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshgate-cp-probe-'));
  await mkdir(join(dir, 'config'));
  await writeFile(join(dir, 'config', 'gw.yaml'), gatewayYaml(['app.example.com']));
  await writeFile(join(dir, 'config', 'secret.yaml'), SECRET);
  await writeFile(join(dir, 'config', 'payments.yaml'), PAYMENTS);
  await writeFile(join(dir, 'tokens.yaml'), TOKENS);
  const authority = loadOrCreateAuthority(join(dir, 'ca'));
  assert.ok(authority.ok);
  ca = authority.ca;
  const tokens = await FileTokenAuthenticator.load(join(dir, 'tokens.yaml'));
  assert.ok(tokens.ok);
  cp = await startControlPlane({ configDir: join(dir, 'config'), ca, authenticator: tokens.authenticator, port: 0, statusPort: 0, listenHost: '127.0.0.1', debounceMs: 10, logger: pino({ level: 'silent' }) });
});

after(async () => {
  for (const c of clients) c.close();
  await cp?.destroy();
  await rm(dir, { recursive: true, force: true });
});

describe('CA probes: what a CSR asks for is not what it gets', () => {
  it('extra SANs (DNS, IP, several URIs, another trust domain, another namespace), CA:true and keyCertSign: a leaf for the token\'s identity only', async () => {
    const csr = opensslCsr('/CN=spiffe:\\/\\/evil.example\\/ns\\/kube-system\\/sa\\/admin', [
      'subjectAltName=DNS:api.example.com,IP:10.0.0.1,URI:spiffe://evil.example/ns/shop/sa/reviews,URI:spiffe://cluster.local/ns/kube-system/sa/admin,email:a@example.com',
      'basicConstraints=critical,CA:TRUE,pathlen:3',
      'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
      'extendedKeyUsage=codeSigning,serverAuth',
      'nameConstraints=permitted;DNS:example.com',
    ]);
    const r = await askCertificate(csr);
    assert.equal(r.status, 200, r.text);
    const leaf = new X509Certificate((JSON.parse(r.text) as { certChain: string[] }).certChain[0]!);
    assert.equal(leaf.subjectAltName, `URI:${SHOP_ID}`);
    assert.equal(leaf.ca, false);
    assert.deepEqual([...(leaf.keyUsage ?? [])].sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    assert.equal(leaf.subject, `CN=${SHOP_ID}`);
    const text = execFileSync('openssl', ['x509', '-noout', '-text'], { input: leaf.toString(), encoding: 'utf8' });
    assert.doesNotMatch(text, /Certificate Sign|Name Constraints|Code Signing|api\.example\.com|10\.0\.0\.1|evil/);
    assert.ok(leaf.checkIssued(new X509Certificate(ca.rootCertPem)) || leaf.verify(new X509Certificate(ca.rootCertPem).publicKey));
  });

  it('lifetimes: above 90 days, negative, not a number, Infinity: 400; the lifetime never outlives the CA', async () => {
    const csr = createWorkloadCsr({ keyType: 'ec' }).csrPem;
    for (const ttl of [90 * 86400 + 1, 1e12, -1, '3600', null, 'Infinity']) {
      const r = await askCertificate(csr, SHOP_TOKEN, ttl);
      assert.equal(r.status, 400, `validitySeconds ${JSON.stringify(ttl)}: ${r.text}`);
    }
    const r = await call('/v1/certificates', { method: 'POST', token: SHOP_TOKEN, body: `{"csr": ${JSON.stringify(csr)}, "validitySeconds": 1e999}` });
    assert.equal(r.status, 400, r.text);
    const ok = await askCertificate(csr, SHOP_TOKEN, 90 * 86400);
    assert.equal(ok.status, 200, ok.text);
  });

  it('bodies that are not one good CSR: 400 (or 413), never a certificate, and the server keeps serving', async () => {
    const good = createWorkloadCsr({ keyType: 'ec' }).csrPem;
    const b64 = good.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
    const flipped = Buffer.from(b64, 'base64');
    flipped[flipped.length - 5]! ^= 0xff; // inside the signature
    const weakKey = join(dir, 'weak.pem');
    execFileSync('openssl', ['genrsa', '-out', weakKey, '1024'], { stdio: 'ignore' });
    const weak = execFileSync('openssl', ['req', '-new', '-key', weakKey, '-subj', '/CN=x'], { encoding: 'utf8' });
    const csrs: Array<[string, string]> = [
      ['two CSRs', good + good],
      ['no PEM', 'hello'],
      ['garbage base64', '-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n'],
      ['a certificate instead', ca.rootCertPem.replaceAll('CERTIFICATE', 'CERTIFICATE REQUEST')],
      ['a bad signature', `-----BEGIN CERTIFICATE REQUEST-----\n${flipped.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`],
      ['a 1024-bit RSA key', weak],
      ['trailing bytes', `-----BEGIN CERTIFICATE REQUEST-----\n${Buffer.concat([Buffer.from(b64, 'base64'), Buffer.from([0, 0])]).toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`],
      ['6000 nested SEQUENCE tags', `-----BEGIN CERTIFICATE REQUEST-----\n${Buffer.alloc(6000, 0x30).toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`],
    ];
    for (const [name, csr] of csrs) {
      const r = await askCertificate(csr);
      assert.equal(r.status, 400, `${name}: ${r.text}`);
    }
    for (const body of ['null', '[]', '"csr"', '{"csr": 5}', '{', '']) {
      const r = await call('/v1/certificates', { method: 'POST', token: SHOP_TOKEN, body });
      assert.equal(r.status, 400, `${body}: ${r.text}`);
    }
    const huge = await call('/v1/certificates', { method: 'POST', token: SHOP_TOKEN, body: Buffer.alloc(2 << 20, 0x20) });
    assert.equal(huge.status, 413);
    assert.equal((await askCertificate(good)).status, 200);
  });

  it('tokens: none, empty, another scheme, a prefix or extension of a real one, two of them: 401 before anything is read', async () => {
    const csr = createWorkloadCsr({ keyType: 'ec' }).csrPem;
    const body = JSON.stringify({ csr });
    for (const authorization of [undefined, '', 'Bearer', 'Bearer ', `Basic ${SHOP_TOKEN}`, `Bearer ${SHOP_TOKEN.slice(0, -1)}`, `Bearer ${SHOP_TOKEN}x`, `Bearer ${SHOP_TOKEN} ${GATEWAY_TOKEN}`, `Bearer ${SHOP_TOKEN.toUpperCase()}`]) {
      const r = await call('/v1/certificates', { method: 'POST', body, headers: authorization === undefined ? {} : { authorization } });
      assert.equal(r.status, 401, `${JSON.stringify(authorization)}: ${r.text}`);
      const s = await call('/v1/config/stream?proxy=p1&role=gateway', { headers: authorization === undefined ? {} : { authorization } });
      assert.equal(s.status, 401);
    }
    // An unauthenticated caller learns nothing of the paths either.
    assert.equal((await call('/v1/nothing-here')).status, 401);
  });

  it('a Kubernetes TokenReview: not authenticated, other audiences, none, a user that is not a service account: refused', () => {
    const sa = { username: 'system:serviceaccount:shop:reviews', groups: ['system:serviceaccounts', 'system:serviceaccounts:shop', 'system:authenticated'] };
    const cases: Array<[string, Record<string, unknown>]> = [
      ['expired (the API server says not authenticated)', { status: { authenticated: false, error: 'token has expired' } }],
      ['for another audience', { status: { authenticated: true, audiences: ['https://kubernetes.default.svc'], user: sa } }],
      ['no audiences in the answer', { status: { authenticated: true, user: sa } }],
      ['a user', { status: { authenticated: true, audiences: ['istio-ca'], user: { username: 'alice' } } }],
      ['a node', { status: { authenticated: true, audiences: ['istio-ca'], user: { username: 'system:node:n1' } } }],
      ['a service account\'s name without the service accounts group (another authenticator\'s user)', { status: { authenticated: true, audiences: ['istio-ca'], user: { username: sa.username, groups: ['system:authenticated'] } } }],
      ['a service account name with a colon', { status: { authenticated: true, audiences: ['istio-ca'], user: { username: 'system:serviceaccount:shop:a:b' } } }],
      ['a namespace that makes no identity', { status: { authenticated: true, audiences: ['istio-ca'], user: { username: 'system:serviceaccount:Shop/x:reviews' } } }],
    ];
    for (const [name, review] of cases) assert.equal(readReview(review, ['istio-ca']).ok, false, name);
    const ok = readReview({ status: { authenticated: true, audiences: ['istio-ca'], user: sa } }, ['istio-ca']);
    assert.deepEqual(ok.ok && ok.caller, { namespace: 'shop', serviceAccount: 'reviews' });
  });
});

describe('config stream probes', () => {
  it('a proxy id held by another identity: 409, and its stream keeps going', async () => {
    const holder = client(GATEWAY_TOKEN);
    let configs = 0;
    let ended: Error | undefined;
    const first = new Promise<void>((resolve) => {
      holder.openStream('ingress-1', { onMessage: (m) => (m.type === 'config' || m.type === 'delta') && ++configs && resolve(), onEnd: (e) => (ended = e ?? new Error('ended')) }, { role: 'gateway', labels: { istio: 'ingressgateway' } });
    });
    await first;
    const taken = await call('/v1/config/stream?proxy=ingress-1&role=gateway&labels=istio=ingressgateway', { token: SHOP_TOKEN });
    assert.equal(taken.status, 409);
    // Nor may it acknowledge for it.
    const ack = await call('/v1/config/ack', { method: 'POST', token: SHOP_TOKEN, body: JSON.stringify({ proxy: 'ingress-1', version: 'x', accepted: false, problems: [] }) });
    assert.equal(ack.status, 403);
    await writeFile(join(dir, 'config', 'gw2.yaml'), gatewayYaml(['b.example.com'], { name: 'gw2' }));
    await eventually(async () => configs >= 2 || ended !== undefined);
    assert.equal(ended, undefined, 'the holder\'s stream was not ended');
  });

  it('no Secret reaches any proxy: not a gateway in the Secret\'s namespace, not another namespace\'s token claiming the gateway role', async () => {
    for (const [token, id] of [[GATEWAY_TOKEN, 'gw-secret'], [SHOP_TOKEN, 'shop-as-gateway']] as const) {
      const m = await firstConfig(client(token), id, 'gateway', { istio: 'ingressgateway' });
      assert.ok(!(m instanceof Error) && m.type === 'config', String(m));
      const kinds = decodeResources(m.resources).resources.map((r) => r.kind);
      assert.ok(kinds.includes('Gateway'));
      assert.ok(!kinds.includes('Secret'), `${id} got a Secret`);
      assert.doesNotMatch(JSON.stringify(m), new RegExp(SECRET_KEY_TEXT));
    }
  });

  it('a Pod reaches proxies as an endpoint: its address, labels, account and named ports, never its env, command or last-applied spec', async () => {
    const m = await firstConfig(client(SHOP_TOKEN), 'shop-pods', 'gateway', { istio: 'ingressgateway' });
    assert.ok(!(m instanceof Error) && m.type === 'config', String(m));
    const pod = decodeResources(m.resources).resources.find((r) => r.kind === 'Pod');
    assert.ok(pod, 'the Pod behind an imported Service is sent');
    assert.doesNotMatch(JSON.stringify(m), new RegExp(POD_SECRET));
    assert.deepEqual(pod.raw.spec, { serviceAccountName: 'payments', containers: [{ name: 'app', ports: [{ name: 'http', containerPort: 8080 }] }] });
    assert.deepEqual(pod.metadata.annotations, { 'sidecar.istio.io/status': '{}' });
    assert.deepEqual(pod.raw.status, { phase: 'Running', podIP: '10.0.0.7' });
  });

  it('oversized requests: a 64 KiB header, a label list over the limit, a 300-character id: refused, the server keeps serving', async () => {
    const big = await call('/v1/config/stream?proxy=p', { token: SHOP_TOKEN, headers: { 'x-pad': 'a'.repeat(64 * 1024) } }).catch((e: Error) => ({ status: 0, text: e.message }));
    assert.ok(big.status === 431 || big.status === 0, `${big.status}`);
    const labels = Array.from({ length: 200 }, (_, i) => `k${i}=v`).join(',');
    assert.equal((await call(`/v1/config/stream?proxy=p&labels=${labels}`, { token: SHOP_TOKEN })).status, 400);
    assert.equal((await call(`/v1/config/stream?proxy=${'a'.repeat(300)}`, { token: SHOP_TOKEN })).status, 400);
    assert.equal((await call('/v1/config/stream?proxy=../x', { token: SHOP_TOKEN })).status, 400);
    assert.equal((await call('/v1/config/stream?proxy=p&role=admin', { token: SHOP_TOKEN })).status, 400);
    assert.equal((await askCertificate(createWorkloadCsr({ keyType: 'ec' }).csrPem)).status, 200);
  });
});

describe('the proxy registry against a token holder cycling proxy ids', () => {
  it('remembers at most maxDisconnected closed streams (each up to 100 KB of refusal reasons), the first to leave forgotten first; open ones always listed', () => {
    const registry = new ProxyRegistry({ log: pino({ level: 'silent' }), maxDisconnected: 5 });
    const meta = { role: 'sidecar' as const, labels: { app: 'x' }, namespace: 'shop' };
    const stays = registry.connect('stays-open', SHOP_ID, '10.0.0.1', meta);
    assert.ok(stays.ok);
    const problems = Array.from({ length: 60 }, () => ({ file: 'f.yaml', line: 1, resource: 'r', field: 'f', message: 'x'.repeat(5000) }));
    for (let i = 0; i < 500; i++) {
      const c = registry.connect(`cycled-${i}`, SHOP_ID, '10.0.0.2', meta);
      assert.ok(c.ok);
      assert.deepEqual(registry.acknowledge(SHOP_ID, { proxy: `cycled-${i}`, version: 'v1', accepted: false, problems }), { ok: true });
      registry.disconnect(c.session);
    }
    const listed = registry.list();
    assert.deepEqual(listed.map((p) => p.id), ['cycled-495', 'cycled-496', 'cycled-497', 'cycled-498', 'cycled-499', 'stays-open']);
    // A proxy that reconnects under a remembered id is no longer counted as gone.
    const back = registry.connect('cycled-495', SHOP_ID, '10.0.0.2', meta);
    assert.ok(back.ok);
    for (let i = 500; i < 510; i++) {
      const c = registry.connect(`cycled-${i}`, SHOP_ID, '10.0.0.2', meta);
      assert.ok(c.ok);
      registry.disconnect(c.session);
    }
    assert.deepEqual(registry.list().filter((p) => p.connected).map((p) => p.id), ['cycled-495', 'stays-open']);
    assert.equal(registry.list().length, 7);
  });
});
