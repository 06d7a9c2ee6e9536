// Unit tables for the gateway route compiler and lookup: Istio YAML in, lookup result out, no sockets.
// Covers Gateway ↔ VirtualService binding (host scopes, gateway names, exportTo, selectors), host
// intersection and virtual-host order, VirtualService merging, every HTTPMatchRequest field, and the
// compiled actions (weights, destinations, redirect, direct response, rewrites). docs/reference/routing.md

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { serviceYaml } from './helpers/cluster-yaml.js';
import {
  cluster,
  compileValid,
  compileYaml,
  domains,
  lookup,
  outcome,
  routeConfigFor,
  toYaml,
  type CompileOptions,
  type LookupRequest,
} from './helpers/route-table.js';
import type { Snapshot } from '../src/core/snapshot/snapshot.js';
import type { ForwardAction, RouteAction } from '../src/core/routing/types.js';

// ------------------------------------------------------------------ builders

const GW = 'istio-system/gw';

interface GatewayOpts {
  readonly name?: string;
  readonly namespace?: string;
  readonly selector?: Record<string, string> | null;
  readonly servers?: ReadonlyArray<{ port: number; hosts: readonly string[]; name?: string; protocol?: string }>;
}

/** A Gateway (default: `istio-system/gw`, selecting the ingress gateway, one HTTP server on 80). */
function gateway(hosts: readonly string[], o: GatewayOpts = {}): object {
  const servers = o.servers ?? [{ port: 80, hosts }];
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'Gateway',
    metadata: { name: o.name ?? 'gw', namespace: o.namespace ?? 'istio-system' },
    spec: {
      ...(o.selector === null ? {} : { selector: o.selector ?? { istio: 'ingressgateway' } }),
      servers: servers.map((s) => ({ port: { number: s.port, name: s.name ?? `http-${s.port}`, protocol: s.protocol ?? 'HTTP' }, hosts: s.hosts })),
    },
  };
}

interface VsMeta {
  readonly namespace?: string;
  readonly created?: string;
}

/** A VirtualService; `spec` is written as in Istio YAML. */
function virtualService(name: string, spec: object, meta: VsMeta = {}): object {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name, namespace: meta.namespace ?? 'default', ...(meta.created ? { creationTimestamp: meta.created } : {}) },
    spec,
  };
}

/** `route: [{destination: {host}}]` for one destination. */
function to(host: string): { route: object[] } {
  return { route: [{ destination: { host } }] };
}

/** An http route with one match entry and one destination. */
function when(match: object, host: string): object {
  return { match: [match], ...to(host) };
}

// ------------------------------------------------------------------ table runner

interface Row {
  readonly req: LookupRequest;
  /** 404, or the cluster name(s) the route sends to, or `redirect N` / `direct N`. */
  readonly want: 404 | string | readonly string[];
}

interface Case {
  readonly name: string;
  readonly yaml: string;
  readonly rows: readonly Row[];
  /** Expected virtual-host domains on port 80, sorted. */
  readonly domains?: readonly string[];
  readonly opts?: CompileOptions;
}

function show(r: LookupRequest): string {
  const extras = [r.method && r.method !== 'GET' ? r.method : '', r.scheme ? `scheme=${r.scheme}` : '', r.headers ? JSON.stringify(r.headers) : '', r.query ? JSON.stringify(r.query) : ''].filter(Boolean);
  return `:${r.port ?? 80} ${r.host}${r.path ?? '/'} ${extras.join(' ')}`.trimEnd();
}

function runTable(cases: readonly Case[]): void {
  for (const c of cases) {
    it(c.name, () => {
      const snap = compileValid(c.yaml, c.opts);
      if (c.domains) assert.deepEqual(domains(snap), [...c.domains].sort(), 'virtual-host domains');
      for (const row of c.rows) assert.deepEqual(outcome(snap, row.req), row.want, `request ${show(row.req)}`);
    });
  }
}

function forward(a: RouteAction): ForwardAction {
  assert.equal(a.kind, 'forward');
  return a as ForwardAction;
}

function routeAt(snap: Snapshot, req: LookupRequest) {
  const res = lookup(snap, req);
  assert.equal(res.status, 'route', `request ${show(req)} should find a route`);
  if (res.status !== 'route') throw new Error('unreachable');
  return res;
}

// ------------------------------------------------------------------ binding

describe('binding: Gateway server host namespace scopes', () => {
  runTable([
    {
      name: '*/host binds VirtualServices from any namespace',
      yaml: toYaml(gateway(['*/a.example.com']), virtualService('a', { hosts: ['a.example.com'], gateways: [GW], http: [to('a')] }, { namespace: 'team1' })),
      domains: ['a.example.com'],
      rows: [{ req: { host: 'a.example.com' }, want: cluster('a', { ns: 'team1' }) }],
    },
    {
      name: './host binds only VirtualServices in the Gateway namespace',
      yaml: toYaml(
        gateway(['./a.example.com']),
        virtualService('from-team1', { hosts: ['a.example.com'], gateways: [GW], http: [when({ uri: { prefix: '/t1' } }, 't1')] }, { namespace: 'team1' }),
        virtualService('local', { hosts: ['a.example.com'], gateways: [GW], http: [when({ uri: { prefix: '/local' } }, 'local')] }, { namespace: 'istio-system' }),
      ),
      domains: ['a.example.com'],
      rows: [
        { req: { host: 'a.example.com', path: '/local' }, want: cluster('local', { ns: 'istio-system' }) },
        { req: { host: 'a.example.com', path: '/t1' }, want: 404 },
      ],
    },
    {
      name: './host with only a foreign-namespace VirtualService produces no virtual host',
      yaml: toYaml(gateway(['./a.example.com']), virtualService('from-team1', { hosts: ['a.example.com'], gateways: [GW], http: [to('t1')] }, { namespace: 'team1' })),
      domains: [],
      rows: [{ req: { host: 'a.example.com' }, want: 404 }],
    },
    {
      name: 'ns/host binds only VirtualServices from that namespace',
      yaml: toYaml(
        gateway(['team1/a.example.com']),
        virtualService('one', { hosts: ['a.example.com'], gateways: [GW], http: [when({ uri: { prefix: '/t1' } }, 't1')] }, { namespace: 'team1' }),
        virtualService('two', { hosts: ['a.example.com'], gateways: [GW], http: [when({ uri: { prefix: '/t2' } }, 't2')] }, { namespace: 'team2' }),
      ),
      rows: [
        { req: { host: 'a.example.com', path: '/t1' }, want: cluster('t1', { ns: 'team1' }) },
        { req: { host: 'a.example.com', path: '/t2' }, want: 404 },
      ],
    },
    {
      name: 'ns/* binds every host of that namespace and nothing from others',
      yaml: toYaml(
        gateway(['team1/*']),
        virtualService('one', { hosts: ['anything.example.org'], gateways: [GW], http: [to('t1')] }, { namespace: 'team1' }),
        virtualService('two', { hosts: ['other.example.org'], gateways: [GW], http: [to('t2')] }, { namespace: 'team2' }),
      ),
      domains: ['anything.example.org'],
      rows: [
        { req: { host: 'anything.example.org' }, want: cluster('t1', { ns: 'team1' }) },
        { req: { host: 'other.example.org' }, want: 404 },
      ],
    },
    {
      name: 'each server host scope applies to its own host only',
      yaml: toYaml(
        gateway(['team1/a.example.com', 'team2/b.example.com']),
        virtualService('two', { hosts: ['a.example.com', 'b.example.com'], gateways: [GW], http: [to('t2')] }, { namespace: 'team2' }),
      ),
      domains: ['b.example.com'],
      rows: [
        { req: { host: 'b.example.com' }, want: cluster('t2', { ns: 'team2' }) },
        { req: { host: 'a.example.com' }, want: 404 },
      ],
    },
  ]);
});

