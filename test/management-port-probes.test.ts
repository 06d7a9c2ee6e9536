// Probe of the proxies' and the control plane's management surfaces: where each port listens when
// every other port is told to listen elsewhere, what the admin port's config_dump shows of a Secret,
// and what the injection webhook does with bodies that are not an AdmissionReview, pods whose fields
// have the wrong types, and bodies too large to be one. Real processes on loopback.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { request } from 'undici';
import { loadOrCreateAuthority, type CertificateAuthority } from '../src/core/pki/authority.js';
import { startControlPlane, type RunningControlPlane } from '../src/control/main.js';
import { FileTokenAuthenticator } from '../src/control/token-authenticator.js';
import { gatewayYaml } from './helpers/cluster-yaml.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';

const KEY_TEXT = 'LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCk1JSUV2UUlCQURBTkJna3Foa2lHOXcwQkFRRUZBQVND';
const SECRET = `apiVersion: v1
kind: Secret
metadata: {name: app-cert, namespace: istio-system}
type: kubernetes.io/tls
data: {tls.crt: ${KEY_TEXT}, tls.key: ${KEY_TEXT}}
stringData: {ca.crt: "-----BEGIN PRIVATE KEY----- plain"}
`;

const OCT_SECRET = Buffer.from('a symmetric key nobody may read').toString('base64url');
const PRIVATE_JWK = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
const jwtRule = (name: string, keys: unknown[]): string => `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: ${name}, namespace: istio-system}
spec:
  jwtRules:
  - issuer: https://${name}.example.com
    jwks: '${JSON.stringify({ keys })}'
`;

describe('gateway admin port', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      'gw.yaml': gatewayYaml(['app.example.com']),
      'secret.yaml': SECRET,
      'ra.yaml': jwtRule('oct', [{ kty: 'oct', kid: 'hs', alg: 'HS256', k: OCT_SECRET }]) + '---\n' + jwtRule('pasted', [{ ...PRIVATE_JWK, kid: 'rs' }]),
    });
  });
  after(async () => gw?.close());

  it('config_dump shows a Secret\'s file names, never its values (Envoy prints [redacted])', async () => {
    const r = await request(`http://127.0.0.1:${gw.gw.adminPort}/config_dump`);
    const text = await r.body.text();
    assert.equal(r.statusCode, 200);
    assert.doesNotMatch(text, new RegExp(KEY_TEXT.slice(0, 20)));
    assert.doesNotMatch(text, /PRIVATE KEY/);
    const secret = (JSON.parse(text) as { resources: Array<Record<string, any>> }).resources.find((x) => x.kind === 'Secret');
    assert.deepEqual(secret?.data, { 'tls.crt': '[redacted]', 'tls.key': '[redacted]' });
    assert.deepEqual(secret?.stringData, { 'ca.crt': '[redacted]' });
  });

  it('config_dump shows a symmetric JWK\'s k, and a private JWK\'s d, p, q …, as [redacted]; kid and kty stay', async () => {
    const r = await request(`http://127.0.0.1:${gw.gw.adminPort}/config_dump`);
    const text = await r.body.text();
    for (const secret of [OCT_SECRET, PRIVATE_JWK.d!, PRIVATE_JWK.p!, PRIVATE_JWK.q!]) assert.ok(!text.includes(secret));
    const ra = (JSON.parse(text) as { resources: Array<Record<string, any>> }).resources.find((x) => x.kind === 'RequestAuthentication' && x.metadata.name === 'oct');
    assert.deepEqual(JSON.parse(ra?.spec.jwtRules[0].jwks as string), { keys: [{ kty: 'oct', kid: 'hs', alg: 'HS256', k: '[redacted]' }] });
  });

  it('no other admin path shows the Secret either', async () => {
    for (const path of ['/', '/routes', '/clusters', '/problems', '/rate_limits']) {
      const r = await request(`http://127.0.0.1:${gw.gw.adminPort}${path}`);
      assert.doesNotMatch(await r.body.text(), new RegExp(KEY_TEXT.slice(0, 20)), path);
    }
  });
});

describe('where management ports listen', () => {
  it('a gateway told to listen on 127.0.0.2 keeps its admin port (and /quitquitquit) on 127.0.0.1', async () => {
    const gw = await startTestGateway({ 'gw.yaml': gatewayYaml(['app.example.com']) }, { gateway: { listenHost: '127.0.0.2' } });
    try {
      await assert.rejects(request(`http://127.0.0.2:${gw.gw.adminPort}/config_dump`), /ECONNREFUSED/);
      await assert.rejects(request(`http://127.0.0.2:${gw.gw.adminPort}/quitquitquit`, { method: 'POST' }), /ECONNREFUSED/);
      const status = await request(`http://127.0.0.2:${gw.gw.statusPort}/healthz/ready`);
      await status.body.dump();
      assert.equal(status.statusCode, 200);
      // The status port answers one path; nothing else there.
      for (const path of ['/config_dump', '/quitquitquit', '/stats/prometheus', '/healthz/ready/../../config_dump']) {
        const r = await request(`http://127.0.0.2:${gw.gw.statusPort}${path}`, { method: path === '/quitquitquit' ? 'POST' : 'GET' });
        await r.body.dump();
        assert.equal(r.statusCode, 404, path);
      }
    } finally {
      await gw.close();
    }
  });
});

