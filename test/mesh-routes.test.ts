// Unit tables for the sidecar (outbound) route compiler: Istio YAML in, lookup out, no sockets.
// Default routes per service port, the Host forms each service answers to, exportTo, mesh binding,
// first-VirtualService-wins, compile-time source matching, match.port, weights, hosts outside the
// registry and wildcards. docs/reference/routing.md 3 and 9.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../src/core/config/load.js';
import type { Problem } from '../src/core/config/problem.js';
import { buildSnapshot } from '../src/core/snapshot/build.js';
import type { SidecarRole, Snapshot } from '../src/core/snapshot/snapshot.js';
import { outboundRouteConfig, type MeshVirtualHost } from '../src/core/routing/compile-mesh.js';
import { findRoute } from '../src/core/routing/lookup.js';
import type { CompiledRoute, ForwardAction } from '../src/core/routing/types.js';
import { compileValid, FIXED_DEPS, requestFacts, toYaml } from './helpers/route-table.js';

// ------------------------------------------------------------------ builders

const CLIENT: SidecarRole = Object.freeze({
  kind: 'sidecar',
  namespace: 'default',
  labels: Object.freeze({ app: 'productpage', version: 'v1' }),
  serviceAccount: 'bookinfo-productpage',
  outboundTrafficPolicy: 'ALLOW_ANY',
});

interface Port {
  readonly port: number;
  readonly name?: string;
}

/** A Kubernetes Service with the given ports (default one `http` port 9080). */
function service(name: string, o: { ns?: string; ports?: readonly Port[]; exportTo?: string } = {}): object {
  const ports = o.ports ?? [{ port: 9080 }];
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: o.ns ?? 'default', ...(o.exportTo ? { annotations: { 'networking.istio.io/exportTo': o.exportTo } } : {}) },
    spec: { selector: { app: name }, ports: ports.map((p) => ({ name: p.name ?? 'http', port: p.port })) },
  };
}

/** A ServiceEntry for external hosts on one HTTP port. */
function serviceEntry(name: string, hosts: readonly string[], port = 80, ns = 'default'): object {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name, namespace: ns },
    spec: { hosts, ports: [{ number: port, name: 'http', protocol: 'HTTP' }], resolution: 'DNS', location: 'MESH_EXTERNAL' },
  };
}

function virtualService(name: string, spec: object, meta: { ns?: string; created?: string } = {}): object {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name, namespace: meta.ns ?? 'default', ...(meta.created ? { creationTimestamp: meta.created } : {}) },
    spec,
  };
}

function to(host: string, o: { subset?: string; port?: number; weight?: number } = {}): object {
  return {
    destination: { host, ...(o.subset ? { subset: o.subset } : {}), ...(o.port ? { port: { number: o.port } } : {}) },
    ...(o.weight !== undefined ? { weight: o.weight } : {}),
  };
}

function fqdn(name: string, ns = 'default'): string {
  return `${name}.${ns}.svc.cluster.local`;
}

function cluster(host: string, port = 9080, subset = ''): string {
  return `outbound|${port}|${subset}|${host.includes('.') ? host : fqdn(host)}`;
}

// ------------------------------------------------------------------ compile and look up

interface Built {
  readonly snapshot: Snapshot;
  readonly problems: readonly Problem[];
}

function sidecar(yaml: string, role: Partial<Omit<SidecarRole, 'kind'>> = {}): Built {
  const { snapshot, problems } = buildSnapshot(parseConfigText(yaml, 'mesh.yaml'), { ...CLIENT, ...role }, FIXED_DEPS);
  const errors = problems.filter((p) => p.severity === 'error');
  assert.deepEqual(errors, [], 'the configuration has no errors');
  return { snapshot, problems };
}

