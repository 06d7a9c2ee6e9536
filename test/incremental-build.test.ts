// A reload rebuilds only what the edit touched: routes and clusters of unchanged resources are the
// very objects of the snapshot before, and what an edit reaches through a reference (an
// EndpointSlice or DestinationRule in another file) is rebuilt with it. Either way the snapshot is
// the one a build from scratch makes: same routes, clusters, policies and problems.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigDir } from '../src/core/config/load.js';
import { formatProblem } from '../src/core/config/problem.js';
import { LiveClusters } from '../src/core/policy/live-clusters.js';
import type { CompiledRoute } from '../src/core/routing/types.js';
import { buildSnapshot, type SnapshotDeps } from '../src/core/snapshot/build.js';
import type { ProxyRole, Snapshot } from '../src/core/snapshot/snapshot.js';
import { ConfigFolder } from '../src/core/sources/config-folder.js';

const ROLE: ProxyRole = { kind: 'gateway', labels: { istio: 'ingressgateway' }, namespace: 'istio-system' };
const deps = (): SnapshotDeps => ({ random: () => 0.5, load: { active: () => 0 }, live: new LiveClusters() });

const GATEWAY = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*.example.com"]}]
`;

function service(name: string, prefix = '/api', ip = '10.0.0.1'): string {
  return `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: default}
spec: {ports: [{name: http, port: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: ${name}-1, namespace: default, labels: {kubernetes.io/service-name: ${name}}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: ["${ip}"], conditions: {ready: true}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}, namespace: default}
spec:
  hosts: [${name}.example.com]
  gateways: [gw]
  http:
  - name: api
    match: [{uri: {prefix: ${prefix}}}]
    route: [{destination: {host: ${name}, subset: v1}}]
  - route: [{destination: {host: ${name}}}]
`;
}

function rule(name: string, maxConnections = 10): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${name}, namespace: default}
spec:
  host: ${name}
  trafficPolicy: {connectionPool: {tcp: {maxConnections: ${maxConnections}}}}
  subsets: [{name: v1, labels: {}}]
`;
}

/** What a snapshot serves, as comparable text: every route with its conditions and clusters, every cluster's policy, the problems. */
function served(s: Snapshot): unknown {
  const routes = [...s.routeConfigs.values()].flatMap((rc) =>
    rc.virtualHosts.flatMap((vh) =>
      vh.routes.map((r) => ({
        host: vh.domain,
        name: r.name,
        conditions: r.conditions.map((c) => c.what),
        to: r.action.kind === 'forward' ? r.action.destinations.map((d) => `${d.clusterName} ${d.cluster ? JSON.stringify(d.cluster.policy) : 'none'} ${d.cluster?.endpoints.map((e) => e.address).join(',')}`) : r.action.kind,
      })),
    ),
  );
  const clusters = [...s.clusters.entries()].map(([name, c]) => `${name} ${JSON.stringify(c.policy)} ${c.endpoints.map((e) => e.address).join(',')}`).sort();
  return { routes, clusters, problems: s.problems.map(formatProblem) };
}

function routeOf(s: Snapshot, host: string): CompiledRoute {
  const vh = s.routeConfigs.get('http.80')!.findVirtualHost(host)!;
  return vh.routes[0]!;
}

/** Two services, their rules and a Gateway written to `dir`, read by a ConfigFolder; `read(name)` reads again after an edit of that file. */
async function twoServices(dir: string) {
  await writeFile(join(dir, 'a-gateway.yaml'), GATEWAY);
  await writeFile(join(dir, 'b-one.yaml'), service('one'));
  await writeFile(join(dir, 'c-two.yaml'), service('two'));
  await writeFile(join(dir, 'd-rules.yaml'), `${rule('one')}---\n${rule('two')}`);
  const folder = new ConfigFolder(dir);
  const read = async (name: string) => {
    folder.markChanged(name);
    return (await folder.read()).result;
  };
  const fromScratch = async () => served(buildSnapshot(await loadConfigDir(dir), ROLE, deps()).snapshot);
  return { folder, d: deps(), read, fromScratch };
}