describe('injection webhook', () => {
  let dir: string;
  let ca: CertificateAuthority;
  let cp: RunningControlPlane;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-inject-probe-'));
    await mkdir(join(dir, 'config'));
    await writeFile(join(dir, 'tokens.yaml'), '[]\n');
    const authority = loadOrCreateAuthority(join(dir, 'ca'));
    assert.ok(authority.ok);
    ca = authority.ca;
    const tokens = await FileTokenAuthenticator.load(join(dir, 'tokens.yaml'));
    assert.ok(tokens.ok);
    cp = await startControlPlane({
      configDir: join(dir, 'config'),
      ca,
      authenticator: tokens.authenticator,
      port: 0,
      statusPort: 0,
      listenHost: '127.0.0.1',
      logger: pino({ level: 'silent' }),
      injection: { port: 0, serviceName: 'meshgate-sidecar-injector', namespace: 'istio-system', inject: { image: 'registry.example/meshgate:1', controlAddress: 'https://meshgate-control.istio-system.svc:15012' } },
    });
  });
  after(async () => {
    await cp?.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  const post = (body: string | Buffer, method = 'POST', path = '/inject'): Promise<{ status: number; json: Record<string, any> | undefined }> =>
    new Promise((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port: cp.injectionPort, path, method, ca: ca.rootCertPem, servername: 'meshgate-sidecar-injector.istio-system.svc', headers: { 'content-type': 'application/json' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, json: text ? (JSON.parse(text) as Record<string, any>) : undefined });
        });
      });
      req.on('error', reject);
      req.end(body);
    });

  const review = (object: unknown, extra: Record<string, unknown> = {}): string =>
    JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u1', kind: { group: '', version: 'v1', kind: 'Pod' }, namespace: 'shop', operation: 'CREATE', object, ...extra } });

  it('bodies that are no AdmissionReview, and pods with fields of the wrong type: refused (allowed: false), and it keeps serving', async () => {
    const bodies: Array<[string, string]> = [
      ['null', 'null'],
      ['a number', '5'],
      ['not JSON', '{'],
      ['request a string', '{"request": "x"}'],
      ['an older AdmissionReview', JSON.stringify({ apiVersion: 'admission.k8s.io/v1beta1', request: { uid: 'u1' } })],
      ['a pod that is a number', review(5)],
      ['a pod that is a list', review([])],
      ['metadata null', review({ metadata: null, spec: { containers: [{ name: 'app', image: 'x' }] } })],
      ['spec a number', review({ metadata: { name: 'p' }, spec: 5 })],
      ['containers a number', review({ metadata: { name: 'p' }, spec: { containers: 5 } })],
      ['labels a list', review({ metadata: { name: 'p', labels: ['a'] }, spec: { containers: [{ name: 'app', image: 'x' }] } })],
      ['annotations a string', review({ metadata: { name: 'p', annotations: 'x' }, spec: { containers: [{ name: 'app', image: 'x' }] } })],
      ['a container null', review({ metadata: { name: 'p' }, spec: { containers: [null] } })],
    ];
    for (const [name, body] of bodies) {
      const r = await post(body);
      assert.equal(r.status, 200, name);
      const allowed = r.json?.response?.allowed;
      // A pod the injector reads as not to be injected may pass unchanged; nothing crashes, nothing is half-patched.
      assert.ok(allowed === false || (allowed === true && r.json?.response?.patch === undefined) || (allowed === true && typeof r.json?.response?.patch === 'string'), `${name}: ${JSON.stringify(r.json)}`);
      if (['null', 'a number', 'not JSON', 'request a string', 'an older AdmissionReview', 'a pod that is a number', 'a pod that is a list', 'spec a number', 'containers a number'].includes(name)) assert.equal(allowed, false, name);
    }
    const good = await post(review({ metadata: { name: 'p', namespace: 'shop' }, spec: { containers: [{ name: 'app', image: 'x' }] } }));
    assert.equal(good.json?.response?.allowed, true);
    assert.equal(typeof good.json?.response?.patch, 'string');
  });

  it('the namespace is the review\'s, not the pod\'s say: a pod claiming `shop` in a kube-system review gets no sidecar', async () => {
    const r = await post(review({ metadata: { name: 'p', namespace: 'shop' }, spec: { containers: [{ name: 'app', image: 'x' }] } }, { namespace: 'kube-system' }));
    assert.equal(r.json?.response?.allowed, true);
    assert.equal(r.json?.response?.patch, undefined);
  });

  it('TLS 1.1 and plaintext HTTP: refused, on the webhook and on the proxies\' port', async () => {
    for (const port of [cp.injectionPort, cp.port]) {
      const old = await new Promise<string>((resolve) => {
        const req = httpsRequest({ host: '127.0.0.1', port, path: '/', ca: ca.rootCertPem, servername: 'localhost', maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }, () => resolve('answered'));
        req.on('error', (e) => resolve(e.message));
        req.end();
      });
      assert.notEqual(old, 'answered');
      const plain = await request(`http://127.0.0.1:${port}/inject`, { method: 'POST', body: '{}' }).then((r) => r.statusCode, (e: Error) => e.message);
      assert.notEqual(plain, 200);
    }
  });

  it('a body over 4 MiB: 413; another path or method: 404', async () => {
    const r = await post(Buffer.alloc(5 << 20, 0x20)).catch((e: Error) => ({ status: 0, json: { error: e.message } }));
    assert.ok(r.status === 413 || r.status === 0, `${r.status}`);
    assert.equal((await post('', 'GET')).status, 404, 'GET');
    assert.equal((await post('{}', 'POST', '/mutate')).status, 404, '/mutate');
  });
});