interface Req {
  readonly port: number;
  readonly host: string;
  readonly path?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * `miss` when the port has no route config or the Host no virtual host (the sidecar then applies its
 * outboundTrafficPolicy), 404 when a virtual host has no matching route (404 NR), else the cluster
 * name(s), or `redirect N` / `direct N`.
 */
function outcome(snap: Snapshot, r: Req): 'miss' | 404 | string | readonly string[] {
  const hit = lookupRoute(snap, r);
  if (hit === 'miss' || hit === 404) return hit;
  const a = hit.action;
  if (a.kind === 'redirect') return `redirect ${a.code}`;
  if (a.kind === 'direct') return `direct ${a.status}`;
  const names = a.destinations.map((d) => d.clusterName);
  return names.length === 1 ? names[0]! : names;
}

function lookupRoute(snap: Snapshot, r: Req): 'miss' | 404 | CompiledRoute {
  const config = outboundRouteConfig(snap, r.port);
  if (!config) return 'miss';
  const { virtualHost, route } = findRoute(config, requestFacts({ port: r.port, host: r.host, path: r.path ?? '/', ...(r.headers ? { headers: r.headers } : {}) }));
  if (!virtualHost) return 'miss';
  return route ?? 404;
}

function vhostFor(snap: Snapshot, port: number, host: string): MeshVirtualHost | undefined {
  return outboundRouteConfig(snap, port)?.findVirtualHost(host) as MeshVirtualHost | undefined;
}

function show(r: Req): string {
  return `:${r.port} ${r.host}${r.path ?? '/'}${r.headers ? ` ${JSON.stringify(r.headers)}` : ''}`;
}

interface Row {
  readonly req: Req;
  readonly want: 'miss' | 404 | string | readonly string[];
}

function check(snap: Snapshot, rows: readonly Row[]): void {
  for (const row of rows) assert.deepEqual(outcome(snap, row.req), row.want, `request ${show(row.req)}`);
}

function warnings(b: Built): string[] {
  return b.problems.filter((p) => p.severity === 'warning').map((p) => `${p.resource} ${p.field}: ${p.message}`);
}

// ------------------------------------------------------------------ default routes

describe('sidecar: default routes', () => {
  const yaml = toYaml(
    service('reviews'),
    service('ratings', { ports: [{ port: 9080 }, { port: 9090, name: 'grpc-admin' }] }),
    service('web', { ports: [{ port: 8080, name: 'web' }] }), // not a protocol name: UNKNOWN, sniffed, treated as HTTP
    service('mysql', { ports: [{ port: 3306, name: 'tcp' }] }),
    service('db', { ports: [{ port: 9080, name: 'tcp-db' }] }), // TCP on an HTTP port number
  );
  const { snapshot } = sidecar(yaml);

  it('one route config per HTTP-family service port, named by the number, and no listeners', () => {
    assert.deepEqual([...snapshot.routeConfigs.keys()], ['8080', '9080', '9090']);
    assert.equal(snapshot.listeners.size, 0);
    assert.equal(snapshot.role.kind, 'sidecar');
    assert.equal(outboundRouteConfig(snapshot, 3306), undefined, 'TCP ports get no HTTP route config');
  });

  it('every service on a port routes everything to outbound|<port>||<fqdn>', () => {
    check(snapshot, [
      { req: { port: 9080, host: 'reviews', path: '/reviews/1' }, want: cluster('reviews') },
      { req: { port: 9080, host: 'ratings:9080' }, want: cluster('ratings') },
      { req: { port: 9090, host: 'ratings.default.svc.cluster.local:9090' }, want: cluster('ratings', 9090) },
      { req: { port: 8080, host: 'web' }, want: cluster('web', 8080) },
      { req: { port: 9080, host: 'db' }, want: 'miss' },
      { req: { port: 9080, host: 'example.com' }, want: 'miss' },
    ]);
  });

  it('the default route is Istio\'s `default`: default retries, no timeout, one destination', () => {
    const route = lookupRoute(snapshot, { port: 9080, host: 'reviews' });
    assert.ok(route !== 'miss' && route !== 404);
    assert.equal(route.name, 'default');
    assert.deepEqual(route.conditions, []);
    const a = route.action as ForwardAction;
    assert.equal(a.kind, 'forward');
    assert.equal(a.timeoutMs, 0);
    assert.equal(a.retry.attempts, 2);
    assert.deepEqual([...a.retry.on].sort(), ['cancelled', 'connect-failure', 'refused-stream', 'retriable-status-codes', 'unavailable']);
    assert.deepEqual(a.destinations.map((d) => [d.clusterName, d.weight]), [[cluster('reviews'), 100]]);
    assert.ok(a.destinations[0]!.cluster, 'the cluster exists');
  });

  it('lookups ignore the Host port: reviews:1234 on route config 9080 is still reviews', () => {
    assert.equal(outcome(snapshot, { port: 9080, host: 'reviews:1234' }), cluster('reviews'));
  });

  it('a gateway snapshot has no outbound route config', () => {
    const gw = compileValid(yaml);
    assert.equal(gw.role.kind, 'gateway');
    assert.equal(outboundRouteConfig(gw, 9080), undefined);
  });
});

describe('sidecar: the Host forms of a service', () => {
  const yaml = toYaml(service('reviews'), service('details', { ns: 'shop' }), serviceEntry('httpbin', ['httpbin.org']));
  const { snapshot } = sidecar(yaml);

  it('same namespace: FQDN, name.ns.svc.cluster, name.ns.svc, name.ns and name, each also with :port', () => {
    const vh = vhostFor(snapshot, 9080, 'reviews')!;
    assert.equal(vh.domain, fqdn('reviews'));
    const forms = [fqdn('reviews'), 'reviews.default.svc.cluster', 'reviews.default.svc', 'reviews.default', 'reviews'];
    assert.deepEqual(vh.domains, forms.flatMap((f) => [f, `${f}:9080`]));
  });

  it('another namespace: no bare name, which would be the caller namespace\'s own service', () => {
    const vh = vhostFor(snapshot, 9080, 'details.shop')!;
    const forms = [fqdn('details', 'shop'), 'details.shop.svc.cluster', 'details.shop.svc', 'details.shop'];
    assert.deepEqual(vh.domains, forms.flatMap((f) => [f, `${f}:9080`]));
    check(snapshot, [
      { req: { port: 9080, host: 'details' }, want: 'miss' },
      { req: { port: 9080, host: 'details.shop' }, want: cluster(fqdn('details', 'shop')) },
      { req: { port: 9080, host: 'DETAILS.shop.svc:9080' }, want: cluster(fqdn('details', 'shop')) },
    ]);
  });

  it('the bare name follows the proxy: a sidecar in shop reaches details but not reviews by name', () => {
    const snap = sidecar(yaml, { namespace: 'shop' }).snapshot;
    check(snap, [
      { req: { port: 9080, host: 'details' }, want: cluster(fqdn('details', 'shop')) },
      { req: { port: 9080, host: 'reviews' }, want: 'miss' },
      { req: { port: 9080, host: 'reviews.default' }, want: cluster('reviews') },
    ]);
  });

  it('a short form never shadows a service whose real host is spelled that way', () => {
    const snap = sidecar(toYaml(service('reviews'), serviceEntry('odd', ['reviews.default'], 9080))).snapshot;
    check(snap, [
      { req: { port: 9080, host: 'reviews.default' }, want: 'outbound|9080||reviews.default' },
      { req: { port: 9080, host: 'reviews' }, want: cluster('reviews') },
    ]);
    assert.ok(!vhostFor(snap, 9080, 'reviews')!.domains.includes('reviews.default'));
  });

  it('a ServiceEntry host answers only to itself (and host:port)', () => {
    assert.deepEqual(vhostFor(snapshot, 80, 'httpbin.org')!.domains, ['httpbin.org', 'httpbin.org:80']);
    check(snapshot, [
      { req: { port: 80, host: 'httpbin.org' }, want: 'outbound|80||httpbin.org' },
      { req: { port: 80, host: 'httpbin' }, want: 'miss' },
    ]);
  });
});

// ------------------------------------------------------------------ visibility

describe('sidecar: exportTo', () => {
  it('services: exported to `.` are seen only from their namespace, to a list only from those', () => {
    const yaml = toYaml(
      service('private', { ns: 'shop', exportTo: '.' }),
      service('listed', { ns: 'shop', exportTo: 'default' }),
      service('public', { ns: 'shop' }),
    );
    check(sidecar(yaml).snapshot, [
      { req: { port: 9080, host: 'private.shop' }, want: 'miss' },
      { req: { port: 9080, host: 'listed.shop' }, want: cluster(fqdn('listed', 'shop')) },
      { req: { port: 9080, host: 'public.shop' }, want: cluster(fqdn('public', 'shop')) },
    ]);
    check(sidecar(yaml, { namespace: 'shop' }).snapshot, [
      { req: { port: 9080, host: 'private' }, want: cluster(fqdn('private', 'shop')) },
      { req: { port: 9080, host: 'listed' }, want: 'miss' },
    ]);
  });

  it('VirtualServices: a private one applies only in its namespace; one exported by name applies there', () => {
    const yaml = toYaml(
      service('reviews', { ns: 'shop' }),
      service('ratings', { ns: 'shop' }),
      virtualService('private', { hosts: ['reviews'], exportTo: ['.'], http: [{ route: [to('reviews', { subset: 'v2' })] }] }, { ns: 'shop' }),
      virtualService('listed', { hosts: ['ratings'], exportTo: ['default'], http: [{ route: [to('ratings', { subset: 'v2' })] }] }, { ns: 'shop' }),
    );
    check(sidecar(yaml).snapshot, [
      { req: { port: 9080, host: 'reviews.shop' }, want: cluster(fqdn('reviews', 'shop')) },
      { req: { port: 9080, host: 'ratings.shop' }, want: cluster(fqdn('ratings', 'shop'), 9080, 'v2') },
    ]);
    check(sidecar(yaml, { namespace: 'shop' }).snapshot, [
      { req: { port: 9080, host: 'reviews' }, want: cluster(fqdn('reviews', 'shop'), 9080, 'v2') },
      { req: { port: 9080, host: 'ratings' }, want: cluster(fqdn('ratings', 'shop')) },
    ]);
  });
});

describe('sidecar: which VirtualServices bind to the mesh', () => {
  const yaml = toYaml(
    service('reviews'),
    service('ratings'),
    service('details'),
    service('productpage'),
    virtualService('edge-only', { hosts: ['reviews'], gateways: ['istio-system/gw'], http: [{ route: [to('reviews', { subset: 'edge' })] }] }),
    virtualService('edge-and-mesh', { hosts: ['ratings'], gateways: ['istio-system/gw', 'mesh'], http: [{ route: [to('ratings', { subset: 'both' })] }] }),
    virtualService('omitted', { hosts: ['details'], http: [{ route: [to('details', { subset: 'mesh' })] }] }),
    virtualService('match-gateways', {
      hosts: ['productpage'],
      gateways: ['istio-system/gw', 'mesh'],
      http: [
        { match: [{ uri: { prefix: '/edge' }, gateways: ['istio-system/gw'] }], route: [to('productpage', { subset: 'edge' })] },
        { match: [{ uri: { prefix: '/mesh' }, gateways: ['mesh'] }], route: [to('productpage', { subset: 'mesh' })] },
        { route: [to('productpage', { subset: 'rest' })] },
      ],
    }),
  );

  it('gateways: [gw] does not apply to sidecars; [gw, mesh] and omitted do; match-level gateways are settled per match', () => {
    check(sidecar(yaml).snapshot, [
      { req: { port: 9080, host: 'reviews' }, want: cluster('reviews') },
      { req: { port: 9080, host: 'ratings' }, want: cluster('ratings', 9080, 'both') },
      { req: { port: 9080, host: 'details' }, want: cluster('details', 9080, 'mesh') },
      { req: { port: 9080, host: 'productpage', path: '/edge' }, want: cluster('productpage', 9080, 'rest') },
      { req: { port: 9080, host: 'productpage', path: '/mesh' }, want: cluster('productpage', 9080, 'mesh') },
    ]);
  });
});

// ------------------------------------------------------------------ one VirtualService per host

describe('sidecar: the first VirtualService per host wins', () => {
  const older = (created = '2020-01-01T00:00:00Z'): object =>
    virtualService('reviews-older', { hosts: ['reviews'], http: [{ match: [{ uri: { prefix: '/old' } }], route: [to('reviews', { subset: 'old' })] }] }, { created });
  const newer = (created = '2024-01-01T00:00:00Z'): object =>
    virtualService(
      'reviews-newer',
      { hosts: ['reviews.default.svc.cluster.local'], http: [{ match: [{ uri: { prefix: '/new' } }], route: [to('reviews', { subset: 'new' })] }] },
      { created },
    );

  it('the older one routes, the newer one is dropped (not merged, unlike a gateway), and a warning names both', () => {
    const b = sidecar(toYaml(service('reviews'), newer(), older()));
    check(b.snapshot, [
      { req: { port: 9080, host: 'reviews', path: '/old' }, want: cluster('reviews', 9080, 'old') },
      { req: { port: 9080, host: 'reviews', path: '/new' }, want: 404 },
    ]);
    const w = warnings(b);
    assert.equal(w.length, 1, w.join('\n'));
    assert.match(w[0]!, /^VirtualService default\/reviews-newer spec\.hosts\[0\]: .*reviews\.default\.svc\.cluster\.local.*VirtualService default\/reviews-older/);
  });

  it('without creation timestamps, file order decides', () => {
    const b = sidecar(toYaml(service('reviews'), newer(''), older('')));
    check(b.snapshot, [
      { req: { port: 9080, host: 'reviews', path: '/new' }, want: cluster('reviews', 9080, 'new') },
      { req: { port: 9080, host: 'reviews', path: '/old' }, want: 404 },
    ]);
    assert.match(warnings(b)[0]!, /^VirtualService default\/reviews-older .*VirtualService default\/reviews-newer/);
  });

  it('a VirtualService with no route for this proxy leaves the service its default route', () => {
    const yaml = toYaml(
      service('reviews'),
      virtualService('for-others', { hosts: ['reviews'], http: [{ match: [{ sourceLabels: { app: 'other' } }], route: [to('reviews', { subset: 'v2' })] }] }),
    );
    assert.equal(outcome(sidecar(yaml).snapshot, { port: 9080, host: 'reviews' }), cluster('reviews'));
  });

  it('no matching route under a VirtualService is 404 NR, not the default route', () => {
    const yaml = toYaml(service('reviews'), virtualService('api', { hosts: ['reviews'], http: [{ match: [{ uri: { prefix: '/api' } }], route: [to('reviews')] }] }));
    check(sidecar(yaml).snapshot, [
      { req: { port: 9080, host: 'reviews', path: '/api/x' }, want: cluster('reviews') },
      { req: { port: 9080, host: 'reviews', path: '/' }, want: 404 },
    ]);
  });
});

// ------------------------------------------------------------------ compile-time matches

describe('sidecar: sourceLabels and sourceNamespace are settled at compile time', () => {
  const yaml = toYaml(
    service('reviews'),
    virtualService('reviews', {
      hosts: ['reviews'],
      http: [
        { match: [{ sourceLabels: { app: 'productpage', version: 'v2' } }], route: [to('reviews', { subset: 'pp-v2' })] },
        { match: [{ sourceLabels: { app: 'productpage' }, headers: { 'end-user': { exact: 'jason' } } }], route: [to('reviews', { subset: 'jason' })] },
        { match: [{ sourceNamespace: 'shop' }], route: [to('reviews', { subset: 'from-shop' })] },
        { route: [to('reviews', { subset: 'v1' })] },
      ],
    }),
  );

  it('a productpage v1 sidecar in default gets only the routes whose source fields it satisfies', () => {
    const snap = sidecar(yaml).snapshot;
    check(snap, [
      { req: { port: 9080, host: 'reviews' }, want: cluster('reviews', 9080, 'v1') },
      { req: { port: 9080, host: 'reviews', headers: { 'end-user': 'jason' } }, want: cluster('reviews', 9080, 'jason') },
    ]);
    assert.deepEqual(
      vhostFor(snap, 9080, 'reviews')!.routes.map((r) => r.source.httpIndex),
      [1, 3],
      'routes for other sources are not in the table at all',
    );
  });

  it('a productpage v2 sidecar takes the first route; one in shop with other labels the third', () => {
    assert.equal(outcome(sidecar(yaml, { labels: { app: 'productpage', version: 'v2' } }).snapshot, { port: 9080, host: 'reviews.default' }), cluster('reviews', 9080, 'pp-v2'));
    assert.equal(outcome(sidecar(yaml, { namespace: 'shop', labels: { app: 'ui' } }).snapshot, { port: 9080, host: 'reviews.default' }), cluster('reviews', 9080, 'from-shop'));
  });
});

describe('sidecar: match.port compares with the service port', () => {
  const yaml = toYaml(
    service('reviews', { ports: [{ port: 9080 }, { port: 9090, name: 'http-admin' }] }),
    virtualService('reviews', {
      hosts: ['reviews'],
      http: [
        { match: [{ port: 9090, uri: { prefix: '/admin' } }], route: [to('reviews', { subset: 'admin' })] },
        { match: [{ port: 9080 }], route: [to('reviews', { subset: 'v1' })] },
      ],
    }),
  );
  const { snapshot } = sidecar(yaml);

  it('each port holds only its routes; a destination without port goes to the route config\'s port', () => {
    check(snapshot, [
      { req: { port: 9090, host: 'reviews', path: '/admin' }, want: cluster('reviews', 9090, 'admin') },
      { req: { port: 9090, host: 'reviews', path: '/other' }, want: 404 },
      { req: { port: 9080, host: 'reviews', path: '/admin' }, want: cluster('reviews', 9080, 'v1') },
    ]);
    assert.deepEqual(vhostFor(snapshot, 9080, 'reviews')!.routes.map((r) => r.source.httpIndex), [1]);
  });

  it('a port with no route left for the VirtualService keeps the default route', () => {
    const only9090 = toYaml(
      service('reviews', { ports: [{ port: 9080 }, { port: 9090, name: 'http-admin' }] }),
      virtualService('reviews', { hosts: ['reviews'], http: [{ match: [{ port: 9090 }], route: [to('reviews', { subset: 'admin' })] }] }),
    );
    check(sidecar(only9090).snapshot, [
      { req: { port: 9090, host: 'reviews' }, want: cluster('reviews', 9090, 'admin') },
      { req: { port: 9080, host: 'reviews' }, want: cluster('reviews', 9080) },
    ]);
  });
});

// ------------------------------------------------------------------ actions

describe('sidecar: weighted subsets', () => {
  it('relative weights between subsets, zero weights dropped', () => {
    const yaml = toYaml(
      service('reviews'),
      virtualService('reviews', {
        hosts: ['reviews'],
        http: [{ route: [to('reviews', { subset: 'v1', weight: 80 }), to('reviews', { subset: 'v2', weight: 0 }), to('reviews', { subset: 'v3', weight: 20 })] }],
      }),
    );
    const route = lookupRoute(sidecar(yaml).snapshot, { port: 9080, host: 'reviews' });
    assert.ok(route !== 'miss' && route !== 404);
    const a = route.action as ForwardAction;
    assert.deepEqual(a.destinations.map((d) => [d.clusterName, d.weight]), [
      [cluster('reviews', 9080, 'v1'), 80],
      [cluster('reviews', 9080, 'v3'), 20],
    ]);
    assert.equal(a.totalWeight, 100);
    assert.equal(a.timeoutMs, 0);
  });
});

// ------------------------------------------------------------------ hosts outside the registry, wildcards

describe('sidecar: VirtualService hosts that are not services', () => {
  it('get a virtual host on port 80, and on each port their destinations name', () => {
    const yaml = toYaml(
      service('reviews'),
      virtualService('alias', { hosts: ['bookinfo.example.com'], http: [{ route: [to('reviews', { port: 9080 })] }] }),
      virtualService('plain', { hosts: ['plain.example.com'], http: [{ route: [to('reviews')] }] }),
    );
    const { snapshot } = sidecar(yaml);
    assert.deepEqual([...snapshot.routeConfigs.keys()], ['80', '9080']);
    check(snapshot, [
      { req: { port: 80, host: 'bookinfo.example.com' }, want: cluster('reviews', 9080) },
      { req: { port: 9080, host: 'bookinfo.example.com:9080' }, want: cluster('reviews', 9080) },
      // As in Istio, a sidecar resolves a destination without port to the listener port, not the service's.
      { req: { port: 80, host: 'plain.example.com' }, want: cluster('reviews', 80) },
      { req: { port: 9080, host: 'plain.example.com' }, want: 'miss' },
    ]);
    assert.deepEqual(vhostFor(snapshot, 80, 'bookinfo.example.com')!.domains, ['bookinfo.example.com', 'bookinfo.example.com:80']);
  });

  it('Istio\'s port-80 quirk: a VirtualService for a service on other ports also answers its FQDN on 80', () => {
    const yaml = toYaml(service('reviews'), virtualService('reviews', { hosts: ['reviews'], http: [{ route: [to('reviews', { port: 9080, subset: 'v1' })] }] }));
    const { snapshot } = sidecar(yaml);
    check(snapshot, [
      { req: { port: 80, host: fqdn('reviews') }, want: cluster('reviews', 9080, 'v1') },
      { req: { port: 80, host: 'reviews' }, want: 'miss' },
      { req: { port: 9080, host: 'reviews' }, want: cluster('reviews', 9080, 'v1') },
    ]);
  });
});

describe('sidecar: wildcard VirtualService hosts', () => {
  const yaml = toYaml(
    serviceEntry('a', ['a.example.com']),
    serviceEntry('b', ['b.example.com']),
    virtualService('wide', { hosts: ['*.example.com'], http: [{ route: [to('egress.example.org', { port: 80 })] }] }),
    virtualService('exact-a', { hosts: ['a.example.com'], http: [{ route: [to('a.example.com', { subset: 'exact' })] }] }),
    virtualService('nothing-covered', { hosts: ['*.example.net'], http: [{ route: [to('net.example.org')] }] }),
  );
  const { snapshot } = sidecar(yaml);

  it('apply to every service they cover, unless a more specific VirtualService host names it', () => {
    check(snapshot, [
      { req: { port: 80, host: 'b.example.com' }, want: 'outbound|80||egress.example.org' },
      { req: { port: 80, host: 'a.example.com' }, want: 'outbound|80|exact|a.example.com' },
      // The wildcard is not a virtual host of its own when it covers services.
      { req: { port: 80, host: 'c.example.com' }, want: 'miss' },
    ]);
  });

  it('a wildcard covering no service is a virtual host of its own, on port 80', () => {
    check(snapshot, [
      { req: { port: 80, host: 'x.example.net' }, want: 'outbound|80||net.example.org' },
      { req: { port: 80, host: 'example.net' }, want: 'miss' },
    ]);
  });
});
