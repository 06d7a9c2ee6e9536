// Unit tables for the Gateway API's mesh support (GAMMA): HTTPRoutes attached to a Service
// (`group: ""`, `kind: Service`) as Istio's tasks write them, compiled for a sidecar, a gateway and
// the control plane's scoping. YAML in, attachment, status and outbound route out; no sockets.
// docs/gateway-api.md "Mesh (GAMMA)".

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigText } from '../src/core/config/load.js';
import type { Resource } from '../src/core/model/resource.js';
import { attachToServices } from '../src/core/gateway-api/attach.js';
import { buildRegistry } from '../src/core/registry/build.js';
import { buildSnapshot, NO_MESH_ROUTES } from '../src/core/snapshot/build.js';
import { translateGatewayApi } from '../src/core/gateway-api/translate.js';
import type { SidecarRole, Snapshot } from '../src/core/snapshot/snapshot.js';
import { outboundRouteConfig } from '../src/core/routing/compile-mesh.js';
import { findRoute } from '../src/core/routing/lookup.js';
import type { CompiledRoute, ForwardAction } from '../src/core/routing/types.js';
import { ScopeIndex } from '../src/control/proxy-scope.js';
import { statusObjects } from '../src/core/gateway-api/status-objects.js';
import { compileYaml, FIXED_DEPS, repoPath, requestFacts } from './helpers/route-table.js';
import { REQUEST_ROUTING, TRAFFIC_SHIFTING } from './helpers/gamma-yaml.js';

const service = (name: string, ns = 'default', ports = '[{name: http, port: 9080}]', selector = `{app: ${name}}`): string => `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${ns}}
spec: {selector: ${selector}, ports: ${ports}}
---
`;

// Istio's bookinfo: reviews, and one Service per version for the Gateway API tabs.
const BOOKINFO = `${service('reviews')}${service('reviews-v1', 'default', undefined, '{app: reviews, version: v1}')}${service('reviews-v2', 'default', undefined, '{app: reviews, version: v2}')}${service('reviews-v3', 'default', undefined, '{app: reviews, version: v3}')}${service('productpage')}`;

const PRODUCTPAGE: SidecarRole = Object.freeze({ kind: 'sidecar', namespace: 'default', labels: Object.freeze({ app: 'productpage' }), serviceAccount: 'bookinfo-productpage', outboundTrafficPolicy: 'ALLOW_ANY' });

function sidecar(yaml: string, role: Partial<SidecarRole> = {}): { snapshot: Snapshot; warnings: string[] } {
  const { snapshot, problems } = buildSnapshot(parseConfigText(yaml, 'mesh.yaml'), { ...PRODUCTPAGE, ...role }, FIXED_DEPS);
  assert.deepEqual(problems.filter((p) => p.severity === 'error'), []);
  return { snapshot, warnings: problems.filter((p) => p.severity === 'warning').map((p) => p.message) };
}

function route(snap: Snapshot, port: number, host: string, headers: Record<string, string> = {}, path = '/'): CompiledRoute | 'miss' | 404 {
  const config = outboundRouteConfig(snap, port);
  if (!config) return 'miss';
  const { virtualHost, route: hit } = findRoute(config, requestFacts({ port, host, path, headers }));
  if (!virtualHost) return 'miss';
  return hit ?? 404;
}

function clusters(snap: Snapshot, port: number, host: string, headers: Record<string, string> = {}, path = '/'): string | string[] | 'miss' | 404 {
  const r = route(snap, port, host, headers, path);
  if (r === 'miss' || r === 404) return r;
  if (r.action.kind !== 'forward') return `${r.action.kind}`;
  const names = r.action.destinations.map((d) => d.clusterName);
  return names.length === 1 ? names[0]! : names;
}

const c = (name: string, ns = 'default', port = 9080): string => `outbound|${port}||${name}.${ns}.svc.cluster.local`;

