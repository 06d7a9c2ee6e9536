// The control plane in cluster mode against the API stand-in, with the real @kubernetes/client-node:
// the CA kept in Secrets as istiod keeps it (istio-ca-secret made once and reused after a restart,
// an operator's cacerts preferred, a broken one named), callers authenticated by TokenReview with
// the identity from the review and never from the request, and the mesh root published as the
// ConfigMap istio-ca-root-cert in every namespace and put back when deleted or changed. A proxy then
// joins with nothing but its projected token and the root read from that ConfigMap. Gateway API
// Gateways get gateways of their own (gateway-deployment.test.ts tests that in detail).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Agent, request } from 'undici';
import { createWorkloadCsr } from '../src/core/pki/workload-csr.js';
import { spiffeIdsOfCertificate } from '../src/core/pki/spiffe.js';
import { issueCertificate } from '../src/core/tls/issue-certificate.js';
import { connectToMesh } from '../src/core/sources/mesh-connection.js';
import { KubeSource } from '../src/core/sources/kube-source.js';
import { startControlPlane, type RunningControlPlane } from '../src/control/main.js';
import { loadOrCreateCaSecrets } from '../src/control/ca-secrets.js';
import { TokenReviewAuthenticator } from '../src/control/token-review.js';
import { ROOT_CONFIGMAP } from '../src/control/root-cert-publisher.js';
import { runControlCommand } from '../src/cli/control.js';
import { startKubeApi, type KubeApiStandIn } from './helpers/kube-api.js';
import { eventually } from './helpers/gateway.js';

const silent = pino({ level: 'silent' });
const FAST = { initialMs: 50, maxMs: 400 };
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const namespace = (name: string) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name }, status: { phase: 'Active' } });

