// Unit tables for the gateway route compiler: which VirtualServices bind to which Gateway servers
// (server host namespace scopes, VirtualService gateway names, exportTo seen from the proxy, Gateway
// selectors). Istio YAML in, lookup result out, no sockets. docs/reference/routing.md

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cluster, compileValid, lookup, outcome, toYaml } from './helpers/route-table.js';
import { gateway, GW, runTable, to, virtualService, when } from './helpers/gateway-route-cases.js';

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