describe('binding: VirtualService gateways names', () => {
  runTable([
    {
      name: 'gateways forms: ns/name, short name in the same namespace, legacy FQDN, mesh+gateway bind; omitted, mesh-only and foreign short names do not',
      yaml: toYaml(
        gateway(['*']),
        virtualService('ns-name', { hosts: ['ns-name.example.com'], gateways: ['istio-system/gw'], http: [to('ns-name')] }),
        virtualService('short-same-ns', { hosts: ['short.example.com'], gateways: ['gw'], http: [to('short')] }, { namespace: 'istio-system' }),
        virtualService('short-other-ns', { hosts: ['short-other.example.com'], gateways: ['gw'], http: [to('short-other')] }),
        virtualService('legacy', { hosts: ['legacy.example.com'], gateways: ['gw.istio-system.svc.cluster.local'], http: [to('legacy')] }),
        virtualService('omitted', { hosts: ['omitted.example.com'], http: [to('omitted')] }),
        virtualService('mesh-only', { hosts: ['mesh.example.com'], gateways: ['mesh'], http: [to('mesh')] }),
        virtualService('mesh-and-gw', { hosts: ['both.example.com'], gateways: ['mesh', 'istio-system/gw'], http: [to('both')] }),
      ),
      domains: ['both.example.com', 'legacy.example.com', 'ns-name.example.com', 'short.example.com'],
      rows: [
        { req: { host: 'ns-name.example.com' }, want: cluster('ns-name') },
        { req: { host: 'short.example.com' }, want: cluster('short', { ns: 'istio-system' }) },
        { req: { host: 'short-other.example.com' }, want: 404 },
        { req: { host: 'legacy.example.com' }, want: cluster('legacy') },
        { req: { host: 'omitted.example.com' }, want: 404 },
        { req: { host: 'mesh.example.com' }, want: 404 },
        { req: { host: 'both.example.com' }, want: cluster('both') },
      ],
    },
    {
      name: 'match.gateways narrows the top-level gateways for that match',
      yaml: toYaml(
        gateway(['*']),
        virtualService('m', {
          hosts: ['m.example.com'],
          gateways: [GW, 'mesh'],
          http: [
            when({ uri: { prefix: '/mesh' }, gateways: ['mesh'] }, 'mesh-only'),
            when({ uri: { prefix: '/edge' }, gateways: [GW] }, 'edge'),
            to('rest'),
          ],
        }),
      ),
      rows: [
        { req: { host: 'm.example.com', path: '/mesh' }, want: cluster('rest') },
        { req: { host: 'm.example.com', path: '/edge' }, want: cluster('edge') },
      ],
    },
    {
      name: 'match.gateways only narrows: a gateway missing from the top-level gateways never gets the route',
      yaml: toYaml(
        gateway(['*']),
        gateway(['*'], { name: 'other', servers: [{ port: 8080, hosts: ['*'] }] }),
        // Bound to gw only: the match naming `other` does not attach the VirtualService to it.
        virtualService('top-gw', { hosts: ['n.example.com'], gateways: [GW], http: [when({ uri: { prefix: '/x' }, gateways: ['istio-system/other'] }, 'x'), to('rest')] }),
        // No top-level gateways means mesh only: a match naming gw does not bind it to gw.
        virtualService('mesh-only', { hosts: ['o.example.com'], http: [when({ uri: { prefix: '/x' }, gateways: [GW] }, 'x')] }),
      ),
      domains: ['n.example.com'],
      rows: [
        { req: { host: 'n.example.com', path: '/x' }, want: cluster('rest') },
        { req: { port: 8080, host: 'n.example.com', path: '/x' }, want: 404 },
        { req: { host: 'o.example.com', path: '/x' }, want: 404 },
      ],
    },
    {
      name: 'exportTo: "." from another namespace does not bind; own namespace and an explicit export do',
      yaml: toYaml(
        gateway(['*']),
        virtualService('private-team1', { hosts: ['x.example.com'], gateways: [GW], exportTo: ['.'], http: [to('x')] }, { namespace: 'team1' }),
        virtualService('private-local', { hosts: ['y.example.com'], gateways: [GW], exportTo: ['.'], http: [to('y')] }, { namespace: 'istio-system' }),
        virtualService('exported', { hosts: ['z.example.com'], gateways: [GW], exportTo: ['istio-system'], http: [to('z')] }, { namespace: 'team1' }),
      ),
      domains: ['y.example.com', 'z.example.com'],
      rows: [
        { req: { host: 'x.example.com' }, want: 404 },
        { req: { host: 'y.example.com' }, want: cluster('y', { ns: 'istio-system' }) },
        { req: { host: 'z.example.com' }, want: cluster('z', { ns: 'team1' }) },
      ],
    },
  ]);
});

