// Integration: destinations described by ServiceEntry (STATIC and DNS resolution) and WorkloadEntry,
// routed by a real gateway to real upstreams.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { gatewayYaml } from './helpers/cluster-yaml.js';

describe('ServiceEntry and WorkloadEntry destinations', () => {
  let a: Upstream, b: Upstream, vm: Upstream;
  let gw: TestGateway;

  before(async () => {
    a = await startUpstream('static-a');
    b = await startUpstream('static-b');
    vm = await startUpstream('vm');
    gw = await startTestGateway({
      'gw.yaml': gatewayYaml(['*.example.com']),
      'se.yaml': `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: static}
spec:
  hosts: [static.internal]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints:
  - {address: 127.0.0.1, ports: {http: ${a.port}}, labels: {track: stable}}
  - {address: 127.0.0.1, ports: {http: ${b.port}}, labels: {track: canary}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: dns}
spec:
  hosts: [dns.internal]
  resolution: DNS
  ports: [{number: 8000, name: http, protocol: HTTP, targetPort: ${vm.port}}]
  endpoints:
  - address: localhost
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: vms}
spec:
  hosts: [vms.internal]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: vm}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: vm-1}
spec:
  address: 127.0.0.1
  ports: {http: ${vm.port}}
  labels: {app: vm}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: static}
spec:
  host: static.internal
  subsets: [{name: canary, labels: {track: canary}}]
`,
      'vs.yaml': `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: se}
spec:
  hosts: [se.example.com]
  gateways: [gw]
  http:
  - match: [{uri: {prefix: /canary}}]
    route: [{destination: {host: static.internal, subset: canary}}]
  - match: [{uri: {prefix: /dns}}]
    route: [{destination: {host: dns.internal}}]
  - match: [{uri: {prefix: /vm}}]
    route: [{destination: {host: vms.internal}}]
  - route: [{destination: {host: static.internal}}]
`,
    });
  });

  after(async () => {
    await gw?.close();
    await Promise.all([a, b, vm].map((u) => u?.close()));
  });

  it('balances over STATIC endpoints', async () => {
    const names = new Set<string>();
    for (let i = 0; i < 40; i++) names.add((await gw.get('se.example.com', '/')).json().name as string);
    assert.deepEqual([...names].sort(), ['static-a', 'static-b']);
  });

  it('selects ServiceEntry endpoints by subset labels', async () => {
    for (let i = 0; i < 10; i++) assert.equal((await gw.get('se.example.com', '/canary')).json().name, 'static-b');
  });

  it('resolves DNS endpoints by name, on the target port', async () => {
    assert.equal((await gw.get('se.example.com', '/dns')).json().name, 'vm');
  });

  it('selects WorkloadEntries with workloadSelector', async () => {
    assert.equal((await gw.get('se.example.com', '/vm')).json().name, 'vm');
  });
});
