// Unit tables for routes of piped connections (docs/reference/routing.md): VirtualService `tls` rules on a
// PASSTHROUGH Gateway server (exact and wildcard sniHosts, weights, destination ports, port and
// gateway filters, host binding, duplicate SNI values, `*`, AUTO_PASSTHROUGH) and the single `tcp`
// rule of a TCP server (first VirtualService wins). YAML in, table lookup out.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { cluster, compileYaml, toYaml } from './helpers/route-table.js';
import { formatProblem } from '../src/core/config/problem.js';
import { printRoutes } from '../src/core/routing/print.js';
import type { Snapshot } from '../src/core/snapshot/snapshot.js';
import type { L4Route, ServerConfig, TlsRouteTable } from '../src/core/routing/types.js';

// ------------------------------------------------------------------ builders

interface ServerSpec {
  readonly port: number;
  readonly hosts: readonly string[];
  readonly protocol?: string;
  readonly mode?: string;
  readonly name?: string;
}

function gateway(servers: readonly ServerSpec[], name = 'gw'): object {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'Gateway',
    metadata: { name, namespace: 'istio-system' },
    spec: {
      selector: { istio: 'ingressgateway' },
      servers: servers.map((s) => ({
        port: { number: s.port, name: s.name ?? `p-${s.port}`, protocol: s.protocol ?? 'TLS' },
        hosts: s.hosts,
        ...((s.protocol ?? 'TLS') === 'TCP' ? {} : { tls: { mode: s.mode ?? 'PASSTHROUGH' } }),
      })),
    },
  };
}

const PASSTHROUGH = gateway([{ port: 443, hosts: ['*.example.com'] }]);

function vs(name: string, spec: object, meta: { namespace?: string; created?: string } = {}): object {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name, namespace: meta.namespace ?? 'default', ...(meta.created ? { creationTimestamp: meta.created } : {}) },
    spec: { gateways: ['istio-system/gw'], ...spec },
  };
}

/** A `tls` rule sending `sniHosts` to `dests` (`host` or `host:port`, optionally `=weight`). */
function tlsRule(sniHosts: readonly string[], dests: readonly string[], match: object = {}): object {
  return { match: [{ sniHosts, ...match }], route: dests.map(destination) };
}

function destination(d: string): object {
  const [target, weight] = d.split('=');
  const [host, port] = target!.split(':');
  return { destination: { host, ...(port ? { port: { number: Number(port) } } : {}) }, ...(weight !== undefined ? { weight: Number(weight) } : {}) };
}

/** Services a, b, c (port 443) and multi (ports 8443 and 9443), one endpoint each. */
const SERVICES =
  serviceYaml('a', [{ pod: 'a-1', port: 8443 }], { port: 443, portName: 'tls' }) +
  '---\n' +
  serviceYaml('b', [{ pod: 'b-1', port: 8443 }], { port: 443, portName: 'tls' }) +
  '---\n' +
  serviceYaml('c', [{ pod: 'c-1', port: 8443 }], { port: 443, portName: 'tls' }) +
  '---\n' +
  `apiVersion: v1
kind: Service
metadata: {name: multi, namespace: default}
spec:
  selector: {app: multi}
  ports: [{name: tls-a, port: 8443}, {name: tls-b, port: 443}]
`;

function compile(...docs: object[]): { snapshot: Snapshot; warnings: string[] } {
  const c = compileYaml(SERVICES + '---\n' + toYaml(...docs));
  assert.deepEqual(c.errors.map(formatProblem), [], 'configuration has no errors');
  return { snapshot: c.snapshot, warnings: c.problems.filter((p) => p.severity === 'warning').map(formatProblem) };
}

function server(snapshot: Snapshot, port = 443, index = 0): ServerConfig {
  const s = snapshot.listeners.get(port)?.servers[index];
  assert.ok(s, `a server on port ${port}`);
  return s;
}

function table(snapshot: Snapshot, port = 443): TlsRouteTable {
  const t = server(snapshot, port).tlsRoutes;
  assert.ok(t, 'the passthrough server has a tls route table');
  return t;
}

/** Cluster names of the route for `sni`, `null` when none. */
function clustersFor(t: TlsRouteTable, sni: string | undefined): string[] | null {
  const r = t.lookup(sni);
  return r ? r.destinations.map((d) => d.clusterName) : null;
}

