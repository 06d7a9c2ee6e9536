// Integration: a real gateway on loopback in front of real upstreams, driven over real sockets.
// Routing by host/path/header/query/method, weighted subsets, local replies with Istio's codes,
// rewrites, redirects, direct responses and header rules.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { closedPort, startUpstream, type Upstream } from './helpers/upstream.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';

describe('gateway HTTP routing', () => {
  let user: Upstream, v1: Upstream, v2: Upstream, hang: Upstream;
  let gw: TestGateway;
  let dead: number;

  before(async () => {
    user = await startUpstream('user-v1');
    v1 = await startUpstream('product-v1');
    v2 = await startUpstream('product-v2');
    hang = await startUpstream('hang', () => true); // never answers
    dead = await closedPort();
    gw = await startTestGateway({
      'gateway.yaml': gatewayYaml(['user.example.com', 'product.example.com', 'api.example.com', '*.wild.example.com', 'misc.example.com']),
      'services.yaml': [
        serviceYaml('user-service', [{ pod: 'user-1', port: user.port, labels: { version: 'v1' } }]),
        serviceYaml('product-service', [
          { pod: 'product-1', port: v1.port, labels: { version: 'v1' } },
          { pod: 'product-2', port: v2.port, labels: { version: 'v2' } },
        ]),
        serviceYaml('slow', [{ pod: 'slow-1', port: hang.port }]),
        serviceYaml('dead', [{ pod: 'dead-1', port: dead }]),
        serviceYaml('half-dead', [{ pod: 'hd-1', port: dead }, { pod: 'hd-2', port: user.port }]),
        serviceYaml('empty', []),
      ].join('---\n'),
      'rules.yaml': `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: product}
spec:
  host: product-service
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`,
      'vs.yaml': `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: user}
spec:
  hosts: [user.example.com]
  gateways: [gw]
  http:
  - route: [{destination: {host: user-service}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: product}
spec:
  hosts: [product.example.com]
  gateways: [default/gw]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: product-service, subset: v2}}]
  - route:
    - {destination: {host: product-service, subset: v1}, weight: 90}
    - {destination: {host: product-service, subset: v2}, weight: 10}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api}
spec:
  hosts: [api.example.com]
  gateways: [gw]
  http:
  - name: users
    match: [{uri: {prefix: /user}}]
    rewrite: {uri: /v1/users}
    route: [{destination: {host: user-service.default.svc.cluster.local, port: {number: 80}}}]
    headers:
      request: {set: {x-route: users}, add: {x-added: one}, remove: [x-remove-me]}
      response: {set: {x-answered-by: api}}
  - match: [{uri: {prefix: /product}, method: {exact: POST}}]
    route: [{destination: {host: product-service, subset: v2}}]
  - match: [{uri: {prefix: /product}}]
    route: [{destination: {host: product-service, subset: v1}, headers: {request: {set: {x-dest: v1}}}}]
  - match: [{uri: {regex: '/items/[0-9]+'}}]
    rewrite: {uriRegexRewrite: {match: '^/items/([0-9]+)$', rewrite: '/item?id=\\1'}}
    route: [{destination: {host: user-service}}]
  - match: [{queryParams: {debug: {exact: "1"}}}]
    directResponse: {status: 418, body: {string: "debugging"}}
  - match: [{uri: {exact: /old}}]
    redirect: {uri: /new}
  - match: [{uri: {exact: /moved}}]
    redirect: {uri: /there, authority: other.example.com, redirectCode: 308}
  - match: [{uri: {prefix: /v1/}}]
    redirect: {prefixRewrite: /v2/, redirectCode: 302}
  - match: [{uri: {prefix: /nosubset}}]
    route: [{destination: {host: product-service, subset: v9}}]
  - match: [{uri: {prefix: /empty}}]
    route: [{destination: {host: empty}}]
  - match: [{uri: {prefix: /dead}}]
    route: [{destination: {host: dead}}]
  - match: [{uri: {prefix: /half-dead}}]
    route: [{destination: {host: half-dead}}]
  - match: [{uri: {prefix: /slow}}]
    timeout: 0.2s
    route: [{destination: {host: slow}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: wild}
spec:
  hosts: ['*.wild.example.com']
  gateways: [gw]
  http:
  - route: [{destination: {host: user-service}}]
`,
      // Two VirtualServices for one host: the catch-all of the first must move after the second's match.
      'merge.yaml': `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: misc-a, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  hosts: [misc.example.com]
  gateways: [gw]
  http:
  - route: [{destination: {host: user-service}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: misc-b, creationTimestamp: "2024-01-02T00:00:00Z"}
spec:
  hosts: [misc.example.com]
  gateways: [gw]
  http:
  - match: [{uri: {prefix: /p}}]
    route: [{destination: {host: product-service, subset: v1}}]
`,
    });
  });

  after(async () => {
    await gw?.close();
    await Promise.all([user, v1, v2, hang].map((u) => u?.close()));
  });

  it('routes by host', async () => {
    const r = await gw.get('user.example.com', '/hello');
    assert.equal(r.status, 200);
    assert.equal(r.json().name, 'user-v1');
    assert.equal(r.json().url, '/hello');
  });

  it('matches the host case-insensitively and ignores the port', async () => {
    const r = await gw.get('User.Example.COM:8080', '/');
    assert.equal(r.json().name, 'user-v1');
  });

  it('matches wildcard hosts', async () => {
    assert.equal((await gw.get('a.b.wild.example.com')).json().name, 'user-v1');
    assert.equal((await gw.get('wild.example.com')).status, 404);
  });

  it('answers 404 with an empty body for an unknown host', async () => {
    const r = await gw.get('nobody.example.com');
    assert.equal(r.status, 404);
    assert.equal(r.text, '');
  });

  it('splits 90/10 between subsets by weight', async () => {
    const counts: Record<string, number> = {};
    for (let i = 0; i < 1000; i++) {
      const name = (await gw.get('product.example.com')).json().name as string;
      counts[name] = (counts[name] ?? 0) + 1;
    }
    assert.ok(Math.abs((counts['product-v1'] ?? 0) - 900) <= 30, JSON.stringify(counts));
    assert.ok(Math.abs((counts['product-v2'] ?? 0) - 100) <= 30, JSON.stringify(counts));
  });

  it('matches headers before the weighted default', async () => {
    for (let i = 0; i < 20; i++) assert.equal((await gw.get('product.example.com', '/', { 'end-user': 'jason' })).json().name, 'product-v2');
  });

  it('routes by uri prefix and method, first match wins', async () => {
    assert.equal((await gw.get('api.example.com', '/product/1')).json().name, 'product-v1');
    assert.equal((await gw.get('api.example.com', '/product/1', {}, 'POST', 'x')).json().name, 'product-v2');
  });

  it('rewrites the matched prefix and applies header rules', async () => {
    const r = await gw.get('api.example.com', '/user/42?x=1', { 'x-remove-me': 'yes' });
    const echo = r.json<{ url: string; headers: Record<string, string> }>();
    assert.equal(echo.url, '/v1/users/42?x=1');
    assert.equal(echo.headers['x-route'], 'users');
    assert.equal(echo.headers['x-added'], 'one');
    assert.equal(echo.headers['x-remove-me'], undefined);
    // The whole :path it replaced, query included, as Envoy's router keeps it.
    assert.equal(echo.headers['x-envoy-original-path'], '/user/42?x=1');
    assert.equal(r.headers['x-answered-by'], 'api');
  });

  it('applies destination-level request headers', async () => {
    const echo = (await gw.get('api.example.com', '/product')).json<{ headers: Record<string, string> }>();
    assert.equal(echo.headers['x-dest'], 'v1');
  });

  it('rewrites with a regex and RE2 groups', async () => {
    assert.equal((await gw.get('api.example.com', '/items/7')).json().url, '/item?id=7');
  });

  it('matches query parameters and answers directly', async () => {
    const r = await gw.get('api.example.com', '/anything?debug=1');
    assert.equal(r.status, 418);
    assert.equal(r.text, 'debugging');
  });

  it('redirects with 301 by default and keeps the query', async () => {
    const r = await gw.get('api.example.com', '/old?q=1');
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, 'http://api.example.com/new?q=1');
  });

  it('redirects to another authority with the configured code', async () => {
    const r = await gw.get('api.example.com', '/moved');
    assert.equal(r.status, 308);
    assert.equal(r.headers.location, 'http://other.example.com/there');
  });

  it('redirects with prefixRewrite: the matched prefix is replaced, the rest and the query kept', async () => {
    const r = await gw.get('api.example.com', '/v1/items/7?q=1');
    assert.equal(r.status, 302);
    assert.equal(r.headers.location, 'http://api.example.com/v2/items/7?q=1');
  });

  it('answers 503 for an unknown subset (NC)', async () => {
    const r = await gw.get('api.example.com', '/nosubset');
    assert.equal(r.status, 503);
  });

  it('answers 503 no healthy upstream for a service without endpoints (UH)', async () => {
    const r = await gw.get('api.example.com', '/empty');
    assert.equal(r.status, 503);
    assert.equal(r.text, 'no healthy upstream');
  });

  it('answers 503 upstream connect error when every attempt fails (UF, URX)', async () => {
    const r = await gw.get('api.example.com', '/dead');
    assert.equal(r.status, 503);
    assert.match(r.text, /^upstream connect error or disconnect\/reset before headers\. reset reason: connection failure/);
  });

  it('retries a connect failure on another endpoint (default retry policy)', async () => {
    for (let i = 0; i < 10; i++) assert.equal((await gw.get('api.example.com', '/half-dead')).status, 200);
  });

  it('answers 504 upstream request timeout after the route timeout (UT)', async () => {
    const r = await gw.get('api.example.com', '/slow');
    assert.equal(r.status, 504);
    assert.equal(r.text, 'upstream request timeout');
  });

  it('merges VirtualServices for one host with catch-all routes last', async () => {
    assert.equal((await gw.get('misc.example.com', '/p')).json().name, 'product-v1');
    assert.equal((await gw.get('misc.example.com', '/q')).json().name, 'user-v1');
  });

  it('sets x-forwarded-for, x-envoy-external-address, x-forwarded-proto and a generated x-request-id', async () => {
    const echo = (await gw.get('user.example.com', '/', { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https' })).json<{ headers: Record<string, string> }>();
    assert.equal(echo.headers['x-forwarded-for'], '203.0.113.9,127.0.0.1');
    assert.equal(echo.headers['x-envoy-external-address'], '127.0.0.1');
    assert.equal(echo.headers['x-forwarded-proto'], 'http');
    assert.match(echo.headers['x-request-id'] ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(echo.headers.host, 'user.example.com');
  });

  it('keeps an x-request-id the client sent', async () => {
    const echo = (await gw.get('user.example.com', '/', { 'x-request-id': 'abc-123' })).json<{ headers: Record<string, string> }>();
    assert.equal(echo.headers['x-request-id'], 'abc-123');
  });

  it('normalizes the path before routing and forwarding', async () => {
    const echo = (await gw.get('api.example.com', '/x/../product/%61')).json<{ name: string; url: string }>();
    assert.equal(echo.name, 'product-v1');
    assert.equal(echo.url, '/product/a');
  });

  it('refuses a path with %00', async () => {
    assert.equal((await gw.get('user.example.com', '/a%00b')).status, 400);
  });

  it('reports ready on the status port', async () => {
    const { request } = await import('undici');
    const r = await request(`http://127.0.0.1:${gw.gw.statusPort}/healthz/ready`);
    assert.equal(r.statusCode, 200);
    await r.body.dump();
  });
});
