// The Gateway API in cluster mode, against the Kubernetes API stand-in: a gateway reading the API
// serves a Gateway of meshgate's class and its HTTPRoutes, and writes status through the status
// subresource as a conformant implementation must (GatewayClass Accepted; Gateway Accepted and
// Programmed with observedGeneration, listeners with attachedRoutes, addresses from the gateway
// Service's load balancer; each route parent Accepted and ResolvedRefs with their reasons).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { RunningGateway } from '../src/gateway/main.js';
import { startKubeApi, type KubeApiStandIn } from './helpers/kube-api.js';
import { startKubeGateway } from './helpers/kube-gateway.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { eventually, send } from './helpers/gateway.js';
import { serviceYaml } from './helpers/cluster-yaml.js';

const NS = 'gateway-conformance-infra';
const GW = 'gateway.networking.k8s.io/v1';

type Cond = { type: string; status: string; reason: string; observedGeneration?: number; lastTransitionTime?: string };
const show = (list: Cond[] | undefined, type: string): string => {
  const c = list?.find((x) => x.type === type);
  return c ? `${c.status}/${c.reason}` : 'absent';
};

describe('Gateway API with the Kubernetes stand-in: serving and status', () => {
  let api: KubeApiStandIn;
  let v1: Upstream, web: Upstream;
  let gw: RunningGateway;
  let port: number;
  const gatewayStatus = () => api.get(GW, 'Gateway', NS, 'same-namespace')?.status as { conditions?: Cond[]; listeners?: Array<{ name: string; attachedRoutes: number; conditions: Cond[] }>; addresses?: unknown[] } | undefined;
  const routeParent = (ns: string, name: string) =>
    (api.get(GW, 'HTTPRoute', ns, name)?.status?.parents as Array<{ controllerName: string; parentRef: { name: string }; conditions: Cond[] }> | undefined)?.find((p) => p.controllerName === 'meshgate.io/gateway-controller');

  before(async () => {
    api = await startKubeApi();
    v1 = await startUpstream('infra-backend-v1');
    web = await startUpstream('web-backend');
    api.applyYaml(serviceYaml('infra-backend-v1', [{ pod: 'infra-backend-v1-1', port: v1.port }], { namespace: NS, port: 8080 }));
    api.applyYaml(serviceYaml('web-backend', [{ pod: 'web-backend-1', port: web.port }], { namespace: 'web', port: 8080 }));
    // The gateway's own Service: its load balancer's address becomes the Gateway's.
    api.apply({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'meshgate-gateway', namespace: 'istio-system' },
      spec: { type: 'LoadBalancer', selector: { istio: 'ingressgateway' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
      status: { loadBalancer: { ingress: [{ ip: '203.0.113.7' }] } },
    });
    api.applyYaml(`apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: meshgate}
spec: {controllerName: meshgate.io/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: someone-else}
spec: {controllerName: example.com/other-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: same-namespace, namespace: ${NS}}
spec:
  gatewayClassName: meshgate
  listeners:
  - {name: http, port: 80, protocol: HTTP}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: not-ours, namespace: ${NS}}
spec:
  gatewayClassName: someone-else
  listeners:
  - {name: http, port: 80, protocol: HTTP, hostname: other.example}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: api, namespace: ${NS}}
spec:
  parentRefs: [{name: same-namespace}]
  hostnames: [api.example]
  rules:
  - backendRefs: [{name: infra-backend-v1, port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: cross, namespace: ${NS}}
spec:
  parentRefs: [{name: same-namespace}]
  hostnames: [cross.example]
  rules:
  - backendRefs: [{name: web-backend, namespace: web, port: 8080}]
`);
    ({ gw, port } = await startKubeGateway(api.kubeconfig()));
  });
  after(async () => {
    await gw?.destroy();
    await api?.close();
    await v1?.close();
    await web?.close();
  });

  it('serves the HTTPRoute of a Gateway read from the API', async () => {
    const r = await send(port, 'api.example', '/');
    assert.equal(r.status, 200);
    assert.equal(r.json().name, 'infra-backend-v1');
    assert.equal((await send(port, 'cross.example', '/')).status, 500);
  });

  it('writes GatewayClass, Gateway and listener status', async () => {
    await eventually(async () => show(gatewayStatus()?.conditions, 'Programmed') === 'True/Programmed');
    const s = gatewayStatus()!;
    assert.equal(show(s.conditions, 'Accepted'), 'True/Accepted');
    assert.equal(s.conditions!.find((c) => c.type === 'Accepted')!.observedGeneration, 1);
    assert.deepEqual(s.addresses, [{ type: 'IPAddress', value: '203.0.113.7' }]);
    const listener = s.listeners!.find((l) => l.name === 'http')!;
    assert.equal(listener.attachedRoutes, 2);
    assert.equal(show(listener.conditions, 'ResolvedRefs'), 'True/ResolvedRefs');
    assert.equal(show(listener.conditions, 'Programmed'), 'True/Programmed');
    await eventually(async () => show(api.get(GW, 'GatewayClass', '', 'meshgate')?.status?.conditions, 'Accepted') === 'True/Accepted');
    // Another controller's class and Gateway are left alone.
    assert.equal(api.get(GW, 'GatewayClass', '', 'someone-else')?.status, undefined);
    assert.equal(api.get(GW, 'Gateway', NS, 'not-ours')?.status, undefined);
  });

  it('writes route parents: Accepted, and ResolvedRefs False RefNotPermitted without a ReferenceGrant', async () => {
    await eventually(async () => routeParent(NS, 'api') !== undefined && routeParent(NS, 'cross') !== undefined);
    assert.equal(show(routeParent(NS, 'api')!.conditions, 'Accepted'), 'True/Accepted');
    assert.equal(show(routeParent(NS, 'api')!.conditions, 'ResolvedRefs'), 'True/ResolvedRefs');
    assert.equal(show(routeParent(NS, 'cross')!.conditions, 'Accepted'), 'True/Accepted');
    assert.equal(show(routeParent(NS, 'cross')!.conditions, 'ResolvedRefs'), 'False/RefNotPermitted');
    api.applyYaml(`apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: from-infra, namespace: web}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: ${NS}}]
  to: [{group: "", kind: Service}]
`);
    await eventually(async () => show(routeParent(NS, 'cross')?.conditions, 'ResolvedRefs') === 'True/ResolvedRefs');
    assert.equal((await send(port, 'cross.example', '/')).json().name, 'web-backend');
  });

  it('follows a spec change with observedGeneration, and stops writing once nothing changes', async () => {
    api.applyYaml(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: same-namespace, namespace: ${NS}}
spec:
  gatewayClassName: meshgate
  listeners:
  - {name: http, port: 80, protocol: HTTP}
  - {name: udp, port: 5353, protocol: UDP}
`);
    await eventually(async () => gatewayStatus()?.conditions?.find((c) => c.type === 'Accepted')?.observedGeneration === 2);
    const s = gatewayStatus()!;
    assert.equal(show(s.conditions, 'Accepted'), 'True/ListenersNotValid');
    assert.equal(show(s.listeners!.find((l) => l.name === 'udp')!.conditions, 'Accepted'), 'False/UnsupportedProtocol');
    // Status writes settle: each write brings a new snapshot, which must find nothing left to write.
    const settled = async (): Promise<boolean> => {
      const n = api.statusWrites.length;
      await new Promise((r) => setTimeout(r, 300));
      return api.statusWrites.length === n;
    };
    await eventually(settled);
  });
});
