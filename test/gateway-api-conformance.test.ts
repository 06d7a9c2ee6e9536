// Gateway API conformance cases (modelled on the upstream suite's HTTPRoute tests) against a real
// `meshgate gateway` on a folder of YAML: real upstreams on loopback, requests over real sockets,
// and the status conditions meshgate reports for each route and Gateway.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { eventually, send, startTestGateway, type Reply, type TestGateway } from './helpers/gateway.js';
import { baseYaml, INFRA, WEB } from './helpers/gateway-api-yaml.js';
import type { Condition } from '../src/core/gateway-api/conditions.js';

function route(name: string, body: string, opts: { namespace?: string; parent?: string; created?: string } = {}): string {
  return `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ${name}, namespace: ${opts.namespace ?? INFRA}${opts.created ? `, creationTimestamp: "${opts.created}"` : ''}}
spec:
  parentRefs: [${opts.parent ?? `{name: same-namespace, namespace: ${INFRA}}`}]
${body}
`;
}

const ROUTES = [
  route(
    'exact-matching',
    `  hostnames: [exact.example]
  rules:
  - matches: [{path: {type: Exact, value: /one}}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{path: {type: Exact, value: /two}}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]`,
  ),
  // Matching across routes: the older route has `/` and a header match, the newer one longer prefixes.
  route(
    'across-a',
    `  hostnames: [across.example]
  rules:
  - backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{path: {value: /}, headers: [{name: version, value: two}]}]
    backendRefs: [{name: infra-backend-v3, port: 8080}]`,
    { created: '2024-01-01T00:00:00Z' },
  ),
  route(
    'across-b',
    `  hostnames: [across.example]
  rules:
  - matches: [{path: {type: PathPrefix, value: /v2}}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]
  - matches: [{path: {type: Exact, value: /}, headers: [{name: version, value: two}]}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]`,
    { created: '2024-01-02T00:00:00Z' },
  ),
  route(
    'headers',
    `  hostnames: [headers.example]
  rules:
  - matches: [{headers: [{name: Version, value: one}]}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{headers: [{name: version, value: two}]}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]
  - matches: [{headers: [{name: version, value: two}, {name: color, value: orange}]}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{headers: [{name: color, type: RegularExpression, value: "bl(ue|ack)"}]}]
    backendRefs: [{name: infra-backend-v3, port: 8080}]`,
  ),
  route(
    'query',
    `  hostnames: [query.example]
  rules:
  - matches: [{queryParams: [{name: animal, value: whale}]}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{queryParams: [{name: animal, value: dolphin}]}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]
  - matches: [{queryParams: [{name: animal, value: dolphin}, {name: color, value: blue}]}]
    backendRefs: [{name: infra-backend-v3, port: 8080}]
  - matches: [{queryParams: [{name: Mixed, value: Case}]}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]`,
  ),
  route(
    'method',
    `  hostnames: [method.example]
  rules:
  - matches: [{method: POST}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{method: GET}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]`,
  ),
  route(
    'header-modifier',
    `  hostnames: [modifier.example]
  rules:
  - filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: X-Header-Set, value: set-overwrites-values}]
        add: [{name: X-Header-Add, value: add-appends-values}]
        remove: [X-Header-Remove]
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        set: [{name: X-Response-Set, value: set}]
        remove: [x-upstream]
    backendRefs: [{name: infra-backend-v1, port: 8080}]`,
  ),
  route(
    'redirect',
    `  hostnames: [redirect.example]
  rules:
  - matches: [{path: {value: /scheme}}]
    filters: [{type: RequestRedirect, requestRedirect: {scheme: https}}]
  - matches: [{path: {value: /hostname}}]
    filters: [{type: RequestRedirect, requestRedirect: {hostname: example.org}}]
  - matches: [{path: {value: /status}}]
    filters: [{type: RequestRedirect, requestRedirect: {statusCode: 301}}]
  - matches: [{path: {value: /port}}]
    filters: [{type: RequestRedirect, requestRedirect: {port: 8083}}]
  - matches: [{path: {value: /full}}]
    filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplaceFullPath, replaceFullPath: /full-path-replacement}}}]
  - matches: [{path: {value: /prefix}}]
    filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix}}}]`,
  ),
  route(
    'rewrite',
    `  hostnames: [rewrite.example]
  rules:
  - matches: [{path: {value: /prefix/one}}]
    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /one}}}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{path: {value: /strip-prefix}}]
    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{path: {value: /full/one}}]
    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /one}}}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{path: {value: /host}}]
    filters: [{type: URLRewrite, urlRewrite: {hostname: rewritten.example}}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]`,
  ),
  route(
    'mirror',
    `  hostnames: [mirror.example]
  rules:
  - filters: [{type: RequestMirror, requestMirror: {backendRef: {name: infra-backend-v2, port: 8080}}}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]`,
  ),
  route(
    'weights',
    `  hostnames: [weight.example]
  rules:
  - backendRefs:
    - {name: infra-backend-v1, port: 8080, weight: 70}
    - {name: infra-backend-v2, port: 8080, weight: 30}
    - {name: infra-backend-v3, port: 8080, weight: 0}`,
  ),
  route(
    'broken-backends',
    `  hostnames: [broken.example]
  rules:
  - matches: [{path: {value: /unknown}}]
    backendRefs: [{name: does-not-exist, port: 8080}]
  - matches: [{path: {value: /zero}}]
    backendRefs: [{name: infra-backend-v1, port: 8080, weight: 0}]
  - matches: [{path: {value: /none}}]
  - matches: [{path: {value: /kind}}]
    backendRefs: [{group: example.com, kind: Thing, name: infra-backend-v1, port: 8080}]
  - matches: [{path: {value: /partial}}]
    backendRefs: [{name: infra-backend-v1, port: 8080}, {name: does-not-exist, port: 8080}]`,
  ),
  // Cross namespace: a route in the web namespace on the Gateway that admits all namespaces …
  route('cross-namespace', `  hostnames: [cross.example]\n  rules:\n  - backendRefs: [{name: web-backend, port: 8080}]`, { namespace: WEB, parent: `{name: all-namespaces, namespace: ${INFRA}}` }),
  // … and one on the Gateway that admits only its own namespace.
  route('not-allowed', `  hostnames: [notallowed.example]\n  rules:\n  - backendRefs: [{name: web-backend, port: 8080}]`, { namespace: WEB }),
  // A backend in another namespace needs a ReferenceGrant there.
  route('reference-grant', `  hostnames: [grant.example]\n  rules:\n  - backendRefs: [{name: web-backend, namespace: ${WEB}, port: 8080}]`),
  `apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: grpc, namespace: ${INFRA}}
spec:
  parentRefs: [{name: same-namespace}]
  hostnames: [grpc.example]
  rules:
  - matches: [{method: {service: echo.Echo, method: Ping}}]
    backendRefs: [{name: infra-backend-v1, port: 8080}]
  - matches: [{method: {service: echo.Echo}}]
    backendRefs: [{name: infra-backend-v2, port: 8080}]
  - matches: [{headers: [{name: x-tenant, value: three}]}]
    backendRefs: [{name: infra-backend-v3, port: 8080}]
`,
  route('section-missing', `  rules:\n  - backendRefs: [{name: infra-backend-v1, port: 8080}]`, { parent: `{name: same-namespace, sectionName: nope}` }),
].join('---\n');