describe('binding: exportTo is seen from the gateway proxy', () => {
  // Istio: buildGatewayHTTPRouteConfig asks push.VirtualServicesForGateway(node.ConfigNamespace, gw),
  // which returns the VirtualServices private to the PROXY's namespace, then those exported to it,
  // then the public ones (pilot/pkg/model/push_context.go).
  it('a private VirtualService in the Gateway resource namespace is not visible to a proxy in another namespace', () => {
    const snap = compileValid(
      toYaml(
        gateway(['*'], { namespace: 'bookinfo', name: 'bookinfo-gw' }),
        virtualService('private', { hosts: ['p.example.com'], gateways: ['bookinfo-gw'], exportTo: ['.'], http: [to('p')] }, { namespace: 'bookinfo' }),
        virtualService('public', { hosts: ['q.example.com'], gateways: ['bookinfo-gw'], http: [to('q')] }, { namespace: 'bookinfo' }),
      ),
      { role: { namespace: 'istio-system' } },
    );
    assert.equal(outcome(snap, { host: 'q.example.com' }), cluster('q', { ns: 'bookinfo' }));
    assert.equal(outcome(snap, { host: 'p.example.com' }), 404);
  });

  it('VirtualServices private to the proxy namespace come before public ones for the same host', () => {
    const snap = compileValid(
      toYaml(
        gateway(['*']),
        virtualService('public', { hosts: ['h.example.com'], gateways: [GW], http: [when({ uri: { prefix: '/x' } }, 'public')] }, { namespace: 'team1', created: '2020-01-01T00:00:00Z' }),
        virtualService('local', { hosts: ['h.example.com'], gateways: [GW], exportTo: ['.'], http: [when({ uri: { prefix: '/x' } }, 'local')] }, { namespace: 'istio-system', created: '2024-01-01T00:00:00Z' }),
      ),
    );
    assert.equal(outcome(snap, { host: 'h.example.com', path: '/x' }), cluster('local', { ns: 'istio-system' }));
  });
});

describe('binding: Gateway selector', () => {
  it('a Gateway whose selector does not match the proxy labels gives no listener', () => {
    const snap = compileValid(toYaml(gateway(['*'], { selector: { istio: 'egressgateway' } }), virtualService('v', { hosts: ['*'], gateways: [GW], http: [to('a')] })));
    assert.equal(snap.listeners.size, 0);
    assert.deepEqual(lookup(snap, { host: 'a.example.com' }), { status: 404, reason: 'no listener' });
  });

  it('every selector label must be on the proxy', () => {
    const snap = compileValid(toYaml(gateway(['*'], { selector: { istio: 'ingressgateway', zone: 'east' } }), virtualService('v', { hosts: ['*'], gateways: [GW], http: [to('a')] })));
    assert.equal(snap.listeners.size, 0);
  });

  it('a selector that is a subset of the proxy labels selects it, across namespaces', () => {
    const yaml = toYaml(gateway(['*'], { namespace: 'apps', name: 'edge' }), virtualService('v', { hosts: ['*'], gateways: ['apps/edge'], http: [to('a')] }));
    const snap = compileValid(yaml, { role: { labels: { istio: 'ingressgateway', app: 'istio-ingressgateway' }, namespace: 'istio-system' } });
    assert.deepEqual([...snap.listeners.keys()], [80]);
    assert.equal(outcome(snap, { host: 'a.example.com' }), cluster('a'));
  });

  it('a Gateway with no selector applies to every gateway proxy', () => {
    const snap = compileValid(toYaml(gateway(['*'], { selector: null }), virtualService('v', { hosts: ['*'], gateways: [GW], http: [to('a')] })));
    assert.equal(outcome(snap, { host: 'a.example.com' }), cluster('a'));
  });

  it('servers with no bound VirtualService answer 404 for every host', () => {
    const snap = compileValid(toYaml(gateway(['*'])));
    assert.deepEqual([...snap.listeners.keys()], [80]);
    assert.equal(outcome(snap, { host: 'a.example.com' }), 404);
  });
});

// ------------------------------------------------------------------ hosts

describe('hosts: intersection of server hosts and VirtualService hosts', () => {
  runTable([
    {
      name: 'server *.example.com with VirtualService user.example.com gives vhost user.example.com',
      yaml: toYaml(gateway(['*.example.com']), virtualService('u', { hosts: ['user.example.com'], gateways: [GW], http: [to('user')] })),
      domains: ['user.example.com'],
      rows: [
        { req: { host: 'user.example.com' }, want: cluster('user') },
        { req: { host: 'other.example.com' }, want: 404 },
      ],
    },
    {
      name: 'server user.example.com with VirtualService *.example.com gives vhost user.example.com',
      yaml: toYaml(gateway(['user.example.com']), virtualService('u', { hosts: ['*.example.com'], gateways: [GW], http: [to('user')] })),
      domains: ['user.example.com'],
      rows: [
        { req: { host: 'user.example.com' }, want: cluster('user') },
        { req: { host: 'other.example.com' }, want: 404 },
      ],
    },
    {
      name: 'server * with VirtualService * gives vhost * that takes any host',
      yaml: toYaml(gateway(['*']), virtualService('all', { hosts: ['*'], gateways: [GW], http: [to('all')] })),
      domains: ['*'],
      rows: [
        { req: { host: 'anything.example.net' }, want: cluster('all') },
        { req: { host: '10.1.2.3' }, want: cluster('all') },
      ],
    },
    {
      name: 'of two wildcards the more specific one becomes the vhost',
      yaml: toYaml(gateway(['*.example.com']), virtualService('s', { hosts: ['*.shop.example.com'], gateways: [GW], http: [to('shop')] })),
      domains: ['*.shop.example.com'],
      rows: [
        { req: { host: 'eu.shop.example.com' }, want: cluster('shop') },
        { req: { host: 'shop.example.com' }, want: 404 },
      ],
    },
    {
      name: '*.example.com does not cover example.com itself',
      yaml: toYaml(gateway(['*.example.com']), virtualService('apex', { hosts: ['example.com'], gateways: [GW], http: [to('apex')] })),
      domains: [],
      rows: [{ req: { host: 'example.com' }, want: 404 }],
    },
  ]);
});