describe('incremental snapshot build', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-incremental-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('keeps what an edit does not touch and rebuilds what it reaches, as a build from scratch would be', async () => {
    const { folder, d, read, fromScratch } = await twoServices(dir);

    const first = buildSnapshot((await folder.read()).result, ROLE, d).snapshot;
    assert.deepEqual(served(first), await fromScratch());

    // A route edited: that VirtualService's routes are compiled again, the other one's are kept.
    await writeFile(join(dir, 'b-one.yaml'), service('one', '/v2'));
    const second = buildSnapshot(await read('b-one.yaml'), ROLE, d, first).snapshot;
    assert.deepEqual(served(second), await fromScratch());
    assert.deepEqual(routeOf(second, 'one.example.com').conditions.map((c) => c.what), ['uri prefix "/v2"']);
    assert.notEqual(routeOf(second, 'one.example.com'), routeOf(first, 'one.example.com'));
    assert.equal(routeOf(second, 'two.example.com'), routeOf(first, 'two.example.com'), 'an untouched route is the same object');
    assert.equal(second.clusters.get('outbound|8080|v1|two.default.svc.cluster.local'), first.clusters.get('outbound|8080|v1|two.default.svc.cluster.local'));

    // A DestinationRule edited in a file of its own: its clusters and the routes that use them follow.
    await writeFile(join(dir, 'd-rules.yaml'), `${rule('one')}---\n${rule('two', 3)}`);
    const third = buildSnapshot(await read('d-rules.yaml'), ROLE, d, second).snapshot;
    assert.deepEqual(served(third), await fromScratch());
    const two = third.clusters.get('outbound|8080|v1|two.default.svc.cluster.local')!;
    assert.equal(two.policy.connectionPool?.tcp?.maxConnections, 3);
    const action = routeOf(third, 'two.example.com').action;
    assert.equal(action.kind === 'forward' ? action.destinations[0]!.cluster : undefined, two, 'the route uses the rebuilt cluster');
    assert.equal(third.clusters.get('outbound|8080|v1|one.default.svc.cluster.local'), second.clusters.get('outbound|8080|v1|one.default.svc.cluster.local'));

    // Endpoints edited: the registry entry, its clusters and routes are new.
    await writeFile(join(dir, 'c-two.yaml'), service('two', '/api', '10.0.0.9'));
    const fourth = buildSnapshot(await read('c-two.yaml'), ROLE, d, third).snapshot;
    assert.deepEqual(served(fourth), await fromScratch());
    assert.deepEqual(fourth.clusters.get('outbound|8080|v1|two.default.svc.cluster.local')!.endpoints.map((e) => e.address), ['10.0.0.9']);

    // A resource made invalid: the last good version keeps serving, with the same warning as ever.
    await writeFile(join(dir, 'b-one.yaml'), service('one', '/v3').replace('prefix: /v3', 'prefix: 7'));
    const fifth = buildSnapshot(await read('b-one.yaml'), ROLE, d, fourth);
    assert.deepEqual(routeOf(fifth.snapshot, 'one.example.com').conditions.map((c) => c.what), ['uri prefix "/v2"']);
    assert.ok(fifth.problems.some((p) => p.resource === 'VirtualService default/one' && /last good version keeps serving/.test(p.message)));
  });

  it('keeps the registry, the rules and the findings of what an edit does not touch; findings follow every edit as from scratch', async () => {
    const sub = await mkdtemp(join(dir, 'findings-'));
    const { folder, d, read, fromScratch } = await twoServices(sub);
    const codes = (s: Snapshot) => s.problems.filter((p) => p.code).map((p) => `${p.code} ${p.resource} ${p.field}`);

    const first = buildSnapshot((await folder.read()).result, ROLE, d).snapshot;
    assert.deepEqual(codes(first), []);

    // A route to a subset no rule defines, on a host the Gateway does not serve: found in the edited one only.
    await writeFile(join(sub, 'b-one.yaml'), service('one').replace('subset: v1', 'subset: v9').replace('one.example.com', 'one.example.org'));
    const second = buildSnapshot(await read('b-one.yaml'), ROLE, d, first).snapshot;
    assert.deepEqual(served(second), await fromScratch());
    assert.deepEqual(codes(second).sort(), ['IST0101 VirtualService default/one spec.http[0].route[0].destination.subset', 'IST0132 VirtualService default/one spec.hosts[0]']);
    assert.equal(second.registry, first.registry, 'no Service changed: the same registry');

    // A rule loses its subset: the untouched VirtualService that routes to it is found too.
    await writeFile(join(sub, 'd-rules.yaml'), `${rule('one')}---\n${rule('two').replace('subsets: [{name: v1, labels: {}}]', 'subsets: []')}`);
    const third = buildSnapshot(await read('d-rules.yaml'), ROLE, d, second).snapshot;
    assert.deepEqual(served(third), await fromScratch());
    assert.ok(codes(third).includes('IST0101 VirtualService default/two spec.http[0].route[0].destination.subset'));
    assert.equal(third.registry, second.registry);

    // A Service gains a second port: routes without a port are found, and the registry is new.
    await writeFile(join(sub, 'c-two.yaml'), service('two').replace('ports: [{name: http, port: 8080}]}', 'ports: [{name: http, port: 8080}, {name: http-alt, port: 9090}]}'));
    const fourth = buildSnapshot(await read('c-two.yaml'), ROLE, d, third).snapshot;
    assert.deepEqual(served(fourth), await fromScratch());
    assert.ok(codes(fourth).some((c) => c.startsWith('IST0112 VirtualService default/two')));
    assert.notEqual(fourth.registry, third.registry);

    // Put back as it was: the findings go.
    await writeFile(join(sub, 'b-one.yaml'), service('one'));
    await writeFile(join(sub, 'c-two.yaml'), service('two'));
    await writeFile(join(sub, 'd-rules.yaml'), `${rule('one')}---\n${rule('two')}`);
    folder.markChanged();
    const fifth = buildSnapshot((await folder.read()).result, ROLE, d, fourth).snapshot;
    assert.deepEqual(served(fifth), await fromScratch());
    assert.deepEqual(codes(fifth), []);
  });
});