const A = cluster('a', { port: 443 });
const B = cluster('b', { port: 443 });
const C = cluster('c', { port: 443 });

// ------------------------------------------------------------------ tls routes

describe('tls routes on a PASSTHROUGH server', () => {
  it('an exact sniHost routes its SNI (any case); other or missing SNI finds nothing', () => {
    const { snapshot } = compile(PASSTHROUGH, vs('a', { hosts: ['a.example.com'], tls: [tlsRule(['a.example.com'], ['a'])] }));
    const t = table(snapshot);
    assert.deepEqual(clustersFor(t, 'a.example.com'), [A]);
    assert.deepEqual(clustersFor(t, 'A.Example.COM'), [A]);
    assert.equal(t.lookup('b.example.com'), undefined);
    assert.equal(t.lookup(undefined), undefined);
    assert.equal(t.lookup(''), undefined);
    const r = t.lookup('a.example.com')!;
    assert.equal(r.sniHost, 'a.example.com');
    assert.equal(r.source.virtualService, 'default/a');
    assert.equal(r.source.kind, 'tls');
    assert.equal(r.totalWeight, 100);
    assert.ok(r.destinations[0]!.cluster, 'the cluster exists');
    assert.equal(r.destinations[0]!.cluster!.endpoints.length, 1);
  });

  it('exact beats wildcard; wildcards match any depth, longest suffix first; *.example.com does not take example.com', () => {
    const { snapshot } = compile(
      gateway([{ port: 443, hosts: ['*'] }]),
      vs('exact', { hosts: ['special.example.com'], tls: [tlsRule(['special.example.com'], ['a'])] }),
      vs('wild', { hosts: ['*.example.com'], tls: [tlsRule(['*.example.com'], ['b'])] }),
      vs('com', { hosts: ['*.com'], tls: [tlsRule(['*.com'], ['c'])] }),
    );
    const t = table(snapshot);
    assert.deepEqual(clustersFor(t, 'special.example.com'), [A]);
    assert.deepEqual(clustersFor(t, 'x.example.com'), [B]);
    assert.deepEqual(clustersFor(t, 'x.y.example.com'), [B]);
    // `*.com` matches foo.example.com and example.com alike.
    assert.deepEqual(clustersFor(t, 'example.com'), [C]);
    assert.deepEqual(clustersFor(t, 'foo.other.com'), [C]);
    assert.equal(t.lookup('example.org'), undefined);
    assert.equal(t.lookup('com'), undefined);
  });

  it('a `*` sniHost takes every connection the others do not, even one without SNI', () => {
    const { snapshot } = compile(
      gateway([{ port: 443, hosts: ['*'] }]),
      vs('a', { hosts: ['a.example.com'], tls: [tlsRule(['a.example.com'], ['a'])] }),
      vs('all', { hosts: ['*'], tls: [tlsRule(['*'], ['b'])] }),
    );
    const t = table(snapshot);
    assert.deepEqual(clustersFor(t, 'a.example.com'), [A]);
    assert.deepEqual(clustersFor(t, 'anything.org'), [B]);
    assert.deepEqual(clustersFor(t, undefined), [B]);
  });

  it('weights: relative weights kept, weight 0 dropped, a lone destination takes 100', () => {
    const { snapshot } = compile(
      PASSTHROUGH,
      vs('split', {
        hosts: ['a.example.com', 'b.example.com'],
        tls: [tlsRule(['a.example.com'], ['a=80', 'b=20', 'c=0']), tlsRule(['b.example.com'], ['c=5'])],
      }),
    );
    const t = table(snapshot);
    const split = t.lookup('a.example.com')!;
    assert.deepEqual(
      split.destinations.map((d) => [d.clusterName, d.weight]),
      [
        [A, 80],
        [B, 20],
      ],
    );
    assert.equal(split.totalWeight, 100);
    assert.deepEqual(
      t.lookup('b.example.com')!.destinations.map((d) => d.weight),
      [100],
    );
  });

  it('destination port: explicit, else the service’s only port, else the server port; unknown services have no cluster', () => {
    const { snapshot } = compile(
      PASSTHROUGH,
      vs('ports', {
        hosts: ['*.example.com'],
        tls: [
          tlsRule(['explicit.example.com'], ['multi:8443']),
          tlsRule(['single.example.com'], ['a']),
          tlsRule(['several.example.com'], ['multi']),
          tlsRule(['unknown.example.com'], ['nowhere.example.org']),
        ],
      }),
    );
    const t = table(snapshot);
    assert.deepEqual(clustersFor(t, 'explicit.example.com'), [cluster('multi', { port: 8443 })]);
    assert.deepEqual(clustersFor(t, 'single.example.com'), [A]);
    assert.deepEqual(clustersFor(t, 'several.example.com'), [cluster('multi', { port: 443 })]);
    const unknown = t.lookup('unknown.example.com')!;
    assert.equal(unknown.destinations[0]!.clusterName, 'outbound|443||nowhere.example.org');
    assert.equal(unknown.destinations[0]!.cluster, undefined);
  });

  it('match.port must equal the server port when set', () => {
    const { snapshot } = compile(
      gateway([
        { port: 443, hosts: ['*.example.com'] },
        { port: 8443, hosts: ['*.example.com'], name: 'other' },
      ]),
      vs('ports', {
        hosts: ['*.example.com'],
        tls: [tlsRule(['on443.example.com'], ['a'], { port: 443 }), tlsRule(['on8443.example.com'], ['b'], { port: 8443 }), tlsRule(['any.example.com'], ['c'])],
      }),
    );
    const t443 = table(snapshot, 443);
    const t8443 = table(snapshot, 8443);
    assert.deepEqual(clustersFor(t443, 'on443.example.com'), [A]);
    assert.equal(t443.lookup('on8443.example.com'), undefined);
    assert.deepEqual(clustersFor(t8443, 'on8443.example.com'), [cluster('b', { port: 443 })]);
    assert.equal(t8443.lookup('on443.example.com'), undefined);
    assert.deepEqual(clustersFor(t443, 'any.example.com'), [C]);
    assert.deepEqual(clustersFor(t8443, 'any.example.com'), [C]);
  });

  it('gateway binding: the VirtualService must name the gateway; match.gateways only narrow its list', () => {
    const { snapshot } = compile(
      PASSTHROUGH,
      vs('other-gw', { hosts: ['a.example.com'], gateways: ['istio-system/other'], tls: [tlsRule(['a.example.com'], ['a'])] }),
      vs('mesh-only', { hosts: ['b.example.com'], gateways: undefined, tls: [tlsRule(['b.example.com'], ['b'])] }),
      vs('by-match', { hosts: ['c.example.com'], gateways: ['mesh', 'istio-system/gw'], tls: [tlsRule(['c.example.com'], ['c'], { gateways: ['istio-system/gw'] })] }),
      vs('short-name', { hosts: ['d.example.com'], gateways: ['gw'], tls: [tlsRule(['d.example.com'], ['a.default.svc.cluster.local'])] }, { namespace: 'istio-system' }),
      // Istio hands a VirtualService only to the gateways of its top-level list; a match cannot add one.
      vs('match-adds', { hosts: ['e.example.com'], gateways: ['mesh'], tls: [tlsRule(['e.example.com'], ['c'], { gateways: ['istio-system/gw'] })] }),
    );
    const t = table(snapshot);
    assert.equal(t.lookup('a.example.com'), undefined);
    assert.equal(t.lookup('b.example.com'), undefined);
    assert.deepEqual(clustersFor(t, 'c.example.com'), [C]);
    assert.deepEqual(clustersFor(t, 'd.example.com'), [A]);
    assert.equal(t.lookup('e.example.com'), undefined);
  });

  it('host binding and exportTo: hosts must overlap the server hosts visible to the VirtualService', () => {
    const { snapshot } = compile(
      gateway([{ port: 443, hosts: ['*.example.com', 'team/*.team.org'] }]),
      vs('elsewhere', { hosts: ['a.other.org'], tls: [tlsRule(['a.other.org'], ['a'])] }),
      vs('private', { hosts: ['p.example.com'], exportTo: ['.'], tls: [tlsRule(['p.example.com'], ['a'])] }),
      vs('team-wrong-ns', { hosts: ['x.team.org'], tls: [tlsRule(['x.team.org'], ['a.default.svc.cluster.local'])] }),
      vs('team', { hosts: ['y.team.org'], tls: [tlsRule(['y.team.org'], ['a.default.svc.cluster.local'])] }, { namespace: 'team' }),
    );
    const t = table(snapshot);
    assert.equal(t.lookup('a.other.org'), undefined);
    assert.equal(t.lookup('p.example.com'), undefined, 'exported only to its own namespace, not the gateway’s');
    assert.equal(t.lookup('x.team.org'), undefined, 'team/* hosts take only VirtualServices from team');
    assert.deepEqual(clustersFor(t, 'y.team.org'), [A]);
  });

  it('a duplicate SNI: the earlier VirtualService keeps it, the later match is skipped whole with a warning', () => {
    const { snapshot, warnings } = compile(
      PASSTHROUGH,
      vs('second', { hosts: ['*.example.com'], tls: [tlsRule(['a.example.com', 'extra.example.com'], ['b']), tlsRule(['own.example.com'], ['c'])] }, { created: '2024-02-01T00:00:00Z' }),
      vs('first', { hosts: ['a.example.com'], tls: [tlsRule(['a.example.com'], ['a'])] }, { created: '2024-01-01T00:00:00Z' }),
    );
    const t = table(snapshot);
    assert.deepEqual(clustersFor(t, 'a.example.com'), [A]);
    // Istio drops the whole filter chain of the later match, its other SNI values included.
    assert.equal(t.lookup('extra.example.com'), undefined);
    assert.deepEqual(clustersFor(t, 'own.example.com'), [C]);
    const dup = warnings.filter((w) => w.includes('already routed'));
    assert.equal(dup.length, 1, warnings.join('\n'));
    assert.match(dup[0]!, /VirtualService default\/second spec\.tls\[0\]\.match\[0\]\.sniHosts/);
    assert.match(dup[0]!, /SNI a\.example\.com already routed on port 443 .* by default\/first tls\[0\]\.match\[0\]/);
  });

  it('rules without destinations are ignored; a match list is tried entry by entry', () => {
    const { snapshot } = compile(
      PASSTHROUGH,
      vs('multi-match', {
        hosts: ['*.example.com'],
        tls: [{ match: [{ sniHosts: ['one.example.com'], port: 9999 }, { sniHosts: ['two.example.com'] }], route: [{ destination: { host: 'a' } }] }],
      }),
    );
    const t = table(snapshot);
    assert.equal(t.lookup('one.example.com'), undefined);
    assert.deepEqual(clustersFor(t, 'two.example.com'), [A]);
    assert.equal(t.lookup('two.example.com')!.source.matchIndex, 1);
  });

  it('AUTO_PASSTHROUGH: a name per service port (and subset) in the SNI, no VirtualService needed', () => {
    const rule = { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'a', namespace: 'default' }, spec: { host: 'a', subsets: [{ name: 'v1', labels: { version: 'v1' } }] } };
    const { snapshot } = compile(gateway([{ port: 15443, hosts: ['*.local'], mode: 'AUTO_PASSTHROUGH' }]), rule);
    const t = table(snapshot, 15443);
    assert.equal(t.lookup('outbound_.443_._.a.default.svc.cluster.local')!.destinations[0]!.clusterName, 'outbound|443||a.default.svc.cluster.local');
    assert.equal(t.lookup('outbound_.443_.v1_.a.default.svc.cluster.local')!.destinations[0]!.clusterName, 'outbound|443|v1|a.default.svc.cluster.local');
    assert.equal(t.lookup('outbound_.8443_._.multi.default.svc.cluster.local')!.destinations[0]!.clusterName, 'outbound|8443||multi.default.svc.cluster.local');
    for (const miss of ['a.default.svc.cluster.local', 'outbound_.80_._.a.default.svc.cluster.local', 'outbound_.443_.v2_.a.default.svc.cluster.local', 'outbound_.443_._.nope.default.svc.cluster.local']) {
      assert.equal(t.lookup(miss), undefined, miss);
    }
  });

  it('AUTO_PASSTHROUGH: only hosts within the server hosts; a server that covers none warns', () => {
    const { snapshot, warnings } = compile(gateway([{ port: 15443, hosts: ['a.default.svc.cluster.local'], mode: 'AUTO_PASSTHROUGH' }, { port: 15444, hosts: ['*.example.com'], mode: 'AUTO_PASSTHROUGH' }]));
    assert.deepEqual(table(snapshot, 15443).routes.map((r) => r.sniHost), ['outbound_.443_._.a.default.svc.cluster.local']);
    assert.equal(table(snapshot, 15444).routes.length, 0);
    assert.ok(warnings.some((w) => w.includes('AUTO_PASSTHROUGH: no service inside the mesh')), warnings.join('\n'));
  });

  it('terminating and plaintext servers get no tls table', () => {
    const c = compileYaml(
      SERVICES +
        '---\n' +
        toYaml(
          gateway([{ port: 80, hosts: ['*'], protocol: 'HTTP', name: 'http' }]),
          vs('a', { hosts: ['a.example.com'], http: [{ route: [{ destination: { host: 'a' } }] }], tls: [tlsRule(['a.example.com'], ['a'])] }),
        ),
    );
    const s = c.snapshot.listeners.get(80)!.servers[0]!;
    assert.equal(s.tlsRoutes, undefined);
    assert.equal(s.tcpRoute, undefined);
  });

  it('printRoutes lists SNI routes with clusters and weights', () => {
    const { snapshot } = compile(PASSTHROUGH, vs('split', { hosts: ['a.example.com'], tls: [tlsRule(['a.example.com'], ['a=75', 'b=25'])] }));
    const text = printRoutes(snapshot);
    assert.match(text, /tls routes of istio-system\/gw\[0\]/);
    assert.ok(text.includes(`sni a.example.com → ${A} 75% (1 endpoints), ${B} 25% (1 endpoints) [default/split tls[0].match[0]]`), text);
  });
});