describe('hosts: virtual-host lookup', () => {
  const yaml = toYaml(
    gateway(['*']),
    virtualService('exact', { hosts: ['a.b.example.com'], gateways: [GW], http: [to('exact')] }),
    virtualService('wild-long', { hosts: ['*.b.example.com'], gateways: [GW], http: [to('wild-long')] }),
    virtualService('wild-short', { hosts: ['*.example.com'], gateways: [GW], http: [to('wild-short')] }),
    virtualService('star', { hosts: ['*'], gateways: [GW], http: [to('star')] }),
  );
  runTable([
    {
      name: 'lookup order is exact, then the longest wildcard, then *',
      yaml,
      domains: ['*', '*.b.example.com', '*.example.com', 'a.b.example.com'],
      rows: [
        { req: { host: 'a.b.example.com' }, want: cluster('exact') },
        { req: { host: 'x.b.example.com' }, want: cluster('wild-long') },
        { req: { host: 'y.a.b.example.com' }, want: cluster('wild-long') },
        { req: { host: 'b.example.com' }, want: cluster('wild-short') },
        { req: { host: 'x.example.com' }, want: cluster('wild-short') },
        { req: { host: 'example.com' }, want: cluster('star') },
        { req: { host: 'other.org' }, want: cluster('star') },
      ],
    },
    {
      name: 'the Host header is matched case-insensitively and without its port',
      yaml,
      rows: [
        { req: { host: 'A.B.Example.COM' }, want: cluster('exact') },
        { req: { host: 'a.b.example.com:8080' }, want: cluster('exact') },
        { req: { host: 'X.B.EXAMPLE.COM:80' }, want: cluster('wild-long') },
      ],
    },
  ]);
});

// ------------------------------------------------------------------ merging and order

describe('merging: several VirtualServices for one host', () => {
  it('routes are appended by creationTimestamp (not file order), with catch-alls moved last', () => {
    const snap = compileValid(
      toYaml(
        gateway(['*']),
        // Listed first but created later.
        virtualService('newer', { hosts: ['shop.example.com'], gateways: [GW], http: [when({ uri: { prefix: '/cart/special' } }, 'special'), when({ uri: { prefix: '/search' } }, 'search')] }, { created: '2024-06-01T00:00:00Z' }),
        virtualService('older', { hosts: ['shop.example.com'], gateways: [GW], http: [when({ uri: { prefix: '/cart' } }, 'cart'), to('older-default')] }, { created: '2024-01-01T00:00:00Z' }),
      ),
    );
    const vh = routeConfigFor(snap)!.findVirtualHost('shop.example.com')!;
    assert.deepEqual(
      vh.routes.map((r) => `${r.source.virtualService} http[${r.source.httpIndex}]`),
      ['default/older http[0]', 'default/newer http[0]', 'default/newer http[1]', 'default/older http[1]'],
    );
    assert.equal(outcome(snap, { host: 'shop.example.com', path: '/cart/special' }), cluster('cart'));
    assert.equal(outcome(snap, { host: 'shop.example.com', path: '/search' }), cluster('search'));
    assert.equal(outcome(snap, { host: 'shop.example.com', path: '/other' }), cluster('older-default'));
  });

  it('equal creationTimestamps fall back to name order', () => {
    const t = '2024-01-01T00:00:00Z';
    const snap = compileValid(
      toYaml(
        gateway(['*']),
        virtualService('beta', { hosts: ['h.example.com'], gateways: [GW], http: [when({ uri: { prefix: '/x' } }, 'beta')] }, { created: t }),
        virtualService('alpha', { hosts: ['h.example.com'], gateways: [GW], http: [when({ uri: { prefix: '/x' } }, 'alpha')] }, { created: t }),
      ),
    );
    assert.equal(outcome(snap, { host: 'h.example.com', path: '/x' }), cluster('alpha'));
  });

  it('without timestamps the order the resources were read in stands in for creation order', () => {
    const snap = compileValid(
      toYaml(
        gateway(['*']),
        virtualService('zeta', { hosts: ['h.example.com'], gateways: [GW], http: [when({ uri: { prefix: '/x' } }, 'zeta')] }),
        virtualService('alpha', { hosts: ['h.example.com'], gateways: [GW], http: [when({ uri: { prefix: '/x' } }, 'alpha')] }),
      ),
    );
    assert.equal(outcome(snap, { host: 'h.example.com', path: '/x' }), cluster('zeta'));
  });

  it('a wildcard VirtualService and an exact one stay in separate vhosts', () => {
    const snap = compileValid(
      toYaml(
        gateway(['*']),
        virtualService('wild', { hosts: ['*.example.com'], gateways: [GW], http: [to('wild')] }),
        virtualService('exact', { hosts: ['a.example.com'], gateways: [GW], http: [when({ uri: { prefix: '/only' } }, 'exact')] }),
      ),
    );
    assert.equal(outcome(snap, { host: 'a.example.com', path: '/only' }), cluster('exact'));
    assert.equal(outcome(snap, { host: 'a.example.com', path: '/else' }), 404);
    assert.equal(outcome(snap, { host: 'b.example.com', path: '/only' }), cluster('wild'));
  });

  it('a match on the server port alone is a catch-all and moves after later VirtualServices', () => {
    // Istio drops `port` from the Envoy match, leaving prefix "/" with no header or query matcher:
    // IsCatchAllRoute is true, so SortVHostRoutes moves it to the end (docs/reference/routing.md).
    const snap = compileValid(
      toYaml(
        gateway(['*']),
        virtualService('older', { hosts: ['p.example.com'], gateways: [GW], http: [when({ port: 80 }, 'older')] }, { created: '2024-01-01T00:00:00Z' }),
        virtualService('newer', { hosts: ['p.example.com'], gateways: [GW], http: [when({ uri: { prefix: '/b' } }, 'newer')] }, { created: '2024-02-01T00:00:00Z' }),
      ),
    );
    assert.equal(outcome(snap, { host: 'p.example.com', path: '/b' }), cluster('newer'));
    assert.equal(outcome(snap, { host: 'p.example.com', path: '/a' }), cluster('older'));
  });

  it('match entries after a catch-all entry of the same http route are not emitted', () => {
    // Istio's BuildHTTPRoutesForVirtualService breaks out of the match loop at the first catch-all.
    const snap = compileValid(
      toYaml(
        gateway(['*']),
        virtualService('older', { hosts: ['c.example.com'], gateways: [GW], http: [{ match: [{ uri: { prefix: '/' } }, { uri: { prefix: '/b' } }], ...to('older') }] }, { created: '2024-01-01T00:00:00Z' }),
        virtualService('newer', { hosts: ['c.example.com'], gateways: [GW], http: [when({ uri: { prefix: '/b' } }, 'newer')] }, { created: '2024-02-01T00:00:00Z' }),
      ),
    );
    assert.equal(outcome(snap, { host: 'c.example.com', path: '/b' }), cluster('newer'));
    assert.equal(routeConfigFor(snap)!.findVirtualHost('c.example.com')!.routes.length, 2);
  });
});