describe('GAMMA: attaching a route to a Service', () => {
  const registry = buildRegistry(parseConfigText(`${BOOKINFO}${service('ratings', 'default', '[{name: http, port: 9080}, {name: grpc, port: 9090}]')}`, 's.yaml').resources, { domain: 'cluster.local' }).registry;
  const routeOf = (parentRefs: string, kind = 'HTTPRoute', ns = 'default'): Resource => {
    const version = kind === 'TCPRoute' ? 'v1alpha2' : 'v1';
    const r = parseConfigText(`apiVersion: gateway.networking.k8s.io/${version}\nkind: ${kind}\nmetadata: {name: r, namespace: ${ns}}\nspec:\n  parentRefs: ${parentRefs}\n  rules: [{backendRefs: [{name: reviews-v1, port: 9080}]}]\n`, 'r.yaml');
    assert.deepEqual(r.problems, []);
    return r.resources[0]!;
  };
  const attach = (parentRefs: string, kind = 'HTTPRoute', ns = 'default') => {
    const r = routeOf(parentRefs, kind, ns);
    const out = attachToServices(r as never, r.kind as never, registry, 'cluster.local');
    return { attachments: out.attachments, conditions: out.parents.map((p) => p.conditions.map((x) => `${x.type} ${x.status} ${x.reason}`).join(', ')) };
  };

  it('a Service with or without port attaches, as its FQDN; the Service namespace defaults to the route\'s', () => {
    assert.deepEqual(attach('[{group: "", kind: Service, name: reviews, port: 9080}]').attachments, [{ host: 'reviews.default.svc.cluster.local', serviceNamespace: 'default', port: 9080, parentIndex: 0 }]);
    assert.deepEqual(attach('[{group: "", kind: Service, name: reviews, namespace: default}]', 'HTTPRoute', 'frontend').attachments, [{ host: 'reviews.default.svc.cluster.local', serviceNamespace: 'default', parentIndex: 0 }]);
    assert.deepEqual(attach('[{group: "", kind: Service, name: ratings, sectionName: grpc}]', 'GRPCRoute').attachments, [{ host: 'ratings.default.svc.cluster.local', serviceNamespace: 'default', port: 9090, parentIndex: 0 }]);
    assert.deepEqual(attach('[{group: "", kind: Service, name: reviews}]').conditions, ['Accepted True Accepted']);
  });

  it('a missing Service, port or port name is NoMatchingParent; a TCPRoute attaches to a Service too', () => {
    assert.deepEqual(attach('[{group: "", kind: Service, name: nope}]').conditions, ['Accepted False NoMatchingParent']);
    assert.deepEqual(attach('[{group: "", kind: Service, name: reviews, port: 8080}]').conditions, ['Accepted False NoMatchingParent']);
    assert.deepEqual(attach('[{group: "", kind: Service, name: ratings, sectionName: http, port: 9090}]').conditions, ['Accepted False NoMatchingParent']);
    assert.deepEqual(attach('[{group: "", kind: Service, name: reviews}]', 'TCPRoute').conditions, ['Accepted True Accepted']);
    assert.deepEqual(attach('[{group: "", kind: Service, name: nope}]').attachments, []);
  });

  it('only the core group counts: kind Service without group "" is not a Service parent', () => {
    assert.deepEqual(attach('[{kind: Service, name: reviews}]'), { attachments: [], conditions: [] });
    assert.deepEqual(attach('[{name: some-gateway}]'), { attachments: [], conditions: [] });
  });
});

