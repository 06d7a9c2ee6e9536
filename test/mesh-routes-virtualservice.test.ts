// Unit tables for VirtualServices in the sidecar (outbound) route compiler: mesh binding,
// first-VirtualService-wins, compile-time source matching, match.port, weights, hosts outside the
// registry and wildcards. Istio YAML in, lookup out, no sockets. docs/reference/routing.md 3 and 9.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ForwardAction } from '../src/core/routing/types.js';
import { toYaml } from './helpers/route-table.js';
import {
  check,
  cluster,
  fqdn,
  lookupRoute,
  outcome,
  service,
  serviceEntry,
  sidecar,
  to,
  vhostFor,
  virtualService,
  warnings,
} from './helpers/mesh-route-table.js';

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