describe('order within one VirtualService', () => {
  it('routes after a route with no match are ignored', () => {
    const snap = compileValid(
      toYaml(gateway(['*']), virtualService('v', { hosts: ['*'], gateways: [GW], http: [when({ uri: { prefix: '/a' } }, 'a'), to('all'), when({ uri: { prefix: '/b' } }, 'b')] })),
    );
    assert.equal(routeConfigFor(snap)!.findVirtualHost('x')!.routes.length, 2);
    assert.equal(outcome(snap, { host: 'x', path: '/a' }), cluster('a'));
    assert.equal(outcome(snap, { host: 'x', path: '/b' }), cluster('all'));
  });

  it('routes after a prefix "/" or regex ".*" match are ignored', () => {
    const snap = compileValid(
      toYaml(
        gateway(['*']),
        virtualService('prefix', { hosts: ['p.example.com'], gateways: [GW], http: [when({ uri: { prefix: '/' } }, 'all'), when({ uri: { prefix: '/b' } }, 'b')] }),
        virtualService('regex', { hosts: ['r.example.com'], gateways: [GW], http: [when({ uri: { regex: '.*' } }, 'all'), when({ uri: { prefix: '/b' } }, 'b')] }),
      ),
    );
    for (const host of ['p.example.com', 'r.example.com']) {
      assert.equal(routeConfigFor(snap)!.findVirtualHost(host)!.routes.length, 1, host);
      assert.equal(outcome(snap, { host, path: '/b' }), cluster('all'), host);
    }
  });

  it('a prefix "/" match with a header condition is not a catch-all', () => {
    const snap = compileValid(
      toYaml(gateway(['*']), virtualService('v', { hosts: ['*'], gateways: [GW], http: [when({ uri: { prefix: '/' }, headers: { 'x-canary': { exact: '1' } } }, 'canary'), to('stable')] })),
    );
    assert.equal(outcome(snap, { host: 'x', headers: { 'x-canary': '1' } }), cluster('canary'));
    assert.equal(outcome(snap, { host: 'x' }), cluster('stable'));
  });

  it('a match whose port differs from the server port is dropped on that server', () => {
    const yaml = toYaml(
      gateway([], { servers: [{ port: 80, hosts: ['*'] }, { port: 8080, hosts: ['*'] }] }),
      virtualService('v', {
        hosts: ['*'],
        gateways: [GW],
        http: [when({ port: 8080, uri: { prefix: '/p' } }, 'p8080'), when({ port: 80, uri: { prefix: '/p' } }, 'p80'), to('rest')],
      }),
    );
    const snap = compileValid(yaml);
    assert.equal(outcome(snap, { port: 80, host: 'x', path: '/p' }), cluster('p80'));
    assert.equal(outcome(snap, { port: 8080, host: 'x', path: '/p' }), cluster('p8080', { port: 8080 }));
    assert.equal(outcome(snap, { port: 8080, host: 'x', path: '/q' }), cluster('rest', { port: 8080 }));
    assert.equal(routeConfigFor(snap, 80)!.findVirtualHost('x')!.routes.length, 2);
  });
});

// ------------------------------------------------------------------ match conditions

/** One Gateway on `*` and one VirtualService on `*` with these http routes. */
function table(http: readonly object[]): string {
  return toYaml(gateway(['*']), virtualService('v', { hosts: ['*'], gateways: [GW], http }));
}

const H = 'www.example.com';

describe('match: uri', () => {
  runTable([
    {
      name: 'uri exact, prefix and regex; regexes must match the whole path; the query is not part of the path',
      yaml: table([
        when({ uri: { exact: '/exact' } }, 'exact'),
        when({ uri: { prefix: '/pre' } }, 'pre'),
        when({ uri: { regex: '/item/\\d+' } }, 'item'),
        when({ uri: { regex: '\\d+$' } }, 'digits'),
      ]),
      rows: [
        { req: { host: H, path: '/exact' }, want: cluster('exact') },
        { req: { host: H, path: '/exact?x=1' }, want: cluster('exact') },
        { req: { host: H, path: '/exact/' }, want: 404 },
        { req: { host: H, path: '/exactly' }, want: 404 },
        { req: { host: H, path: '/Exact' }, want: 404 },
        { req: { host: H, path: '/pre' }, want: cluster('pre') },
        { req: { host: H, path: '/prefix' }, want: cluster('pre') },
        { req: { host: H, path: '/pre/x?y=1' }, want: cluster('pre') },
        { req: { host: H, path: '/Pre' }, want: 404 },
        { req: { host: H, path: '/item/42' }, want: cluster('item') },
        { req: { host: H, path: '/item/42?page=2' }, want: cluster('item') },
        { req: { host: H, path: '/item/42/x' }, want: 404 },
        { req: { host: H, path: '/x/item/42' }, want: 404 },
        { req: { host: H, path: '/abc123' }, want: 404 },
      ],
    },
    {
      name: 'ignoreUriCase applies to exact and prefix, not to regex',
      yaml: table([
        when({ uri: { exact: '/Exact' }, ignoreUriCase: true }, 'exact'),
        when({ uri: { prefix: '/Pre' }, ignoreUriCase: true }, 'pre'),
        when({ uri: { regex: '/Reg[0-9]' }, ignoreUriCase: true }, 'reg'),
      ]),
      rows: [
        { req: { host: H, path: '/exact' }, want: cluster('exact') },
        { req: { host: H, path: '/EXACT' }, want: cluster('exact') },
        { req: { host: H, path: '/pre/x' }, want: cluster('pre') },
        { req: { host: H, path: '/PREFIX' }, want: cluster('pre') },
        { req: { host: H, path: '/Reg1' }, want: cluster('reg') },
        { req: { host: H, path: '/reg1' }, want: 404 },
        { req: { host: H, path: '/REG1' }, want: 404 },
      ],
    },
  ]);
});