describe('GAMMA: a sidecar routes by the routes attached to the Service it calls', () => {
  it("a set without routes: the sidecar's build skips the translation, which would give exactly NO_MESH_ROUTES", () => {
    const loaded = parseConfigText(`${BOOKINFO}apiVersion: gateway.networking.k8s.io/v1
kind: ReferenceGrant
metadata: {name: from-default, namespace: other}
spec: {from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: default}], to: [{group: "", kind: Service}]}
`, 'mesh.yaml');
    const { registry } = buildRegistry(loaded.resources, { domain: 'cluster.local' });
    assert.deepEqual(translateGatewayApi({ resources: loaded.resources, registry, domain: 'cluster.local', scope: 'mesh' }), NO_MESH_ROUTES);
    assert.equal(buildSnapshot(loaded, PRODUCTPAGE, FIXED_DEPS).snapshot.gatewayApi, NO_MESH_ROUTES.status);
  });

  it("request routing (Istio's task as written): end-user jason to reviews-v2, everyone else to reviews-v1, on every Host form", () => {
    const { snapshot } = sidecar(BOOKINFO + REQUEST_ROUTING);
    for (const host of ['reviews', 'reviews:9080', 'reviews.default', 'reviews.default.svc.cluster.local:9080']) {
      assert.equal(clusters(snapshot, 9080, host, { 'end-user': 'jason' }), c('reviews-v2'), host);
      assert.equal(clusters(snapshot, 9080, host), c('reviews-v1'), host);
    }
    // Other services keep their default routes.
    assert.equal(clusters(snapshot, 9080, 'productpage', { 'end-user': 'jason' }), c('productpage'));
    const r = route(snapshot, 9080, 'reviews', { 'end-user': 'jason' });
    assert.ok(r !== 'miss' && r !== 404);
    assert.equal(r.source.virtualService, 'HTTPRoute default/reviews');
    assert.equal(r.source.file, 'mesh.yaml');
  });

  it('traffic shifting: backendRef weights split the traffic', () => {
    const { snapshot } = sidecar(BOOKINFO + TRAFFIC_SHIFTING);
    const r = route(snapshot, 9080, 'reviews');
    assert.ok(r !== 'miss' && r !== 404 && r.action.kind === 'forward');
    assert.deepEqual(r.action.destinations.map((d) => [d.clusterName, d.weight]), [[c('reviews-v1'), 50], [c('reviews-v3'), 50]]);
  });

  it('a parentRef port limits the route to that port; without port it takes every port', () => {
    const two = `${service('reviews', 'default', '[{name: http, port: 9080}, {name: http-admin, port: 9090}]')}${service('reviews-v1')}${service('reviews-v2')}`;
    const onPort = sidecar(two + REQUEST_ROUTING).snapshot;
    assert.equal(clusters(onPort, 9080, 'reviews'), c('reviews-v1'));
    assert.equal(clusters(onPort, 9090, 'reviews'), c('reviews', 'default', 9090), 'port 9090 keeps the default route');
    const anyPort = sidecar(two + REQUEST_ROUTING.replace('    port: 9080\n  rules', '  rules')).snapshot;
    assert.equal(clusters(anyPort, 9090, 'reviews'), c('reviews-v1'), 'port 9090 follows the route too');
  });

  it('timeouts, header modifiers and redirects as the Gateway API means them; no rule matched is 404', () => {
    const yaml = `${BOOKINFO}apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, port: 9080}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /old}}]
    filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}}]
  - matches: [{path: {type: PathPrefix, value: /reviews}}]
    timeouts: {request: 500ms}
    filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-from, value: mesh}]}}]
    backendRefs: [{name: reviews-v1, port: 9080}]
`;
    const { snapshot } = sidecar(yaml);
    const fwd = route(snapshot, 9080, 'reviews', {}, '/reviews/1');
    assert.ok(fwd !== 'miss' && fwd !== 404 && fwd.action.kind === 'forward');
    assert.equal((fwd.action as ForwardAction).timeoutMs, 500);
    assert.deepEqual((fwd.action as ForwardAction).requestHeaders.set, [['x-from', 'mesh']]);
    const redirect = route(snapshot, 9080, 'reviews', {}, '/old/x');
    assert.ok(redirect !== 'miss' && redirect !== 404 && redirect.action.kind === 'redirect');
    assert.equal(redirect.action.code, 302);
    assert.equal(redirect.action.port, undefined, 'a mesh redirect keeps the port the request was sent to');
    assert.equal(route(snapshot, 9080, 'reviews', {}, '/reviewsx'), 404, 'PathPrefix matches whole elements, and no rule matched is 404');
  });

  it("Istio's egress task: an HTTPRoute on a ServiceEntry to its Hostname applies its timeout to the external host", () => {
    const yaml = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin-ext}
spec:
  hosts: [httpbin.org]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
  location: MESH_EXTERNAL
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: HTTPRoute
metadata: {name: httpbin-ext}
spec:
  parentRefs: [{kind: ServiceEntry, group: networking.istio.io, name: httpbin-ext}]
  hostnames: [httpbin.org]
  rules:
  - timeouts: {request: 3s}
    backendRefs: [{kind: Hostname, group: networking.istio.io, name: httpbin.org, port: 80}]
`;
    const { snapshot, warnings } = sidecar(yaml);
    assert.deepEqual(warnings, []);
    const fwd = route(snapshot, 80, 'httpbin.org', {}, '/delay/5');
    assert.ok(fwd !== 'miss' && fwd !== 404 && fwd.action.kind === 'forward', String(fwd));
    assert.equal((fwd.action as ForwardAction).timeoutMs, 3000);
    assert.deepEqual((fwd.action as ForwardAction).destinations.map((d) => d.clusterName), ['outbound|80||httpbin.org']);
    // A ServiceEntry that does not exist, or a Hostname no ServiceEntry has, is reported on the route.
    const missing = sidecar(yaml.replace('name: httpbin-ext}]', 'name: nope}]').replace('name: httpbin.org, port', 'name: nope.org, port'));
    assert.deepEqual(missing.warnings.filter((w) => /ServiceEntry default\/nope does not exist/.test(w)).length, 1, missing.warnings.join('\n'));
    // The control plane sends a sidecar the route with the ServiceEntry it is attached to.
    const sent = [...new ScopeIndex(parseConfigText(yaml, 'all.yaml').resources).scope({ role: 'sidecar', namespace: 'default', labels: {} })].map((r) => `${r.kind} ${r.metadata.name}`);
    assert.ok(sent.includes('HTTPRoute httpbin-ext') && sent.includes('ServiceEntry httpbin-ext'), sent.join(', '));
  });

  it('a GRPCRoute on a Service routes by gRPC method', () => {
    const yaml = `${service('echo', 'default', '[{name: grpc, port: 9000}]')}${service('echo-v2', 'default', '[{name: grpc, port: 9000}]')}apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: echo}
spec:
  parentRefs: [{group: "", kind: Service, name: echo}]
  rules:
  - matches: [{method: {service: echo.Echo, method: Shout}}]
    backendRefs: [{name: echo-v2, port: 9000}]
  - backendRefs: [{name: echo, port: 9000}]
`;
    const { snapshot } = sidecar(yaml);
    assert.equal(clusters(snapshot, 9000, 'echo', {}, '/echo.Echo/Shout'), c('echo-v2', 'default', 9000));
    assert.equal(clusters(snapshot, 9000, 'echo', {}, '/echo.Echo/Say'), c('echo', 'default', 9000));
  });

  it('routes of one namespace for one Service are merged in Gateway API precedence', () => {
    const yaml = `${BOOKINFO}${REQUEST_ROUTING}---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: reviews-exact}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews}]
  rules: [{matches: [{path: {type: Exact, value: /health}}], backendRefs: [{name: reviews-v3, port: 9080}]}]