// ------------------------------------------------------------------ tcp routes

describe('tcp route on a TCP server', () => {
  const TCP = gateway([{ port: 31400, hosts: ['*'], protocol: 'TCP', name: 'tcp' }]);
  const tcpRoute = (snapshot: Snapshot): L4Route | undefined => server(snapshot, 31400).tcpRoute;

  it('the first VirtualService (by creation) with a matching tcp rule wins', () => {
    const { snapshot } = compile(
      TCP,
      vs('later', { hosts: ['*'], tcp: [{ route: [{ destination: { host: 'b', port: { number: 443 } } }] }] }, { created: '2024-03-01T00:00:00Z' }),
      vs('earlier', { hosts: ['*'], tcp: [{ route: [{ destination: { host: 'a' } }] }] }, { created: '2024-01-01T00:00:00Z' }),
    );
    const r = tcpRoute(snapshot);
    assert.ok(r);
    assert.equal(r.source.virtualService, 'default/earlier');
    assert.equal(r.source.kind, 'tcp');
    assert.deepEqual(
      r.destinations.map((d) => d.clusterName),
      [A],
    );
    assert.match(printRoutes(snapshot), /tcp route of istio-system\/gw\[0\]\n {4}any connection → outbound\|443\|\|a\.default\.svc\.cluster\.local 100% \(1 endpoints\) \[default\/earlier tcp\[0\]\]/);
  });

  it('rules whose port or gateway do not match are passed over, within and across VirtualServices', () => {
    const { snapshot } = compile(
      TCP,
      vs(
        'first',
        {
          hosts: ['*'],
          tcp: [
            { match: [{ port: 9000 }], route: [{ destination: { host: 'a' } }] },
            { match: [{ gateways: ['istio-system/other'] }], route: [{ destination: { host: 'a' } }] },
          ],
        },
        { created: '2024-01-01T00:00:00Z' },
      ),
      vs(
        'second',
        { hosts: ['*'], tcp: [{ match: [{ port: 9000 }, { port: 31400 }], route: [{ destination: { host: 'b' }, weight: 60 }, { destination: { host: 'c' }, weight: 40 }] }] },
        { created: '2024-02-01T00:00:00Z' },
      ),
    );
    const r = tcpRoute(snapshot);
    assert.ok(r);
    assert.equal(r.source.virtualService, 'default/second');
    assert.equal(r.source.matchIndex, 1);
    assert.deepEqual(
      r.destinations.map((d) => [d.clusterName, d.weight]),
      [
        [B, 60],
        [C, 40],
      ],
    );
    // The destination port defaults to the service's only port, not the server's.
    assert.equal(r.destinations[0]!.port, 443);
  });

  it('no matching VirtualService: no tcp route', () => {
    const { snapshot } = compile(TCP, vs('http-only', { hosts: ['*'], http: [{ route: [{ destination: { host: 'a' } }] }] }));
    assert.equal(tcpRoute(snapshot), undefined);
    assert.equal(server(snapshot, 31400).tlsRoutes, undefined);
  });
});
