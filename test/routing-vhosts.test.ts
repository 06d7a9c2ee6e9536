// Unit tables for the gateway route compiler's virtual hosts: the intersection of server and
// VirtualService hosts, virtual-host lookup, merging several VirtualServices for one host, and route
// order within one VirtualService. Istio YAML in, lookup result out, no sockets. docs/reference/routing.md

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cluster, compileValid, outcome, routeConfigFor, toYaml } from './helpers/route-table.js';
import { gateway, GW, runTable, to, virtualService, when } from './helpers/gateway-route-cases.js';

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