`;
    const { snapshot } = sidecar(yaml);
    assert.equal(clusters(snapshot, 9080, 'reviews', { 'end-user': 'jason' }, '/health'), c('reviews-v3'), 'an exact path comes before a header match');
    assert.equal(clusters(snapshot, 9080, 'reviews', { 'end-user': 'jason' }), c('reviews-v2'));
  });
});

/** A consumer's route: in namespace frontend, for Service reviews of `ns`, to reviews-v3 there (granted). */
const consumerRoute = (ns: string): string => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: consumer, namespace: frontend}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews, namespace: ${ns}}]
  rules: [{backendRefs: [{name: reviews-v3, namespace: ${ns}, port: 9080}]}]
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: frontend-routes, namespace: ${ns}}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: frontend}]
  to: [{group: "", kind: Service}]
`;

describe('GAMMA: producer and consumer routes, and VirtualServices for the same host', () => {
  const SHOP = `${service('reviews', 'shop')}${service('reviews-v1', 'shop')}${service('reviews-v2', 'shop')}${service('reviews-v3', 'shop')}apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: producer, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: reviews}]
  rules: [{backendRefs: [{name: reviews-v1, port: 9080}]}]
---
${consumerRoute('shop')}`;
  const host = 'reviews.shop.svc.cluster.local';

  it("the producer's route (Service's namespace) applies to every namespace; a consumer's only to its own, where it wins", () => {
    assert.equal(clusters(sidecar(SHOP, { namespace: 'shop' }).snapshot, 9080, host), c('reviews-v1', 'shop'));
    assert.equal(clusters(sidecar(SHOP, { namespace: 'other' }).snapshot, 9080, host), c('reviews-v1', 'shop'));
    assert.equal(clusters(sidecar(SHOP, { namespace: 'frontend' }).snapshot, 9080, host), c('reviews-v3', 'shop'));
  });

  it("a consumer route's backend in the Service's namespace needs no ReferenceGrant (MeshConsumerRoute); through a Gateway it still does", () => {
    const grantless = SHOP.slice(0, SHOP.indexOf('---\napiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant'));
    const { snapshot } = sidecar(grantless, { namespace: 'frontend' });
    assert.equal(clusters(snapshot, 9080, host), c('reviews-v3', 'shop'));
    const viaGateway = grantless.replace('parentRefs: [{group: "", kind: Service, name: reviews, namespace: shop}]', 'parentRefs: [{group: "", kind: Service, name: reviews, namespace: shop}, {name: gw, namespace: frontend}]');
    const gw = `---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: frontend}\nspec:\n  gatewayClassName: meshgate\n  listeners: [{name: http, port: 80, protocol: HTTP}]\n`;
    const { snapshot: gateway, findings } = buildSnapshot(parseConfigText(viaGateway + gw, 'mesh.yaml'), { kind: 'gateway', labels: {}, namespace: 'frontend' }, FIXED_DEPS);
    const parents = gateway.gatewayApi.routes.find((r) => r.resource.metadata.name === 'consumer')!.parents;
    const resolved = parents.map((p) => p.conditions.find((x) => x.type === 'ResolvedRefs')?.reason);
    assert.deepEqual(resolved.sort(), ['RefNotPermitted', 'ResolvedRefs']);
    assert.equal(findings.filter((f) => f.message.includes('no ReferenceGrant there allows')).length, 1, 'analyze names the Gateway side only');
    assert.equal(buildSnapshot(parseConfigText(grantless, 'mesh.yaml'), { kind: 'gateway', labels: {}, namespace: 'frontend' }, FIXED_DEPS).findings.filter((f) => f.message.includes('ReferenceGrant')).length, 0);
  });

  it('a VirtualService for the same host: the older of the two serves it (both are VirtualServices to Istio), the other is reported', () => {
    const vs = (created: string): string => `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop, creationTimestamp: "${created}"}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews-v2}}]}]
`;
    const routeCreated = SHOP.replace('metadata: {name: producer, namespace: shop}', 'metadata: {name: producer, namespace: shop, creationTimestamp: "2024-01-02T00:00:00Z"}');
    const vsFirst = sidecar(routeCreated + vs('2024-01-01T00:00:00Z'), { namespace: 'other' });
    assert.equal(clusters(vsFirst.snapshot, 9080, host), c('reviews-v2', 'shop'));
    assert.ok(vsFirst.warnings.some((w) => w.includes('also a host of VirtualService shop/reviews') && w.includes('ignore HTTPRoute shop/producer')), vsFirst.warnings.join('\n'));
    const routeFirst = sidecar(routeCreated + vs('2024-01-03T00:00:00Z'), { namespace: 'other' });
    assert.equal(clusters(routeFirst.snapshot, 9080, host), c('reviews-v1', 'shop'));
    // In the consumer's namespace its route comes before every public VirtualService, whatever their age.
    assert.equal(clusters(sidecar(routeCreated + vs('2024-01-01T00:00:00Z'), { namespace: 'frontend' }).snapshot, 9080, host), c('reviews-v3', 'shop'));
  });
});

