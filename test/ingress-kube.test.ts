// Kubernetes Ingress in cluster mode, against the Kubernetes API stand-in: a gateway reading the API
// (list and watch of ingresses and ingressclasses through the real client) serves the Ingresses of
// Istio's class, follows an Ingress applied later, leaves another controller's Ingress alone, and
// writes status.loadBalancer.ingress from the ingress Service's load balancer as istiod does; clears
// it when the Ingress stops being the mesh's; and, with `ingressService: ""`, writes the external
// address of the node its gateway pod runs on, and follows a change of that node's address.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { RunningGateway } from '../src/gateway/main.js';
import { startKubeApi, type KubeApiStandIn } from './helpers/kube-api.js';
import { startKubeGateway } from './helpers/kube-gateway.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { eventually, send } from './helpers/gateway.js';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { INGRESS_CLASSES, ingressPath, ingressYaml } from './helpers/ingress-yaml.js';

const NET = 'networking.k8s.io/v1';

const ingress = (name: string, host: string, className: string): string => ingressYaml(name, host, { namespace: 'shop', className, paths: [ingressPath('/', 'Prefix', 'web', 'http')] });

describe('Kubernetes Ingress with the Kubernetes stand-in: serving and status', () => {
  let api: KubeApiStandIn;
  let web: Upstream;
  let gw: RunningGateway;
  let port: number;
  const lb = (name: string): unknown => (api.get(NET, 'Ingress', 'shop', name)?.status as { loadBalancer?: { ingress?: unknown } } | undefined)?.loadBalancer?.ingress;

  before(async () => {
    api = await startKubeApi();
    web = await startUpstream('web');
    api.applyYaml(serviceYaml('web', [{ pod: 'web-1', port: web.port }], { namespace: 'shop' }));
    // Istio's ingressService (istio-ingressgateway) in the gateway's namespace gives the addresses.
    api.apply({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'istio-ingressgateway', namespace: 'istio-system' },
      spec: { type: 'LoadBalancer', selector: { istio: 'ingressgateway' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }], externalIPs: ['198.51.100.2'] },
      status: { loadBalancer: { ingress: [{ ip: '203.0.113.9' }, { hostname: 'lb.example.net' }] } },
    });
    api.applyYaml(INGRESS_CLASSES);
    api.applyYaml(ingress('shop', 'shop.example.com', 'istio'));
    api.applyYaml(ingress('theirs', 'theirs.example.com', 'nginx'));
    ({ gw, port } = await startKubeGateway(api.kubeconfig()));
  });
  after(async () => {
    await gw?.destroy();
    await api?.close();
    await web?.close();
  });

  it('serves an Ingress of the istio class read from the API (a named service port), not one of nginx', async () => {
    const r = await send(port, 'shop.example.com', '/cart');
    assert.equal(r.status, 200);
    assert.equal(r.json().name, 'web');
    assert.equal((await send(port, 'theirs.example.com', '/')).status, 404);
  });

  it('follows an Ingress applied later (watch)', async () => {
    api.applyYaml(ingress('later', 'later.example.com', 'istio'));
    await eventually(async () => (await send(port, 'later.example.com', '/')).status === 200);
  });

  it("writes status.loadBalancer.ingress from the ingress Service, host names first; another class's Ingress is left alone", async () => {
    await eventually(async () => lb('shop') !== undefined);
    assert.deepEqual(lb('shop'), [{ hostname: 'lb.example.net' }, { ip: '198.51.100.2' }, { ip: '203.0.113.9' }]);
    assert.equal(api.get(NET, 'Ingress', 'shop', 'theirs')?.status, undefined);
  });

  it('clears the status of an Ingress whose class moves to another controller, and leaves that controller\'s addresses alone', async () => {
    await eventually(async () => lb('shop') !== undefined);
    const theirs = api.get(NET, 'Ingress', 'shop', 'theirs')!;
    api.apply({ ...theirs, status: { loadBalancer: { ingress: [{ ip: '192.0.2.50' }] } } });
    const shop = api.get(NET, 'Ingress', 'shop', 'shop')!;
    api.apply({ ...shop, spec: { ...shop.spec, ingressClassName: 'nginx' } });
    await eventually(async () => lb('shop') === undefined);
    assert.deepEqual(api.get(NET, 'Ingress', 'shop', 'shop')?.status, { loadBalancer: {} });
    assert.equal((await send(port, 'shop.example.com', '/cart')).status, 404);

    api.apply({ ...shop, spec: { ...shop.spec, ingressClassName: 'istio' }, status: { loadBalancer: {} } });
    await eventually(async () => Array.isArray(lb('shop')) && (lb('shop') as unknown[]).length === 3);
    assert.deepEqual(lb('theirs'), [{ ip: '192.0.2.50' }], "nginx's address was never touched");
  });
});

