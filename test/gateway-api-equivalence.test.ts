// The same traffic through an HTTPRoute and through the equivalent Istio Gateway + VirtualService
// gives the same answers: two real gateways in front of the same upstreams, every request sent to
// both, and status, backend, upstream path, upstream headers and redirect targets compared.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { eventually, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { serviceYaml } from './helpers/cluster-yaml.js';

const ISTIO = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [api.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: default}
spec:
  hosts: [api.example.com]
  gateways: [gw]
  http:
  - match: [{uri: {exact: /users}}]
    route: [{destination: {host: users, port: {number: 80}}}]
  - match: [{uri: {prefix: /users/}, headers: {x-beta: {exact: "1"}}}]
    headers: {request: {set: {x-route: beta}}}
    route: [{destination: {host: products, port: {number: 80}}}]
  - match: [{uri: {prefix: /users/}}]
    route: [{destination: {host: users, port: {number: 80}}}]
  - match: [{uri: {prefix: /old/}}]
    redirect: {uri: /new, redirectCode: 301}
  - match: [{uri: {prefix: /v1/}}]
    rewrite: {uri: /}
    route: [{destination: {host: products, port: {number: 80}}}]
  - match: [{uri: {prefix: /}, method: {exact: POST}}]
    route: [{destination: {host: products, port: {number: 80}}}]
  - route: [{destination: {host: users, port: {number: 80}}}]
`;

const GATEWAY_API = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: meshgate
  listeners:
  - {name: http, port: 80, protocol: HTTP, hostname: api.example.com}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: api, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: Exact, value: /users}}]
    backendRefs: [{name: users, port: 80}]
  - matches: [{path: {value: /users/}, headers: [{name: x-beta, value: "1"}]}]
    filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-route, value: beta}]}}]
    backendRefs: [{name: products, port: 80}]
  - matches: [{path: {value: /users/}}]
    backendRefs: [{name: users, port: 80}]
  - matches: [{path: {value: /old}}]
    filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplaceFullPath, replaceFullPath: /new}, statusCode: 301}}]
  - matches: [{path: {value: /v1}}]
    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}}]
    backendRefs: [{name: products, port: 80}]
  - matches: [{method: POST}]
    backendRefs: [{name: products, port: 80}]
  - backendRefs: [{name: users, port: 80}]
`;

describe('HTTPRoute and the equivalent VirtualService answer alike', () => {
  let users: Upstream, products: Upstream;
  let istio: TestGateway, gwapi: TestGateway;

  before(async () => {
    users = await startUpstream('users');
    products = await startUpstream('products');
    const services = serviceYaml('users', [{ pod: 'users-1', port: users.port }]) + '---\n' + serviceYaml('products', [{ pod: 'products-1', port: products.port }]);
    istio = await startTestGateway({ 'services.yaml': services, 'routes.yaml': ISTIO });
    gwapi = await startTestGateway({ 'services.yaml': services, 'routes.yaml': GATEWAY_API });
  });
  after(async () => {
    await istio?.close();
    await gwapi?.close();
    await users?.close();
    await products?.close();
  });

  const cases: Array<[string, string, Record<string, string>?]> = [
    ['GET', '/users'],
    ['GET', '/users/7'],
    ['GET', '/users/7', { 'x-beta': '1' }],
    ['GET', '/old/thing?q=1'],
    ['GET', '/v1/list?page=2'],
    ['POST', '/anything'],
    ['GET', '/'],
    ['GET', '/elsewhere/deep'],
  ];
  for (const [method, path, headers] of cases) {
    it(`${method} ${path}${headers ? ` ${JSON.stringify(headers)}` : ''}`, async () => {
      const answer = async (g: TestGateway): Promise<unknown> => {
        const r = await g.get('api.example.com', path, headers ?? {}, method);
        if (r.status !== 200) return { status: r.status, location: r.headers.location };
        const echo = r.json<{ name: string; url: string; headers: Record<string, string> }>();
        return { status: r.status, backend: echo.name, url: echo.url, route: echo.headers['x-route'] };
      };
      const [a, b] = [await answer(istio), await answer(gwapi)];
      assert.deepEqual(b, a);
    });
  }

  it('a RateLimitPolicy targets an HTTPRoute rule as it targets a VirtualService route', async () => {
    await gwapi.write(
      'limit.yaml',
      `apiVersion: meshgate.io/v1
kind: RateLimitPolicy
metadata: {name: old-paths, namespace: default}
spec:
  targetRef: {kind: HTTPRoute, name: api, route: legacy}
  limits: [{key: {clientIp: {}}, requests: 1, interval: 1h}]
`,
    );
    await gwapi.write('routes.yaml', GATEWAY_API.replace('  - matches: [{path: {value: /old}}]', '  - name: legacy\n    matches: [{path: {value: /old}}]'));
    await eventually(async () => (await gwapi.get('api.example.com', '/old/x')).status === 429);
    // Other rules of the route are not limited.
    assert.equal((await gwapi.get('api.example.com', '/users')).status, 200);
    assert.equal((await gwapi.get('api.example.com', '/users')).status, 200);
  });
});
