// TCPRoutes and TLSRoutes attached to a Service (GAMMA), as Istio takes them in its mesh: a sidecar's
// TCP to the Service goes where the TCPRoute says, TLS by the TLSRoute's hostnames as SNI; the route
// is Accepted on its Service parent and the control plane sends it to the sidecars that call that
// Service. YAML through the snapshot, then a real sidecar with capture stood in for.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigText } from '../src/core/config/load.js';
import { buildSnapshot } from '../src/core/snapshot/build.js';
import type { SidecarRole, Snapshot } from '../src/core/snapshot/snapshot.js';
import { ScopeIndex } from '../src/control/proxy-scope.js';
import { startSidecar, type RunningSidecar } from '../src/sidecar/main.js';
import { FIXED_DEPS } from './helpers/route-table.js';
import { sidecarOptions, testAuthority, untilSnapshot } from './helpers/mesh.js';
import { readCaptured, RecordedDestinations } from './helpers/original-destinations.js';
import { NO_APP } from './helpers/ports.js';

const ECHO_IP = '240.0.0.20';

const service = (name: string, port: number, portName: string, extra = ''): string => `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: default}
spec: {selector: {app: ${name}}, ports: [{name: ${portName}, port: ${port}}]${extra}}
---
`;

const endpoint = (svc: string, port: number, portName: string): string => `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ${svc}-0, namespace: default, labels: {kubernetes.io/service-name: ${svc}}}
addressType: IPv4
ports: [{name: ${portName}, port: ${port}}]
endpoints: [{addresses: [127.0.0.1]}]
---
`;

const tcpRoute = (backend: string, ns = 'default'): string => `apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: echo, namespace: ${ns}}
spec:
  parentRefs: [{group: "", kind: Service, name: tcp-echo, namespace: default, port: 9000}]
  rules: [{backendRefs: [${backend}]}]
`;

const CLIENT: SidecarRole = Object.freeze({ kind: 'sidecar', namespace: 'default', labels: Object.freeze({ app: 'client' }), serviceAccount: 'client', outboundTrafficPolicy: 'ALLOW_ANY' });

function snapshotOf(yaml: string): Snapshot {
  const { snapshot, problems } = buildSnapshot(parseConfigText(yaml, 'mesh.yaml'), CLIENT, FIXED_DEPS);
  assert.deepEqual(problems.filter((p) => p.severity === 'error'), []);
  return snapshot;
}

const ECHOES = `${service('tcp-echo', 9000, 'tcp', `, clusterIP: ${ECHO_IP}`)}${service('tcp-echo-v1', 9000, 'tcp')}${service('tcp-echo-v2', 9000, 'tcp')}`;