describe('match: headers', () => {
  runTable([
    {
      name: 'headers exact, prefix, regex (whole value) and presence {}',
      yaml: table([
        when({ headers: { 'x-exact': { exact: 'yes' } } }, 'exact'),
        when({ headers: { 'x-prefix': { prefix: 'abc' } } }, 'prefix'),
        when({ headers: { 'x-regex': { regex: '\\d+$' } } }, 'regex'),
        when({ headers: { 'x-present': {} } }, 'present'),
      ]),
      rows: [
        { req: { host: H, headers: { 'x-exact': 'yes' } }, want: cluster('exact') },
        { req: { host: H, headers: { 'X-Exact': 'yes' } }, want: cluster('exact') },
        { req: { host: H, headers: { 'x-exact': 'YES' } }, want: 404 },
        { req: { host: H, headers: { 'x-exact': 'yes-no' } }, want: 404 },
        { req: { host: H, headers: { 'x-prefix': 'abcdef' } }, want: cluster('prefix') },
        { req: { host: H, headers: { 'x-prefix': 'xabc' } }, want: 404 },
        { req: { host: H, headers: { 'x-regex': '123' } }, want: cluster('regex') },
        { req: { host: H, headers: { 'x-regex': 'a123' } }, want: 404 },
        { req: { host: H, headers: { 'x-present': 'anything' } }, want: cluster('present') },
        { req: { host: H, headers: { 'x-present': '' } }, want: cluster('present') },
        { req: { host: H }, want: 404 },
      ],
    },
    {
      name: 'withoutHeaders inverts the match and counts a missing header as empty',
      yaml: table([
        when({ uri: { prefix: '/w1' }, withoutHeaders: { 'x-env': { exact: 'prod' } } }, 'not-prod'),
        when({ uri: { prefix: '/w2' }, withoutHeaders: { 'x-debug': {} } }, 'no-debug'),
        when({ uri: { prefix: '/w3' }, withoutHeaders: { 'x-tag': { regex: '.*' } } }, 'no-tag'),
        when({ uri: { prefix: '/w4' }, withoutHeaders: { 'x-tag': { prefix: 'a' } } }, 'not-a'),
      ]),
      rows: [
        { req: { host: H, path: '/w1' }, want: cluster('not-prod') },
        { req: { host: H, path: '/w1', headers: { 'x-env': 'dev' } }, want: cluster('not-prod') },
        { req: { host: H, path: '/w1', headers: { 'x-env': 'prod' } }, want: 404 },
        { req: { host: H, path: '/w2' }, want: cluster('no-debug') },
        { req: { host: H, path: '/w2', headers: { 'x-debug': '1' } }, want: 404 },
        // '' matches `.*`, so the inverted condition fails even without the header.
        { req: { host: H, path: '/w3' }, want: 404 },
        { req: { host: H, path: '/w3', headers: { 'x-tag': 'v' } }, want: 404 },
        { req: { host: H, path: '/w4' }, want: cluster('not-a') },
        { req: { host: H, path: '/w4', headers: { 'x-tag': 'b' } }, want: cluster('not-a') },
        { req: { host: H, path: '/w4', headers: { 'x-tag': 'abc' } }, want: 404 },
      ],
    },
    {
      name: 'regex "*" (not RE2) is a presence match in headers, withoutHeaders and queryParams, as in Istio',
      yaml: table([
        when({ uri: { prefix: '/h' }, headers: { 'x-tag': { regex: '*' } } }, 'has-tag'),
        when({ uri: { prefix: '/w' }, withoutHeaders: { 'x-tag': { regex: '*' } } }, 'no-tag'),
        when({ uri: { prefix: '/q' }, queryParams: { flag: { regex: '*' } } }, 'flag'),
      ]),
      rows: [
        { req: { host: H, path: '/h', headers: { 'x-tag': 'anything' } }, want: cluster('has-tag') },
        { req: { host: H, path: '/h', headers: { 'x-tag': '' } }, want: cluster('has-tag') },
        { req: { host: H, path: '/h' }, want: 404 },
        { req: { host: H, path: '/w' }, want: cluster('no-tag') },
        { req: { host: H, path: '/w', headers: { 'x-tag': 'v' } }, want: 404 },
        { req: { host: H, path: '/q?flag=on' }, want: cluster('flag') },
        { req: { host: H, path: '/q?flag' }, want: cluster('flag') },
        { req: { host: H, path: '/q?other=1' }, want: 404 },
      ],
    },
  ]);
});

describe('match: query parameters, method, scheme, authority', () => {
  runTable([
    {
      name: 'queryParams exact, regex, presence {} and exact "" as presence',
      yaml: table([
        when({ uri: { prefix: '/q1' }, queryParams: { debug: { exact: '' } } }, 'debug'),
        when({ uri: { prefix: '/q2' }, queryParams: { v: { exact: '2' } } }, 'v2'),
        when({ uri: { prefix: '/q3' }, queryParams: { id: { regex: '\\d+$' } } }, 'id'),
        when({ uri: { prefix: '/q4' }, queryParams: { flag: {} } }, 'flag'),
      ]),
      rows: [
        { req: { host: H, path: '/q1?debug' }, want: cluster('debug') },
        { req: { host: H, path: '/q1' }, want: 404 },
        { req: { host: H, path: '/q1?other' }, want: 404 },
        { req: { host: H, path: '/q2?v=2' }, want: cluster('v2') },
        { req: { host: H, path: '/q2', query: { v: '2' } }, want: cluster('v2') },
        { req: { host: H, path: '/q2?v=3' }, want: 404 },
        { req: { host: H, path: '/q2?v=22' }, want: 404 },
        { req: { host: H, path: '/q3?id=123' }, want: cluster('id') },
        { req: { host: H, path: '/q3?id=a123' }, want: 404 },
        { req: { host: H, path: '/q4?flag' }, want: cluster('flag') },
        { req: { host: H, path: '/q4?flag=on' }, want: cluster('flag') },
        { req: { host: H, path: '/q4' }, want: 404 },
      ],
    },
    {
      name: 'method, scheme and authority matches',
      yaml: table([
        when({ uri: { prefix: '/m' }, method: { exact: 'POST' } }, 'post'),
        when({ scheme: { exact: 'https' } }, 'secure'),
        when({ authority: { prefix: 'api.' } }, 'api'),
        when({ authority: { regex: 'admin\\.example\\.com' } }, 'admin'),
      ]),
      rows: [
        { req: { host: H, path: '/m', method: 'POST' }, want: cluster('post') },
        { req: { host: H, path: '/m' }, want: 404 },
        { req: { host: H, scheme: 'https' }, want: cluster('secure') },
        { req: { host: 'api.example.com' }, want: cluster('api') },
        { req: { host: 'api.example.com:8080' }, want: cluster('api') },
        { req: { host: 'admin.example.com' }, want: cluster('admin') },
        { req: { host: 'my.admin.example.com' }, want: 404 },
      ],
    },
    {
      name: 'the first matching route wins; match entries are ORed, conditions inside one are ANDed',
      yaml: table([
        when({ uri: { prefix: '/a' } }, 'first'),
        when({ uri: { prefix: '/a/b' } }, 'second'),
        { match: [{ uri: { exact: '/x' } }, { headers: { 'x-y': { exact: '1' } } }], ...to('either') },
        when({ uri: { prefix: '/get-only' }, method: { exact: 'GET' } }, 'both'),
      ]),
      rows: [
        { req: { host: H, path: '/a/b' }, want: cluster('first') },
        { req: { host: H, path: '/x' }, want: cluster('either') },
        { req: { host: H, path: '/z', headers: { 'x-y': '1' } }, want: cluster('either') },
        { req: { host: H, path: '/z' }, want: 404 },
        { req: { host: H, path: '/get-only' }, want: cluster('both') },
        { req: { host: H, path: '/get-only', method: 'POST' }, want: 404 },
      ],
    },
  ]);
});