describe('control plane in cluster mode', () => {
  let api: KubeApiStandIn;
  before(async () => {
    api = await startKubeApi();
    for (const ns of ['default', 'istio-system', 'shop', 'kube-system']) api.apply(namespace(ns));
  });
  after(async () => {
    await api?.close();
  });

  it('keeps its self-signed root in Secret istio-ca-secret: made on the first start, the same after a restart', async () => {
    const first = await loadOrCreateCaSecrets(api.kubeconfig(), 'istio-system');
    assert.ok(first.ok, first.ok ? '' : first.message);
    const stored = api.get('v1', 'Secret', 'istio-system', 'istio-ca-secret');
    assert.ok(stored, 'Secret istio-ca-secret created');
    assert.equal(stored.type, 'istio.io/ca-root');
    assert.deepEqual(Object.keys(stored.data).sort(), ['ca-cert.pem', 'ca-key.pem', 'root-cert.pem']);
    assert.equal(Buffer.from(stored.data['ca-cert.pem'], 'base64').toString(), first.ca.rootCertPem);
    assert.equal(first.ca.source, 'self-signed');
    const again = await loadOrCreateCaSecrets(api.kubeconfig(), 'istio-system');
    assert.ok(again.ok);
    assert.equal(again.ca.rootCertPem, first.ca.rootCertPem, 'a restart keeps the root every proxy trusts');
    assert.equal(api.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/secrets')).length, 1, 'created once');
  });

  it('two replicas starting at once: the API server lets one create istio-ca-secret, and both use that root', async () => {
    const before = api.requests.length;
    const [a, b] = await Promise.all([loadOrCreateCaSecrets(api.kubeconfig(), 'race'), loadOrCreateCaSecrets(api.kubeconfig(), 'race')]);
    assert.ok(a.ok && b.ok);
    const stored = Buffer.from(api.get('v1', 'Secret', 'race', 'istio-ca-secret')!.data['ca-cert.pem'], 'base64').toString();
    assert.equal(a.ca.rootCertPem, stored);
    assert.equal(b.ca.rootCertPem, stored, 'the loser of the create uses the winner\'s root, not its own');
    const creates = api.requests.slice(before).filter((r) => r.method === 'POST' && r.path === '/api/v1/namespaces/race/secrets');
    assert.equal(creates.filter((r) => r.status === 201).length, 1);
    assert.ok(creates.every((r) => r.status === 201 || r.status === 409), JSON.stringify(creates.map((r) => r.status)));
  });

  it("prefers an operator's cacerts Secret, and names the key when it is broken", async () => {
    const root = issueCertificate({ subjectCN: 'operator root', days: 30, isCA: true, keyType: 'ec' });
    const inter = issueCertificate({ subjectCN: 'cluster intermediate', days: 10, isCA: true, keyType: 'ec', issuer: root });
    const plugged = { 'ca-cert.pem': inter.certPem, 'ca-key.pem': inter.keyPem, 'root-cert.pem': root.certPem, 'cert-chain.pem': inter.certPem + root.certPem };
    api.apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'cacerts', namespace: 'plug' }, type: 'Opaque', data: Object.fromEntries(Object.entries(plugged).map(([k, v]) => [k, b64(v)])) });
    const ca = await loadOrCreateCaSecrets(api.kubeconfig(), 'plug');
    assert.ok(ca.ok, ca.ok ? '' : ca.message);
    assert.equal(ca.ca.source, 'plugged-in');
    assert.equal(ca.ca.rootCertPem, root.certPem);
    assert.equal(api.get('v1', 'Secret', 'plug', 'istio-ca-secret'), undefined, 'no self-signed root is made beside a plugged-in CA');
    const signed = ca.ca.signWorkloadCsr(createWorkloadCsr({ keyType: 'ec' }).csrPem, { trustDomain: 'cluster.local', namespace: 'a', serviceAccount: 'b' });
    assert.ok(signed.ok);
    assert.equal(signed.certChain.at(-1), root.certPem);

    api.apply({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'cacerts', namespace: 'broken' }, type: 'Opaque', data: { 'ca-cert.pem': b64(inter.certPem), 'ca-key.pem': b64(root.keyPem), 'root-cert.pem': b64(root.certPem), 'cert-chain.pem': b64(inter.certPem) } });
    const bad = await loadOrCreateCaSecrets(api.kubeconfig(), 'broken');
    assert.equal(bad.ok, false);
    assert.match(bad.ok ? '' : bad.message, /Secret broken\/cacerts key ca-key\.pem does not match/);
  });

  describe('serving proxies', () => {
    let cp: RunningControlPlane;
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'meshgate-cp-kube-'));
      const kubeconfig = api.kubeconfig();
      const ca = await loadOrCreateCaSecrets(kubeconfig, 'istio-system');
      assert.ok(ca.ok);
      cp = await startControlPlane({
        ca: ca.ca,
        authenticator: new TokenReviewAuthenticator({ kubeconfig, cacheMs: 0 }),
        source: new KubeSource({ kubeconfig, debounceMs: 20, backoff: FAST, logger: silent }),
        kubeconfig,
        kubeBackoff: FAST,
        gatewayImage: 'registry.example/meshgate:1.2.3',
        port: 0,
        statusPort: 0,
        listenHost: '127.0.0.1',
        logger: silent,
      });
    });
    after(async () => {
      await cp?.destroy();
      await rm(dir, { recursive: true, force: true });
    });

    const rootIn = (ns: string): string | undefined => api.get('v1', 'ConfigMap', ns, ROOT_CONFIGMAP)?.data?.['root-cert.pem'];

    it('publishes the root as ConfigMap istio-ca-root-cert in every namespace, and keeps it there', async () => {
      await eventually(async () => ['default', 'istio-system', 'shop'].every((ns) => rootIn(ns) === cp.rootCertPem));
      assert.equal(api.get('v1', 'ConfigMap', 'kube-system', ROOT_CONFIGMAP), undefined, 'kube-system is left alone');
      assert.equal(api.get('v1', 'ConfigMap', 'shop', ROOT_CONFIGMAP)!.metadata.labels['istio.io/config'], 'true');

      api.apply(namespace('late'));
      await eventually(async () => rootIn('late') === cp.rootCertPem);

      api.delete('ConfigMap', 'shop', ROOT_CONFIGMAP);
      await eventually(async () => rootIn('shop') === cp.rootCertPem);

      const edited = api.get('v1', 'ConfigMap', 'default', ROOT_CONFIGMAP)!;
      api.apply({ ...edited, data: { 'root-cert.pem': 'not the root' } });
      await eventually(async () => rootIn('default') === cp.rootCertPem);

      // The publisher reads only ConfigMaps of that name; the one list without a selector is the
      // configuration's, for the CAs BackendTLSPolicies name (it keeps only those).
      const lists = api.requests.filter((x) => x.method === 'GET' && x.path === '/api/v1/configmaps');
      assert.ok(lists.some((r) => r.query.fieldSelector === `metadata.name=${ROOT_CONFIGMAP}`));
      for (const r of lists) assert.ok(r.query.fieldSelector === undefined || r.query.fieldSelector === `metadata.name=${ROOT_CONFIGMAP}`, JSON.stringify(r.query));
    });

    it('deploys gateways for a Gateway API Gateway, in the image it was given (automated deployment)', async () => {
      api.apply({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'web', namespace: 'shop' }, spec: { gatewayClassName: 'istio', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] } });
      await eventually(async () => api.get('apps/v1', 'Deployment', 'shop', 'web-istio') !== undefined);
      assert.equal(api.get('apps/v1', 'Deployment', 'shop', 'web-istio')!.spec.template.spec.containers[0].image, 'registry.example/meshgate:1.2.3');
    });

    const post = async (token: string | undefined, csrPem: string) => {
      const dispatcher = new Agent({ connect: { ca: cp.rootCertPem } });
      try {
        const res = await request(`https://127.0.0.1:${cp.port}/v1/certificates`, {
          method: 'POST',
          dispatcher,
          headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
          body: JSON.stringify({ csr: csrPem }),
        });
        return { status: res.statusCode, body: (await res.body.json()) as { certChain?: string[]; error?: string } };
      } finally {
        await dispatcher.close();
      }
    };

    it('issues the identity the TokenReview names, whatever the CSR asks; refuses a token it cannot vouch for', async () => {
      api.addServiceAccountToken('checkout-token', 'shop', 'checkout');
      api.addServiceAccountToken('wrong-audience-token', 'shop', 'checkout', ['https://kubernetes.default.svc']);
      const before = api.requests.length;
      const csr = createWorkloadCsr({ keyType: 'ec' });
      const ok = await post('checkout-token', csr.csrPem);
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      const leaf = new X509Certificate(ok.body.certChain![0]!);
      assert.deepEqual(spiffeIdsOfCertificate(leaf), ['spiffe://cluster.local/ns/shop/sa/checkout']);
      const review = api.requests.slice(before).find((r) => r.path === '/apis/authentication.k8s.io/v1/tokenreviews');
      assert.ok(review, 'a TokenReview was made');
      assert.deepEqual((review.body as { spec: unknown }).spec, { token: 'checkout-token', audiences: ['istio-ca'] });
      assert.equal(review.authorization, `Bearer ${api.token}`, 'with the control plane own credentials');

      assert.equal((await post('no-such-token', csr.csrPem)).status, 401);
      assert.equal((await post('wrong-audience-token', csr.csrPem)).status, 401, 'a token for another audience is refused');
      assert.equal((await post(undefined, csr.csrPem)).status, 401);
      api.tokenReviewFailure = 500;
      try {
        assert.equal((await post('checkout-token', csr.csrPem)).status, 401, 'when the review cannot be made, fail closed');
      } finally {
        api.tokenReviewFailure = undefined;
      }
    });

    it('a proxy joins with its projected token and the root from the mounted ConfigMap', async () => {
      api.addServiceAccountToken('ingress-token', 'istio-system', 'istio-ingressgateway-service-account');
      const tokenFile = join(dir, 'istio-token');
      const rootFile = join(dir, 'root-cert.pem');
      await writeFile(tokenFile, 'ingress-token\n');
      await eventually(async () => rootIn('istio-system') !== undefined);
      await writeFile(rootFile, rootIn('istio-system')!);
      const mesh = await connectToMesh({ url: `https://127.0.0.1:${cp.port}`, tokenFile, rootCertFile: rootFile, proxyId: 'gw-1.istio-system', description: { role: 'gateway', labels: { istio: 'ingressgateway' } }, logger: silent });
      try {
        assert.equal(mesh.identity.current().spiffeId, 'spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account');
      } finally {
        mesh.close();
      }
    });
  });

  it('meshgate control: no bootstrap tokens in cluster mode, and --namespace only there', async () => {
    await assert.rejects(runControlCommand(['--config-source', 'kubernetes', '--tokens', 'x.yaml']), /--tokens is for --config DIR/);
    await assert.rejects(runControlCommand(['--config', 'x', '--tokens', 'x.yaml', '--namespace', 'a']), /--namespace goes with --config-source kubernetes/);
  });
});
