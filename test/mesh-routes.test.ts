// Unit tables for the sidecar (outbound) route compiler without VirtualServices: default routes per
// service port, the Host forms each service answers to, and exportTo. Istio YAML in, lookup out, no
// sockets. docs/reference/routing.md 3 and 9.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { outboundRouteConfig } from '../src/core/routing/compile-mesh.js';
import type { ForwardAction } from '../src/core/routing/types.js';
import { compileValid, toYaml } from './helpers/route-table.js';
import { check, cluster, fqdn, lookupRoute, outcome, service, serviceEntry, sidecar, to, vhostFor, virtualService } from './helpers/mesh-route-table.js';

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
