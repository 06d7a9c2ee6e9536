// BackendTLSPolicy in cluster mode, against the Kubernetes API stand-in: the gateway watches the
// policies and the ConfigMaps they name, originates TLS by them, and writes each policy's ancestors
// to its status subresource. A ConfigMap deleted under a policy makes its connections fail (503)
// and its status ResolvedRefs False; put back, both recover.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { RunningGateway } from '../src/gateway/main.js';
import { issueCertificate } from '../src/core/tls/issue-certificate.js';
import { startKubeApi, type KubeApiStandIn } from './helpers/kube-api.js';
import { startKubeGateway } from './helpers/kube-gateway.js';
import { eventually, send } from './helpers/gateway.js';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { httpRouteYaml, k8sGatewayYaml, MESHGATE_CLASS_YAML } from './helpers/gateway-api-yaml.js';
import { newRoot, startTlsUpstream, type Pem, type TlsSeen, type TlsUpstream } from './helpers/mesh-tls.js';

const GW = 'gateway.networking.k8s.io/v1';

type Cond = { type: string; status: string; reason: string; observedGeneration?: number };
type Ancestor = { ancestorRef: Record<string, string>; controllerName: string; conditions: Cond[] };

describe('BackendTLSPolicy with the Kubernetes stand-in', () => {
  let api: KubeApiStandIn;
  let root: Pem;
  let backend: TlsUpstream;
  let gw: RunningGateway;
  let port: number;
  const ancestors = (): Ancestor[] => (api.get(GW, 'BackendTLSPolicy', 'shop', 'api-tls')?.status?.ancestors as Ancestor[] | undefined) ?? [];
  const shown = (): string[] => ancestors().map((a) => `${a.ancestorRef.kind} ${a.ancestorRef.name} [${a.controllerName}]: ${a.conditions.map((c) => `${c.type}=${c.status}/${c.reason}`).join(' ')}`);
  const caMap = (): Record<string, unknown> => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'api-ca', namespace: 'shop' }, data: { 'ca.crt': root.certPem } });

  before(async () => {
    root = newRoot('shop root');
    backend = await startTlsUpstream('api', { cert: issueCertificate({ subjectCN: 'api.shop.test', dnsNames: ['api.shop.test'], issuer: root, days: 1, keyType: 'ec' }) });
    api = await startKubeApi();
    api.applyYaml(serviceYaml('api', [{ pod: 'api-1', port: backend.port }], { namespace: 'shop', port: 443, portName: 'https' }));
    api.apply(caMap());
    // A ConfigMap no policy names: not read.
    api.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'unrelated', namespace: 'shop' }, data: { other: 'x' } });
    api.applyYaml(MESHGATE_CLASS_YAML);
    api.applyYaml(k8sGatewayYaml('edge', '  - {name: http, port: 80, protocol: HTTP}', 'shop'));
    api.applyYaml(httpRouteYaml('api', { namespace: 'shop', gateway: 'edge', hostname: 'api.example', backend: 'api', port: 443 }));
    api.applyYaml(`apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {name: api-tls, namespace: shop, generation: 1}
spec:
  targetRefs: [{group: "", kind: Service, name: api}]
  validation:
    hostname: api.shop.test
    caCertificateRefs: [{group: "", kind: ConfigMap, name: api-ca}]
`);
    ({ gw, port } = await startKubeGateway(api.kubeconfig()));
  });
  after(async () => {
    await gw?.destroy();
    await api?.close();
    await backend?.close();
  });

  it('originates TLS by a policy and the ConfigMap it names, both read from the API', async () => {
    const r = await send(port, 'api.example', '/');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json<TlsSeen>().sni, 'api.shop.test');
    const configMaps = gw.holder.current()!.resources.filter((x) => x.kind === 'ConfigMap').map((x) => `${x.metadata.namespace}/${x.metadata.name}`);
    assert.deepEqual(configMaps, ['shop/api-ca']);
  });

  it("writes the policy's ancestors: the Service and the Gateway routing to it", async () => {
    await eventually(async () => ancestors().length === 2);
    assert.deepEqual(shown(), [
      'Service api [meshgate.io/gateway-controller]: Accepted=True/Accepted ResolvedRefs=True/ResolvedRefs',
      'Gateway edge [meshgate.io/gateway-controller]: Accepted=True/Accepted ResolvedRefs=True/ResolvedRefs',
    ]);
    assert.deepEqual(ancestors()[0]!.ancestorRef, { group: '', kind: 'Service', name: 'api' });
    assert.deepEqual(ancestors()[1]!.ancestorRef, { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'edge' });
    assert.equal(ancestors()[0]!.conditions[0]!.observedGeneration, 1);
  });

  it('a ConfigMap deleted under the policy: 503, never plaintext, and ResolvedRefs False; back, both recover', async () => {
    const before = backend.seen.length;
    api.delete('ConfigMap', 'shop', 'api-ca');
    await eventually(async () => (await send(port, 'api.example', '/')).status === 503);
    assert.ok(backend.seen.slice(before).every((s) => s.sni === 'api.shop.test'));
    await eventually(async () => shown()[0]?.includes('ResolvedRefs=False/InvalidCACertificateRef') ?? false);
    assert.match(shown()[0]!, /Accepted=False\/NoValidCACertificate/);
    api.apply(caMap());
    await eventually(async () => (await send(port, 'api.example', '/')).status === 200);
    await eventually(async () => shown()[0]?.includes('ResolvedRefs=True/ResolvedRefs') ?? false);
  });
});