describe('Kubernetes Ingress with the Kubernetes stand-in: node addresses without an ingressService', () => {
  let api: KubeApiStandIn;
  let gw: RunningGateway;
  const lb = (): unknown => (api.get(NET, 'Ingress', 'shop', 'shop')?.status as { loadBalancer?: { ingress?: unknown } } | undefined)?.loadBalancer?.ingress;
  const gatewayPod = (name: string, node: string, phase: string) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'istio-system', labels: { istio: 'ingressgateway' } },
    spec: { nodeName: node, containers: [{ name: 'istio-proxy', image: 'meshgate' }] },
    status: { phase, podIP: '10.1.0.5' },
  });

  before(async () => {
    api = await startKubeApi();
    api.applyYaml('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata:\n  mesh: |\n    ingressService: ""\n');
    api.applyYaml(serviceYaml('web', [{ pod: 'web-1', port: 9 }], { namespace: 'shop' }));
    // A Pending pod's node, and a running pod on a node that is gone, give nothing: the next pod's node does.
    api.apply(gatewayPod('gw-a', 'node-pending', 'Pending'));
    api.apply(gatewayPod('gw-b', 'node-gone', 'Running'));
    api.apply(gatewayPod('gw-c', 'node-1', 'Running'));
    api.apply({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-pending' }, status: { addresses: [{ type: 'ExternalIP', address: '198.51.100.1' }] } });
    api.apply({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-1' }, status: { addresses: [{ type: 'InternalIP', address: '10.0.0.7' }, { type: 'ExternalIP', address: '198.51.100.7' }] } });
    api.applyYaml(INGRESS_CLASSES);
    api.applyYaml(ingress('shop', 'shop.example.com', 'istio'));
    ({ gw } = await startKubeGateway(api.kubeconfig()));
  });
  after(async () => {
    await gw?.destroy();
    await api?.close();
  });

  it("writes the ExternalIP of the first running gateway pod's node that can be read, as istiod does", async () => {
    await eventually(async () => lb() !== undefined);
    assert.deepEqual(lb(), [{ ip: '198.51.100.7' }]);
    const reads = api.requests.filter((r) => r.path.startsWith('/api/v1/nodes/')).map((r) => r.path);
    assert.deepEqual([...new Set(reads)], ['/api/v1/nodes/node-gone', '/api/v1/nodes/node-1']);
    const lists = api.requests.filter((r) => r.path === '/api/v1/nodes');
    assert.ok(lists.every((r) => /^metadata\.name=node-(1|gone)$/.test(r.query.fieldSelector ?? '')), 'nodes are listed and watched one by one by name, never all of them');
  });

  it("follows a change of that node's ExternalIP without a configuration change (a watch on the node)", async () => {
    await api.until(() => JSON.stringify(lb()) === JSON.stringify([{ ip: '198.51.100.7' }]), 'the first status');
    await api.until(() => api.openWatches('nodes') > 0, 'a watch on the nodes');
    const node = api.get('v1', 'Node', '', 'node-1')!;
    api.apply({ ...node, status: { addresses: [{ type: 'ExternalIP', address: '198.51.100.8' }] } });
    await api.until(() => JSON.stringify(lb()) === JSON.stringify([{ ip: '198.51.100.8' }]), 'the status with the new address');
  });
});
