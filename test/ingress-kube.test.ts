// Kubernetes Ingress in cluster mode, against the Kubernetes API stand-in: a gateway reading the API
// (list and watch of ingresses and ingressclasses through the real client) serves the Ingresses of
// Istio's class, follows an Ingress applied later, leaves another controller's Ingress alone, and
// writes status.loadBalancer.ingress from the ingress Service's load balancer as istiod does.

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
});