describe('GAMMA: gateways, status and the control plane', () => {
  it('a gateway does not serve a route attached only to a Service, but reports its status there', () => {
    const { snapshot, problems } = compileYaml(BOOKINFO + REQUEST_ROUTING.replace('name: reviews\n    port: 9080', 'name: reviews\n    port: 9080\n  - group: ""\n    kind: Service\n    name: missing'));
    assert.equal(snapshot.routeConfigs.size, 0);
    const shown = snapshot.gatewayApi.routes.flatMap((r) => r.parents.map((p) => `${p.parentRef.kind} ${p.parentRef.name}: ${p.conditions.map((x) => `${x.type} ${x.status}`).join(', ')}`));
    assert.deepEqual(shown, ['Service reviews: Accepted True, ResolvedRefs True', 'Service missing: Accepted False, ResolvedRefs True']);
    assert.ok(problems.some((p) => p.message.includes('parent Service default/missing: Accepted False (NoMatchingParent): Service default/missing does not exist')));
    // In a cluster this is the route's status subresource: parentRef kind Service, group "".
    const written = statusObjects(snapshot.gatewayApi, new Date(0), { serviceAddresses: [] }).find((o) => o.resource.kind === 'HTTPRoute');
    const parents = (written?.status as { parents: Array<{ parentRef: object; controllerName: string; conditions: Array<{ type: string; status: string }> }> }).parents;
    assert.deepEqual(parents[0]!.parentRef, { group: '', kind: 'Service', name: 'reviews', port: 9080, namespace: 'default' });
    assert.equal(parents[0]!.controllerName, 'meshgate.io/gateway-controller');
    assert.deepEqual(parents[0]!.conditions.map((x) => `${x.type} ${x.status}`), ['Accepted True', 'ResolvedRefs True']);
  });

  it('validate warns of kind Service without group ""; analyze reports a Service or port that does not exist (IST0101)', () => {
    const yaml = `${BOOKINFO}apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs:
  - {kind: Service, name: reviews}
  - {group: "", kind: Service, name: nope}
  - {group: "", kind: Service, name: reviews, port: 8080}
  rules: [{backendRefs: [{name: reviews-v1, port: 9080}]}]
`;
    const { problems, findings } = buildSnapshot(parseConfigText(yaml, 'bad.yaml'), { kind: 'gateway', labels: {}, namespace: 'istio-system' }, FIXED_DEPS);
    const at = (list: readonly { field: string; message: string }[]): string[] => list.map((p) => `${p.field}: ${p.message}`);
    assert.ok(at(problems).some((m) => m.startsWith('spec.parentRefs[0].group: kind Service needs group: ""')), at(problems).join('\n'));
    assert.ok(at(findings).some((m) => m.includes('spec.parentRefs[1].name') && m.includes('referenced Service not found: "default/nope"')), at(findings).join('\n'));
    assert.ok(at(findings).some((m) => m.includes('spec.parentRefs[2].port') && m.includes('Service default/reviews has no port 8080')), at(findings).join('\n'));
  });

  it("the control plane sends a sidecar the routes that apply to it, their backends' Services and the ReferenceGrants", () => {
    const yaml = `${BOOKINFO}${REQUEST_ROUTING}---
${consumerRoute('default')}---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: other}
spec: {egress: [{hosts: [default/reviews.default.svc.cluster.local]}]}
`;
    const index = new ScopeIndex(parseConfigText(yaml, 'all.yaml').resources);
    const names = (ns: string): string[] => [...index.scope({ role: 'sidecar', namespace: ns, labels: {} })].map((r) => `${r.kind} ${r.metadata.namespace}/${r.metadata.name}`).sort();
    const other = names('other');
    assert.ok(other.includes('HTTPRoute default/reviews'), 'the producer route');
    assert.ok(!other.includes('HTTPRoute frontend/consumer'), "not another namespace's consumer route");
    assert.ok(other.includes('Service default/reviews-v1') && other.includes('Service default/reviews-v2'), 'its backends, though egress imports only reviews');
    assert.ok(names('frontend').includes('HTTPRoute frontend/consumer'));
    assert.ok(names('frontend').includes('ReferenceGrant default/frontend-routes'));
    assert.ok(!names('other').some((n) => n.startsWith('KubernetesGateway')));
  });
});