const HOSTNAME_INTERSECTION = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: hostnames, namespace: ${INFRA}}
spec:
  gatewayClassName: meshgate
  listeners:
  - {name: specific, port: 80, protocol: HTTP, hostname: very.specific.com}
  - {name: wildcard, port: 80, protocol: HTTP, hostname: "*.wildcard.io"}
  - {name: grpc-only, port: 80, protocol: HTTP, hostname: grpc-only.wildcard.io, allowedRoutes: {kinds: [{kind: GRPCRoute}]}}
---
${route('specific-host', `  hostnames: [non.matching.com, very.specific.com]\n  rules:\n  - matches: [{path: {value: /s1}}]\n    backendRefs: [{name: infra-backend-v1, port: 8080}]`, { parent: '{name: hostnames}' })}---
${route('wildcard-host', `  hostnames: [non.matching.com, "*.wildcard.io"]\n  rules:\n  - matches: [{path: {value: /s2}}]\n    backendRefs: [{name: infra-backend-v2, port: 8080}]`, { parent: '{name: hostnames}' })}---
${route('narrower-host', `  hostnames: [foo.bar.wildcard.io]\n  rules:\n  - matches: [{path: {value: /s3}}]\n    backendRefs: [{name: infra-backend-v3, port: 8080}]`, { parent: '{name: hostnames}' })}---
${route('no-intersection', `  hostnames: [nothing.example]\n  rules:\n  - backendRefs: [{name: infra-backend-v3, port: 8080}]`, { parent: '{name: hostnames}' })}`;

describe('Gateway API conformance on files', () => {
  let v1: Upstream, v2: Upstream, v3: Upstream, web: Upstream;
  let gw: TestGateway;
  let port80: number, port8080: number;
  const get = (host: string, path = '/', headers: Record<string, string> = {}, method = 'GET', port = port80): Promise<Reply> => send(port, host, path, headers, method);
  const backend = async (host: string, path = '/', headers: Record<string, string> = {}, method = 'GET'): Promise<string> => {
    const r = await get(host, path, headers, method);
    return r.status === 200 ? (r.json().name as string) : String(r.status);
  };
  const parentConditions = (ns: string, name: string): Condition[] => {
    const s = gw.gw.holder.current()!.gatewayApi.routes.find((r) => r.resource.metadata.namespace === ns && r.resource.metadata.name === name);
    return s?.parents[0]?.conditions ?? [];
  };
  const cond = (list: readonly Condition[], type: string): string => {
    const c = list.find((x) => x.type === type);
    return c ? `${c.status}/${c.reason}` : 'absent';
  };

  before(async () => {
    [v1, v2, v3, web] = await Promise.all([startUpstream('infra-backend-v1'), startUpstream('infra-backend-v2'), startUpstream('infra-backend-v3'), startUpstream('web-backend')]);
    gw = await startTestGateway(
      { 'base.yaml': baseYaml({ v1: v1.port, v2: v2.port, v3: v3.port, web: web.port }), 'routes.yaml': ROUTES, 'hostnames.yaml': HOSTNAME_INTERSECTION },
      { gateway: { ports: new Map([[80, 0], [8080, 0]]) } },
    );
    port80 = gw.gw.listenPorts.get(80)!;
    port8080 = gw.gw.listenPorts.get(8080)!;
  });
  after(async () => {
    await gw?.close();
    await Promise.all([v1, v2, v3, web].map((u) => u?.close()));
  });

  it('has no problems beyond the ones the cases ask for', () => {
    const problems = gw.gw.holder.current()!.problems.map((p) => `${p.resource} ${p.field}: ${p.message}`);
    const expected = ['not-allowed', 'reference-grant', 'section-missing', 'no-intersection', 'broken-backends'];
    assert.deepEqual(problems.filter((p) => !expected.some((e) => p.includes(`/${e} `))), []);
  });

  it('HTTPRouteExactPathMatching', async () => {
    assert.equal(await backend('exact.example', '/one'), 'infra-backend-v1');
    assert.equal(await backend('exact.example', '/two'), 'infra-backend-v2');
    assert.equal(await backend('exact.example', '/'), '404');
    assert.equal(await backend('exact.example', '/one/example'), '404');
    assert.equal(await backend('exact.example', '/two/'), '404');
  });

  it('HTTPRouteMatchingAcrossRoutes: precedence over every route of the host, PathPrefix by element', async () => {
    assert.equal(await backend('across.example', '/'), 'infra-backend-v1');
    assert.equal(await backend('across.example', '/v2'), 'infra-backend-v2');
    assert.equal(await backend('across.example', '/v2/example'), 'infra-backend-v2');
    assert.equal(await backend('across.example', '/v2/'), 'infra-backend-v2');
    assert.equal(await backend('across.example', '/v2example'), 'infra-backend-v1', '/v2 does not match /v2example');
    // An exact path beats a prefix with a header match, whatever the routes' ages.
    assert.equal(await backend('across.example', '/', { version: 'two' }), 'infra-backend-v2');
    assert.equal(await backend('across.example', '/x', { version: 'two' }), 'infra-backend-v3');
  });

  it('HTTPRouteHeaderMatching: names case-insensitive, more headers first, regex', async () => {
    assert.equal(await backend('headers.example', '/', { version: 'one' }), 'infra-backend-v1');
    assert.equal(await backend('headers.example', '/', { VERSION: 'two' }), 'infra-backend-v2');
    assert.equal(await backend('headers.example', '/', { version: 'two', color: 'orange' }), 'infra-backend-v1');
    assert.equal(await backend('headers.example', '/', { color: 'blue' }), 'infra-backend-v3');
    assert.equal(await backend('headers.example', '/', { color: 'blues' }), '404');
    assert.equal(await backend('headers.example', '/', { version: 'three' }), '404');
  });

  it('HTTPRouteQueryParamMatching', async () => {
    assert.equal(await backend('query.example', '/?animal=whale'), 'infra-backend-v1');
    assert.equal(await backend('query.example', '/?animal=dolphin'), 'infra-backend-v2');
    assert.equal(await backend('query.example', '/?animal=dolphin&color=blue'), 'infra-backend-v3');
    assert.equal(await backend('query.example', '/?animal=dolphin&color=red'), 'infra-backend-v2');
    assert.equal(await backend('query.example', '/?color=blue'), '404');
    // Query parameter names compare exactly.
    assert.equal(await backend('query.example', '/?Mixed=Case'), 'infra-backend-v1');
    assert.equal(await backend('query.example', '/?mixed=Case'), '404');
  });

  it('HTTPRouteMethodMatching', async () => {
    assert.equal(await backend('method.example', '/', {}, 'POST'), 'infra-backend-v1');
    assert.equal(await backend('method.example', '/', {}, 'GET'), 'infra-backend-v2');
    assert.equal(await backend('method.example', '/', {}, 'DELETE'), '404');
  });

  it('HTTPRouteRequestHeaderModifier and HTTPRouteResponseHeaderModifier', async () => {
    const r = await get('modifier.example', '/', { 'x-header-set': 'original', 'x-header-add': 'original', 'x-header-remove': 'gone' });
    assert.equal(r.status, 200);
    const seen = r.json<{ headers: Record<string, string> }>().headers;
    assert.equal(seen['x-header-set'], 'set-overwrites-values');
    assert.match(seen['x-header-add']!, /original.*add-appends-values/);
    assert.equal(seen['x-header-remove'], undefined);
    assert.equal(r.headers['x-response-set'], 'set');
    assert.equal(r.headers['x-upstream'], undefined);
  });

  it('HTTPRouteRedirect: scheme, hostname, status code, port, path', async () => {
    const loc = async (path: string): Promise<[number, string]> => {
      const r = await get('redirect.example', path);
      return [r.status, String(r.headers.location)];
    };
    assert.deepEqual(await loc('/scheme'), [302, 'https://redirect.example/scheme']);
    assert.deepEqual(await loc('/hostname'), [302, 'http://example.org/hostname']);
    assert.deepEqual(await loc('/status'), [301, 'http://redirect.example/status']);
    assert.deepEqual(await loc('/port'), [302, 'http://redirect.example:8083/port']);
    assert.deepEqual(await loc('/full/deep?x=1'), [302, 'http://redirect.example/full-path-replacement?x=1']);
    assert.deepEqual(await loc('/prefix/one'), [302, 'http://redirect.example/replacement-prefix/one']);
    assert.deepEqual(await loc('/prefix'), [302, 'http://redirect.example/replacement-prefix']);
  });

  it('HTTPRouteRewritePath and HTTPRouteRewriteHost', async () => {
    const upstreamUrl = async (path: string): Promise<string> => (await get('rewrite.example', path)).json().url as string;
    assert.equal(await upstreamUrl('/prefix/one/two'), '/one/two');
    assert.equal(await upstreamUrl('/prefix/one'), '/one');
    assert.equal(await upstreamUrl('/strip-prefix/three'), '/three');
    assert.equal(await upstreamUrl('/strip-prefix'), '/');
    assert.equal(await upstreamUrl('/full/one/two?q=1'), '/one?q=1');
    const host = (await get('rewrite.example', '/host')).json<{ headers: Record<string, string> }>().headers.host;
    assert.equal(host, 'rewritten.example');
  });

  it('HTTPRouteRequestMirror', async () => {
    const before = v2.seen.length;
    const r = await get('mirror.example', '/mirrored');
    assert.equal(r.json().name, 'infra-backend-v1');
    await eventually(async () => v2.seen.slice(before).some((e) => e.url === '/mirrored'));
  });

  it('HTTPRouteWeight: split by weight, weight 0 gets nothing', async () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 60; i++) {
      const name = await backend('weight.example', '/');
      counts.set(name, (counts.get(name) ?? 0) + 1);
    }
    assert.equal(counts.get('infra-backend-v3'), undefined);
    assert.ok((counts.get('infra-backend-v1') ?? 0) > (counts.get('infra-backend-v2') ?? 0), JSON.stringify([...counts]));
    assert.ok((counts.get('infra-backend-v2') ?? 0) > 0);
  });

  it('invalid backends answer 500 and set ResolvedRefs False', async () => {
    assert.equal(await backend('broken.example', '/unknown'), '500');
    assert.equal(await backend('broken.example', '/zero'), '500');
    assert.equal(await backend('broken.example', '/none'), '500');
    assert.equal(await backend('broken.example', '/kind'), '500');
    // Half the weight goes to a backend that does not exist: that half, and only that half, fails with 500.
    const seen = new Set<string>();
    for (let i = 0; i < 30; i++) seen.add(await backend('broken.example', '/partial'));
    assert.deepEqual([...seen].sort(), ['500', 'infra-backend-v1']);
    const c = parentConditions(INFRA, 'broken-backends');
    assert.equal(cond(c, 'Accepted'), 'True/Accepted');
    assert.equal(cond(c, 'ResolvedRefs'), 'False/BackendNotFound');
  });

  it('HTTPRouteCrossNamespace: admitted by from: All, refused by from: Same', async () => {
    assert.equal((await get('cross.example', '/', {}, 'GET', port8080)).json().name, 'web-backend');
    assert.equal(cond(parentConditions(WEB, 'cross-namespace'), 'Accepted'), 'True/Accepted');
    assert.equal((await get('notallowed.example', '/')).status, 404);
    assert.equal(cond(parentConditions(WEB, 'not-allowed'), 'Accepted'), 'False/NotAllowedByListeners');
  });

  it('HTTPRouteHostnameIntersection', async () => {
    assert.equal(await backend('very.specific.com', '/s1'), 'infra-backend-v1');
    assert.equal(await backend('non.matching.com', '/s1'), '404');
    assert.equal(await backend('foo.wildcard.io', '/s2'), 'infra-backend-v2');
    assert.equal(await backend('foo.bar.wildcard.io', '/s3'), 'infra-backend-v3');
    assert.equal(await backend('foo.wildcard.io', '/s3'), '404');
    assert.equal(await backend('wildcard.io', '/s2'), '404');
    // The most specific listener takes the request even with no route of its own.
    assert.equal(await backend('grpc-only.wildcard.io', '/s2'), '404');
    assert.equal(cond(parentConditions(INFRA, 'no-intersection'), 'Accepted'), 'False/NoMatchingListenerHostname');
    const gws = gw.gw.holder.current()!.gatewayApi.gateways;
    const hostnames = gws.find((g) => g.resource.metadata.name === 'hostnames')!;
    assert.deepEqual(hostnames.listeners.map((l) => [l.name, l.attachedRoutes]), [['specific', 1], ['wildcard', 2], ['grpc-only', 0]]);
  });

  it('GRPCRoute: service and method matches become paths, headers still match', async () => {
    const grpc = { 'content-type': 'application/grpc' };
    assert.equal(await backend('grpc.example', '/echo.Echo/Ping', grpc, 'POST'), 'infra-backend-v1');
    assert.equal(await backend('grpc.example', '/echo.Echo/Other', grpc, 'POST'), 'infra-backend-v2');
    assert.equal(await backend('grpc.example', '/other.Svc/Ping', { ...grpc, 'x-tenant': 'three' }, 'POST'), 'infra-backend-v3');
    // No route: a gRPC caller gets the local reply the gRPC way, UNIMPLEMENTED in an HTTP 200.
    const unrouted = await get('grpc.example', '/other.Svc/Ping', grpc, 'POST');
    assert.deepEqual([unrouted.status, unrouted.headers['grpc-status']], [200, '12']);
  });

  it('a parentRef naming no listener is NoMatchingParent', () => {
    assert.equal(cond(parentConditions(INFRA, 'section-missing'), 'Accepted'), 'False/NoMatchingParent');
  });

  it('HTTPRouteReferenceGrant: refused without a grant (500, RefNotPermitted), served once granted', async () => {
    assert.equal(await backend('grant.example', '/'), '500');
    assert.equal(cond(parentConditions(INFRA, 'reference-grant'), 'ResolvedRefs'), 'False/RefNotPermitted');
    await gw.write(
      'grant.yaml',
      `apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: infra-to-web, namespace: ${WEB}}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: ${INFRA}}]
  to: [{group: "", kind: Service, name: web-backend}]
`,
    );
    await eventually(async () => (await backend('grant.example', '/')) === 'web-backend');
    assert.equal(cond(parentConditions(INFRA, 'reference-grant'), 'ResolvedRefs'), 'True/ResolvedRefs');
  });

  it('Gateways and listeners report Accepted and Programmed', () => {
    for (const g of gw.gw.holder.current()!.gatewayApi.gateways) {
      assert.equal(cond(g.conditions, 'Accepted'), 'True/Accepted', g.resource.metadata.name);
      assert.equal(cond(g.conditions, 'Programmed'), 'True/Programmed');
      for (const l of g.listeners) assert.equal(cond(l.conditions, 'ResolvedRefs'), 'True/ResolvedRefs');
    }
    const classes = gw.gw.holder.current()!.gatewayApi.gatewayClasses;
    assert.deepEqual(classes.map((c) => cond(c.conditions, 'Accepted')), ['True/Accepted']);
  });
});