// ------------------------------------------------------------------ actions

describe('actions: destinations', () => {
  it('weights: a single destination takes 100, weight-0 destinations are dropped, weights are relative', () => {
    const snap = compileValid(
      table([
        { match: [{ uri: { prefix: '/single' } }], route: [{ destination: { host: 'a' }, weight: 50 }] },
        { match: [{ uri: { prefix: '/zero' } }], route: [{ destination: { host: 'a' }, weight: 100 }, { destination: { host: 'b' }, weight: 0 }] },
        { match: [{ uri: { prefix: '/split' } }], route: [{ destination: { host: 'a' }, weight: 80 }, { destination: { host: 'b' }, weight: 20 }] },
        { match: [{ uri: { prefix: '/relative' } }], route: [{ destination: { host: 'a' }, weight: 1 }, { destination: { host: 'b' }, weight: 3 }] },
      ]),
    );
    const weights = (path: string) => {
      const a = forward(routeAt(snap, { host: H, path }).route.action);
      return { clusters: a.destinations.map((d) => d.clusterName), weights: a.destinations.map((d) => d.weight), total: a.totalWeight };
    };
    assert.deepEqual(weights('/single'), { clusters: [cluster('a')], weights: [100], total: 100 });
    assert.deepEqual(weights('/zero'), { clusters: [cluster('a')], weights: [100], total: 100 });
    assert.deepEqual(weights('/split'), { clusters: [cluster('a'), cluster('b')], weights: [80, 20], total: 100 });
    assert.deepEqual(weights('/relative'), { clusters: [cluster('a'), cluster('b')], weights: [1, 3], total: 4 });
  });

  it('short names resolve in the VirtualService namespace; names with a dot are left as they are', () => {
    const snap = compileValid(
      toYaml(
        gateway(['*']),
        virtualService(
          'reviews',
          {
            hosts: ['reviews'],
            gateways: [GW],
            http: [
              when({ uri: { prefix: '/short' } }, 'reviews'),
              when({ uri: { prefix: '/dotted' } }, 'reviews.bookinfo'),
              when({ uri: { prefix: '/fqdn' } }, 'reviews.bookinfo.svc.cluster.local'),
            ],
          },
          { namespace: 'bookinfo' },
        ),
      ),
    );
    assert.deepEqual(domains(snap), ['reviews.bookinfo.svc.cluster.local']);
    const host = 'reviews.bookinfo.svc.cluster.local';
    assert.equal(outcome(snap, { host, path: '/short' }), 'outbound|80||reviews.bookinfo.svc.cluster.local');
    assert.equal(outcome(snap, { host, path: '/dotted' }), 'outbound|80||reviews.bookinfo');
    assert.equal(outcome(snap, { host, path: '/fqdn' }), 'outbound|80||reviews.bookinfo.svc.cluster.local');
    assert.equal(outcome(snap, { host: 'reviews', path: '/short' }), 404);
  });

  it('destination port: single-port service → its port; multi-port → the listener port; explicit port kept', () => {
    const services = `apiVersion: v1
kind: Service
metadata: {name: single, namespace: default}
spec:
  selector: {app: single}
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Service
metadata: {name: multi, namespace: default}
spec:
  selector: {app: multi}
  ports: [{name: http, port: 8000}, {name: http-admin, port: 9000}]
`;
    const yaml =
      services +
      '---\n' +
      toYaml(
        gateway([], { servers: [{ port: 80, hosts: ['*'] }, { port: 8000, hosts: ['*'] }] }),
        virtualService('v', {
          hosts: ['*'],
          gateways: [GW],
          http: [
            when({ uri: { prefix: '/single' } }, 'single'),
            { match: [{ uri: { prefix: '/multi-explicit' } }], route: [{ destination: { host: 'multi', port: { number: 9000 } } }] },
            when({ uri: { prefix: '/multi' } }, 'multi'),
            when({ uri: { prefix: '/unknown' } }, 'nosuch'),
          ],
        }),
      );
    const snap = compileValid(yaml);
    const dest = (path: string, port = 80) => forward(routeAt(snap, { port, host: H, path }).route.action).destinations[0]!;

    assert.equal(dest('/single').clusterName, cluster('single', { port: 9080 }));
    assert.ok(dest('/single').cluster, 'single-port service cluster exists');
    assert.equal(dest('/multi-explicit').clusterName, cluster('multi', { port: 9000 }));
    assert.ok(dest('/multi-explicit').cluster, 'explicit port cluster exists');
    assert.equal(dest('/multi').clusterName, cluster('multi', { port: 80 }));
    assert.equal(dest('/multi').cluster, undefined, 'multi-port service has no port 80');
    assert.equal(dest('/multi', 8000).clusterName, cluster('multi', { port: 8000 }));
    assert.ok(dest('/multi', 8000).cluster, 'listener port 8000 is a service port');
    assert.equal(dest('/unknown').clusterName, cluster('nosuch'));
    assert.equal(dest('/unknown').cluster, undefined, 'unknown service');
  });

  it('an unknown subset compiles to a destination with no cluster (503 NC at request time)', () => {
    const yaml =
      serviceYaml('reviews', [{ pod: 'reviews-v1', port: 9080, labels: { version: 'v1' }, address: '10.0.0.1' }], { port: 9080 }) +
      `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
---
` +
      toYaml(
        gateway(['*']),
        virtualService('v', {
          hosts: ['*'],
          gateways: [GW],
          http: [
            { match: [{ uri: { prefix: '/v1' } }], route: [{ destination: { host: 'reviews', subset: 'v1' } }] },
            { match: [{ uri: { prefix: '/v9' } }], route: [{ destination: { host: 'reviews', subset: 'v9' } }] },
          ],
        }),
      );
    const snap = compileValid(yaml);
    const v1 = forward(routeAt(snap, { host: H, path: '/v1' }).route.action).destinations[0]!;
    const v9 = forward(routeAt(snap, { host: H, path: '/v9' }).route.action).destinations[0]!;
    assert.equal(v1.clusterName, cluster('reviews', { port: 9080, subset: 'v1' }));
    assert.ok(v1.cluster, 'subset v1 exists');
    assert.equal(v9.clusterName, cluster('reviews', { port: 9080, subset: 'v9' }));
    assert.equal(v9.cluster, undefined);
  });
});