describe('GAMMA: meshgate routes and explain for a sidecar', () => {
  it('--sidecar prints the outbound routes and explains a request as the app sends it, naming the HTTPRoute rule', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'meshgate-gamma-cli-'));
    try {
      // Bookinfo's Services with their pods, the per-version Services, and the task's route.
      await copyFile(repoPath('test/fixtures/bookinfo/services.yaml'), join(dir, 'services.yaml'));
      const versions = ['v1', 'v2', 'v3'].map((v) => service(`reviews-${v}`, 'default', undefined, `{app: reviews, version: ${v}}`)).join('');
      await writeFile(join(dir, 'versions.yaml'), versions);
      await writeFile(join(dir, 'route.yaml'), REQUEST_ROUTING);
      const cli = (...args: string[]): string => {
        const r = spawnSync(process.execPath, [repoPath('bin/meshgate.js'), ...args], { encoding: 'utf8', timeout: 60_000 });
        assert.equal(r.status, 0, r.stderr);
        return r.stdout;
      };
      const routes = cli('routes', '--config', dir, '--sidecar');
      assert.match(routes, /route config 9080 \(outbound\)\n/);
      assert.match(routes, /vhost reviews\.default\.svc\.cluster\.local \(also [^)]*\breviews\)\n {4}1\. \[HTTPRoute default\/reviews http\[0\]\.match\[0\]\] when uri prefix "\/" and header end-user exact "jason"/);
      assert.match(routes, /vhost ratings\.default\.svc\.cluster\.local .*\n {4}1\. default \[default route\] when any request/);
      const jason = cli('explain', '--config', dir, '--sidecar', '-H', 'end-user: jason', 'http://reviews:9080/reviews/0');
      assert.match(jason, /route config 9080 \(outbound\)\nvirtual host reviews\.default\.svc\.cluster\.local\n {2}✓ route 1 \[HTTPRoute default\/reviews http\[0\] .*route\.yaml:13\]/);
      assert.match(jason, /→ outbound\|9080\|\|reviews-v2\.default\.svc\.cluster\.local 100%/);
      assert.match(jason, /HTTPRoute default\/reviews → Service default\/reviews:9080: Accepted True, ResolvedRefs True/);
      const other = cli('explain', '--config', dir, '--sidecar', 'http://reviews:9080/reviews/0');
      assert.match(other, /✗ route 1 .*\n {6}wanted header end-user exact "jason", got \(absent\)/);
      assert.match(other, /→ outbound\|9080\|\|reviews-v1\.default\.svc\.cluster\.local 100%/);
      // The gateway's view is unchanged: the route is not attached to any Gateway.
      assert.match(cli('routes', '--config', dir), /no listeners/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
