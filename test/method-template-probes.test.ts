// Security probes of AuthorizationPolicy `methods` and path templates at a gateway, each compared
// with what Istio's Envoy does: HEAD against a rule on GET (Envoy's RBAC compares :method exactly),
// TRACE, OPTIONS and an unknown method against ALLOW and DENY rules, a method in lower case; `{*}`
// and `{**}` templates against paths holding `=`, `*`, `%2F`, `;` and dot segments. Raw sockets;
// the app records what reached it.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { authorizationPolicy, gatewayRouteYaml, gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { rawExchange } from './helpers/raw-http.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

/**
 * ro.example.com allows GET only (ALLOW); everywhere `/tpl/{*}/secret` and `/deep/{**}` are denied,
 * and DELETE (notMethods: a DENY for all but GET/POST on /api/*).
 */
const GATEWAY = '{matchLabels: {istio: ingressgateway}}';
const READ_ONLY = authorizationPolicy('read-only', 'istio-system', GATEWAY, `  rules:
  - to: [{operation: {hosts: [ro.example.com], methods: [GET]}}]
  - to: [{operation: {notHosts: [ro.example.com]}}]`);
const GUARD = authorizationPolicy('guard', 'istio-system', GATEWAY, `  action: DENY
  rules:
  - to: [{operation: {paths: ["/tpl/{*}/secret", "/deep/{**}", "/files/{**}.key"]}}]
  - to: [{operation: {paths: ["/api/*"], notMethods: [GET, POST]}}]
  - to: [{operation: {methods: [GET], paths: ["/get-denied"]}}]`);

describe('methods and path templates at the gateway', () => {
  let app: Upstream;
  let gw: TestGateway;
  before(async () => {
    app = await startUpstream('app');
    gw = await startTestGateway({ 'gateway.yaml': gatewayYaml(['*']), 'routes.yaml': gatewayRouteYaml(['*']), 'read-only.yaml': READ_ONLY, 'guard.yaml': GUARD, 'services.yaml': serviceYaml('app', [{ pod: 'app-1', port: app.port }]) });
  });
  after(async () => {
    await gw?.close();
    await app?.close();
  });

  const raw = (target: string, host = 'www.example.com', method = 'GET') =>
    rawExchange(gw.port, `${method} ${target} HTTP/1.1\r\nhost: ${host}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
  const reached = async (run: () => Promise<unknown>): Promise<string[]> => {
    const n = app.seen.length;
    await run();
    return app.seen.slice(n).map((e) => `${e.method} ${e.url}`);
  };

  it('ALLOW methods [GET]: HEAD, TRACE, OPTIONS, POST and WebDAV methods are not GET (403); an unknown method is 400 before any rule', async () => {
    assert.equal((await raw('/x', 'ro.example.com')).status, 200);
    const got = await reached(async () => {
      for (const m of ['HEAD', 'TRACE', 'OPTIONS', 'POST', 'PROPFIND']) assert.equal((await raw('/x', 'ro.example.com', m)).status, 403, m);
      // node's HTTP/1 parser knows a fixed set of methods; Envoy would take FOO and deny it by the rule.
      assert.equal((await raw('/x', 'ro.example.com', 'FOO')).status, 400);
    });
    assert.deepEqual(got, []);
  });

  it('DENY methods [GET] on a path: HEAD is another method to RBAC, as Envoy compares :method exactly, and is served', async () => {
    assert.equal((await raw('/get-denied')).status, 403);
    assert.deepEqual(await reached(() => raw('/get-denied', 'www.example.com', 'HEAD')), ['HEAD /get-denied']);
  });

  it('DENY notMethods [GET, POST] on /api/*: every other method is denied (lower case and unknown ones refused as 400)', async () => {
    const got = await reached(async () => {
      for (const m of ['PUT', 'DELETE', 'PATCH', 'HEAD', 'TRACE', 'OPTIONS', 'PROPFIND']) assert.equal((await raw('/api/x', 'www.example.com', m)).status, 403, m);
      for (const m of ['FOO', 'get', 'Post']) assert.equal((await raw('/api/x', 'www.example.com', m)).status, 400, m);
    });
    assert.deepEqual(got, []);
    assert.equal((await raw('/api/x', 'www.example.com', 'POST')).status, 200);
  });

  it('templates: {*} and {**} match segments holding = ; : @ %-escapes, after dot segments are resolved, as Envoy\'s pchar class', async () => {
    const denied = [
      '/tpl/a=b/secret', '/tpl/a;b/secret', '/tpl/a%2Fb/secret', '/tpl/x/../a/secret', '/tpl/%61/secret', '/tpl/a:b@c/secret', '/tpl/a/./secret',
      '/deep/', '/deep/a', '/deep/a=1/b', '/deep/a;x=1', '/deep/a/b/c', '/deep/./x', '/deep/a%2F..%2Fb', '/deep/a\\b', '/deep/%7e',
      '/files/a/b.key', '/files/a=b.key', '/x/../files/a.key',
    ];
    const got = await reached(async () => {
      for (const p of denied) assert.equal((await raw(p)).status, 403, p);
    });
    assert.deepEqual(got, []);
    // Outside the templates: fewer or more segments than {*} takes, no slash after /deep, another suffix;
    // `*`, `[` and `]` are in no template's class, in Envoy either (a DENY meant for every path below
    // /deep is written /deep/* as well).
    const passed = await reached(async () => {
      for (const p of ['/tpl/secret', '/tpl/a/b/secret', '/deep', '/files/a.keys', '/deep/a*b', '/deep/[x]']) assert.equal((await raw(p)).status, 200, p);
    });
    assert.deepEqual(passed, ['GET /tpl/secret', 'GET /tpl/a/b/secret', 'GET /deep', 'GET /files/a.keys', 'GET /deep/a*b', 'GET /deep/[x]']);
  });
});