describe('GAMMA: TCPRoute and TLSRoute attached to a Service, compiled for a sidecar', () => {
  it("TCPRoute: the Service's TCP goes to the route's backends, by weight, on the parentRef's port; Accepted", () => {
    const snap = snapshotOf(ECHOES + tcpRoute('{name: tcp-echo-v1, port: 9000, weight: 80}, {name: tcp-echo-v2, port: 9000, weight: 20}'));
    const target = snap.meshTcp!.byAddress(ECHO_IP, 9000)!;
    assert.deepEqual(target.route.destinations.map((d) => `${d.clusterName} ${d.weight}`), ['outbound|9000||tcp-echo-v1.default.svc.cluster.local 80', 'outbound|9000||tcp-echo-v2.default.svc.cluster.local 20']);
    const parents = snap.gatewayApi!.routes.find((r) => r.resource.kind === 'TCPRoute')!.parents;
    assert.deepEqual(parents[0]!.conditions.map((c) => `${c.type} ${c.status} ${c.reason}`), ['Accepted True Accepted', 'ResolvedRefs True ResolvedRefs']);
  });

  it('TCPRoute whose backends all weigh 0 refuses the connection instead of reaching the Service', () => {
    const snap = snapshotOf(ECHOES + tcpRoute('{name: tcp-echo-v1, port: 9000, weight: 0}'));
    const dest = snap.meshTcp!.byAddress(ECHO_IP, 9000)!.route.destinations;
    assert.equal(dest.length, 1);
    assert.equal(dest[0]!.cluster, undefined, 'no cluster: the connection is closed (NC)');
  });

  it("a consumer's TCPRoute (another namespace) applies to its own namespace's sidecars only", () => {
    const yaml = ECHOES + tcpRoute('{name: tcp-echo-v2, namespace: default, port: 9000}', 'frontend') + '---\napiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {name: g, namespace: default}\nspec: {from: [{group: gateway.networking.k8s.io, kind: TCPRoute, namespace: frontend}], to: [{group: "", kind: Service}]}\n';
    const inDefault = snapshotOf(yaml).meshTcp!.byAddress(ECHO_IP, 9000)!;
    assert.equal(inDefault.route.destinations[0]!.clusterName, 'outbound|9000||tcp-echo.default.svc.cluster.local');
    const { snapshot } = buildSnapshot(parseConfigText(yaml, 'mesh.yaml'), { ...CLIENT, namespace: 'frontend' }, FIXED_DEPS);
    assert.equal(snapshot.meshTcp!.byAddress(ECHO_IP, 9000)!.route.destinations[0]!.clusterName, 'outbound|9000||tcp-echo-v2.default.svc.cluster.local');
  });

  it("TLSRoute: the hostnames pick by SNI (the Service's own name without any); other names keep the Service's route", () => {
    const tls = `${service('api', 443, 'tls', `, clusterIP: 240.0.0.21`)}${service('api-v2', 443, 'tls')}apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata: {name: api}
spec:
  parentRefs: [{group: "", kind: Service, name: api}]
  hostnames: [api.example.com]
  rules: [{backendRefs: [{name: api-v2, port: 443}]}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata: {name: own}
spec:
  parentRefs: [{group: "", kind: Service, name: api-v2}]
  rules: [{backendRefs: [{name: api, port: 443}]}]
`;
    const snap = snapshotOf(tls);
    const api = snap.meshTcp!.byAddress('240.0.0.21', 443)!;
    assert.equal(api.sni!.lookup('api.example.com')!.destinations[0]!.clusterName, 'outbound|443||api-v2.default.svc.cluster.local');
    assert.equal(api.sni!.lookup('other.example.com'), undefined);
    assert.equal(api.route.destinations[0]!.clusterName, 'outbound|443||api.default.svc.cluster.local');
    const own = snap.meshTcp!.byHost('api-v2.default.svc.cluster.local', 443)!;
    assert.equal(own.sni!.lookup('api-v2.default.svc.cluster.local')!.destinations[0]!.clusterName, 'outbound|443||api.default.svc.cluster.local');
    const parents = snap.gatewayApi!.routes.filter((r) => r.resource.kind === 'TLSRoute').map((r) => r.parents[0]!.conditions[0]!.reason);
    assert.deepEqual(parents, ['Accepted', 'Accepted']);
  });

  it('the control plane sends a TCPRoute to the sidecars that call its Service', () => {
    const index = new ScopeIndex(parseConfigText(ECHOES + tcpRoute('{name: tcp-echo-v2, port: 9000}'), 'all.yaml').resources);
    const names = [...index.scope({ role: 'sidecar', namespace: 'default', labels: {} })].map((r) => `${r.kind} ${r.metadata.namespace}/${r.metadata.name}`);
    assert.ok(names.includes('TCPRoute default/echo'), names.join(', '));
  });
});

describe("GAMMA: a sidecar's captured TCP follows the TCPRoute attached to the Service", () => {
  let dir: string;
  let client: RunningSidecar;
  const servers: Server[] = [];
  const destinations = new RecordedDestinations();

  before(async () => {
    const ca = await testAuthority();
    dir = await mkdtemp(join(tmpdir(), 'meshgate-gamma-l4-'));
    const ports: number[] = [];
    for (const name of ['v1', 'v2']) {
      const server = createServer((s) => {
        s.on('error', () => s.destroy());
        s.end(name);
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      servers.push(server);
      ports.push((server.address() as AddressInfo).port);
    }
    const yaml = ECHOES.replace('selector: {app: tcp-echo}', 'selector: {app: none}') + endpoint('tcp-echo-v1', ports[0]!, 'tcp') + endpoint('tcp-echo-v2', ports[1]!, 'tcp');
    await writeFile(join(dir, 'mesh.yaml'), yaml + tcpRoute('{name: tcp-echo-v2, port: 9000}'));
    client = await startSidecar({ ...sidecarOptions(ca, dir, 'client', NO_APP), capture: true, originalDestination: destinations });
    await untilSnapshot(client.holder, (s) => s.meshTcp?.byAddress(ECHO_IP, 9000)?.route.destinations[0]?.clusterName.includes('tcp-echo-v2') === true);
  });

  after(async () => {
    await client?.destroy();
    for (const s of servers) s.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('reaches the backend the route names, not the Service', async () => {
    assert.equal(await readCaptured(client.outboundPort, destinations, ECHO_IP, 9000, Buffer.from('hi')), 'v2');
    // The server-first check: nothing sent, the backend still answers (a declared TCP port is not sniffed).
    assert.equal(await readCaptured(client.outboundPort, destinations, ECHO_IP, 9000), 'v2');
  });
});
