// Unit tables for the gateway route compiler's compiled actions: weights and destinations, redirect,
// direct response and rewrites. Istio YAML in, compiled action out, no sockets. docs/reference/routing.md

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { cluster, compileValid, compileYaml, domains, outcome, toYaml } from './helpers/route-table.js';
import type { Snapshot } from '../src/core/snapshot/snapshot.js';
import { forward, gateway, GW, H, routeAt, table, to, virtualService, when } from './helpers/gateway-route-cases.js';

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