describe('actions: redirect, direct response, rewrite', () => {
  const snap = (): Snapshot =>
    compileValid(
      table([
        { match: [{ uri: { prefix: '/old' } }], redirect: { uri: '/new', authority: 'new.example.com', redirectCode: 302 } },
        { match: [{ uri: { prefix: '/moved' } }], redirect: { uri: '/there' } },
        { match: [{ uri: { prefix: '/secure' } }], redirect: { scheme: 'https', port: 8443 } },
        { match: [{ uri: { prefix: '/down' } }], directResponse: { status: 503, body: { string: 'maintenance' } } },
        { match: [{ uri: { prefix: '/empty' } }], directResponse: { status: 204 } },
        { match: [{ uri: { prefix: '/foo' } }], rewrite: { uri: '/' }, ...to('foo') },
        { match: [{ uri: { exact: '/exact-old' } }], rewrite: { uri: '/exact-new' }, ...to('exact') },
        { match: [{ uri: { prefix: '/v1' } }], rewrite: { uri: '/v2' }, ...to('versioned') },
        { match: [{ uri: { prefix: '/svc/' } }], rewrite: { uriRegexRewrite: { match: '^/svc/([^/]+)/(.*)$', rewrite: '/\\2/\\1' } }, ...to('regex') },
        { match: [{ uri: { regex: '/r/[0-9]+' } }], rewrite: { uri: '/by-id' }, ...to('by-id') },
        { match: [{ uri: { prefix: '/auth' } }], rewrite: { authority: 'backend.internal' }, ...to('auth') },
        { match: [{ headers: { 'x-base': {} } }], rewrite: { uri: '/base/' }, ...to('base') },
      ]),
    );

  it('redirect: code defaults to 301; uri, authority, scheme and port are kept', () => {
    const s = snap();
    const old = routeAt(s, { host: H, path: '/old/page' }).route.action;
    assert.deepEqual({ ...old }, { kind: 'redirect', code: 302, uri: '/new', authority: 'new.example.com', responseHeaders: (old as { responseHeaders: unknown }).responseHeaders });
    const moved = routeAt(s, { host: H, path: '/moved' }).route.action;
    assert.equal(moved.kind, 'redirect');
    assert.equal(moved.kind === 'redirect' && moved.code, 301);
    assert.equal(moved.kind === 'redirect' && moved.uri, '/there');
    const secure = routeAt(s, { host: H, path: '/secure' }).route.action;
    assert.equal(secure.kind === 'redirect' && secure.scheme, 'https');
    assert.equal(secure.kind === 'redirect' && secure.port, 8443);
  });

  it('a redirect with an unsupported 3xx code is dropped (with a warning), so later routes answer', () => {
    const c = compileYaml(
      table([{ match: [{ uri: { prefix: '/r' } }], redirect: { uri: '/x', redirectCode: 305 } }, to('rest')]),
    );
    assert.deepEqual(c.errors, []);
    assert.ok(c.problems.some((p) => p.severity === 'warning' && p.field.endsWith('redirectCode')), 'a warning names redirectCode');
    assert.equal(outcome(c.snapshot, { host: H, path: '/r' }), cluster('rest'));
  });

  it('directResponse: status and body; no body when none is given', () => {
    const s = snap();
    const down = routeAt(s, { host: H, path: '/down' }).route.action;
    assert.equal(down.kind, 'direct');
    assert.equal(down.kind === 'direct' && down.status, 503);
    assert.equal(down.kind === 'direct' && down.body?.toString(), 'maintenance');
    const empty = routeAt(s, { host: H, path: '/empty' }).route.action;
    assert.equal(empty.kind === 'direct' && empty.status, 204);
    assert.equal(empty.kind === 'direct' && empty.body, undefined);
  });

  it('rewrite.uri with a prefix match replaces only the prefix: /foo + "/" turns /foo/bar into //bar', () => {
    const a = forward(routeAt(snap(), { host: H, path: '/foo/bar' }).route.action);
    assert.ok(a.rewritePath);
    assert.equal(a.rewritePath('/foo/bar'), '//bar');
    assert.equal(a.rewritePath('/foo'), '/');
    const v = forward(routeAt(snap(), { host: H, path: '/v1/items' }).route.action);
    assert.equal(v.rewritePath?.('/v1/items'), '/v2/items');
  });

  it('rewrite.uri with an exact or regex match replaces the whole path', () => {
    const exact = forward(routeAt(snap(), { host: H, path: '/exact-old' }).route.action);
    assert.equal(exact.rewritePath?.('/exact-old'), '/exact-new');
    const regex = forward(routeAt(snap(), { host: H, path: '/r/42' }).route.action);
    assert.equal(regex.rewritePath?.('/r/42'), '/by-id');
  });

  it('rewrite.uri on a route without a uri match behaves as prefix "/"', () => {
    const a = forward(routeAt(snap(), { host: H, path: '/x/y', headers: { 'x-base': '1' } }).route.action);
    assert.equal(a.rewritePath?.('/x/y'), '/base/x/y');
  });

  it('uriRegexRewrite substitutes \\1-style groups', () => {
    const a = forward(routeAt(snap(), { host: H, path: '/svc/users/list/all' }).route.action);
    assert.equal(a.rewritePath?.('/svc/users/list/all'), '/list/all/users');
  });

  it('rewrite.authority is compiled onto the forward action; other routes keep none', () => {
    assert.equal(forward(routeAt(snap(), { host: H, path: '/auth' }).route.action).authority, 'backend.internal');
    assert.equal(forward(routeAt(snap(), { host: H, path: '/foo' }).route.action).authority, undefined);
  });
});

describe('compile problems', () => {
  it('the tables above compile without errors (sanity check of the helper)', () => {
    const c = compileYaml(table([to('a')]));
    assert.deepEqual(c.errors, []);
    assert.equal(outcome(c.snapshot, { host: H }), cluster('a'));
  });
});
