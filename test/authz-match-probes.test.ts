// Security probes of AuthorizationPolicy matching at a gateway that the edge probes do not cover,
// each compared with what Istio's Envoy does: `notHosts` and `notPaths` (an exemption a bypass
// would widen) against a Host with a trailing dot, a port or upper case, and against paths with
// encoded slashes and backslashes, encoded dots, double encoding, `;` parameters, fragments and
// query tricks; methods in lower case over HTTP/1 and HTTP/2; an HTTP/2 `:authority` and `host`
// that disagree. Everything is sent as raw bytes or raw frames; the app records what reached it.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { send, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { h2Request, rawExchange } from './helpers/raw-http.js';
import { connect, type OutgoingHttpHeaders } from 'node:http2';
import { startUpstream, type Upstream } from './helpers/upstream.js';

/**
 * Any host to the app. `/admin*` only on admin.example.com (DENY with notHosts); on
 * static.example.com only `/public/*` (DENY with notPaths); DELETE nowhere.
 */
const CONFIG = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: all, namespace: default}
spec:
  hosts: ["*"]
  gateways: [gw]
  http: [{route: [{destination: {host: app}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: guard, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin*"], notHosts: [admin.example.com]}}]
  - to: [{operation: {hosts: [static.example.com], notPaths: ["/public/*"]}}]
  - to: [{operation: {methods: [DELETE]}}]
  - when: [{key: "request.headers[x-debug]", values: ["true"]}]
  - when: [{key: "request.headers[x-role]", values: ["admin*"]}]
`;

describe('authorization matching probes at the gateway (notHosts, notPaths, methods, HTTP/2 authority)', () => {
  let app: Upstream;
  let gw: TestGateway;
  before(async () => {
    app = await startUpstream('app');
    gw = await startTestGateway({ 'config.yaml': CONFIG, 'services.yaml': serviceYaml('app', [{ pod: 'app-1', port: app.port }]) });
  });
  after(async () => {
    await gw?.close();
    await app?.close();
  });

  const raw = (target: string, host: string, method = 'GET') => rawExchange(gw.port, `${method} ${target} HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n\r\n`);
  /** What reached the app while `run` ran. */
  const reached = async (run: () => Promise<unknown>): Promise<string[]> => {
    const n = app.seen.length;
    await run();
    return app.seen.slice(n).map((e) => `${e.method} ${e.headers.host} ${e.url}`);
  };

  it('notHosts: the exempt host in any case or with a trailing dot is exempt; with a port it is another authority, as in Istio (list host:*)', async () => {
    for (const host of ['admin.example.com', 'ADMIN.Example.COM', 'admin.example.com.']) assert.equal((await raw('/admin', host)).status, 200, host);
    for (const host of ['admin.example.com:80', 'admin.example.com.:80', 'www.example.com', 'admin.example.com.evil.com', 'evil-admin.example.com']) {
      assert.equal((await raw('/admin', host)).status, 403, host);
    }
  });

  it('notPaths: nothing outside /public/* is exempt, however the path is spelt', async () => {
    const denied = [
      '/public/../private', '/public/%2e%2e/private', '/public/%2E%2E/private', '/public/.%2e/private', '/public/./../private',
      '/public%2F..%2Fprivate', '/public%2f..%2fprivate', '/public%5C..%5Cprivate', '/public\\..\\private',
      '/public/..;/private', '/./public/../private', '/public', '/publicx/y', '/PUBLIC/x', '//public/x',
      '/private#/public/x', '/private?/public/x', '/private;/public/x',
    ];
    const app = await reached(async () => {
      for (const p of denied) assert.equal((await raw(p, 'static.example.com')).status === 200, false, p);
    });
    assert.deepEqual(app, []);
  });

  it('notPaths: what stays under /public/* is exempt, and reaches the app as the policy saw it', async () => {
    const seen = await reached(async () => {
      for (const p of ['/public/x', '/public/a/../b', '/public/x?/../../private', '/public/x#/../../private', '/public/%252e%252e/private', '/public/x;a=b']) {
        assert.equal((await raw(p, 'static.example.com')).status, 200, p);
      }
    });
    assert.deepEqual(seen.map((s) => s.split(' ')[2]), ['/public/x', '/public/b', '/public/x?/../../private', '/public/x', '/public/%252e%252e/private', '/public/x;a=b']);
  });

  it('methods: DELETE is denied; a lower-case `delete` is refused (400) over HTTP/1 and HTTP/2, never served as another method', async () => {
    const seen = await reached(async () => {
      assert.equal((await raw('/x', 'www.example.com', 'DELETE')).status, 403);
      assert.equal((await raw('/x', 'www.example.com', 'delete')).status, 400);
      assert.equal((await raw('/x', 'www.example.com', 'Delete')).status, 400);
      assert.equal(await h2Status({ ':method': 'delete', ':scheme': 'http', ':path': '/x', ':authority': 'www.example.com' }), 400);
    });
    assert.deepEqual(seen, []);
  });

  it('HTTP/2 `:authority` and `host` that disagree: the policy and the app see `:authority`', async () => {
    const seen = await reached(async () => {
      assert.equal(await h2Status({ ':method': 'GET', ':scheme': 'http', ':path': '/admin', ':authority': 'www.example.com', host: 'admin.example.com' }), 403);
      assert.equal(await h2Status({ ':method': 'GET', ':scheme': 'http', ':path': '/admin', ':authority': 'admin.example.com', host: 'www.example.com' }), 200);
      assert.equal(await h2Status({ ':method': 'GET', ':scheme': 'http', ':path': '/private', host: 'static.example.com' }), 403);
    });
    assert.deepEqual(seen, ['GET admin.example.com /admin']);
  });

  it('`when` on a header sent twice: the values joined by a comma are compared, as Envoy joins them, so an exact value no longer matches while a prefix does', async () => {
    const twice = (name: string, value: string) => rawExchange(gw.port, `GET /x HTTP/1.1\r\nhost: www.example.com\r\n${name}: ${value}\r\n${name}: ${value}\r\nconnection: close\r\n\r\n`);
    assert.equal((await send(gw.port, 'www.example.com', '/x', { 'x-debug': 'true' })).status, 403);
    const seen = await reached(async () => {
      assert.equal((await twice('x-role', 'admin')).status, 403);
      // Envoy compares `true,true` and passes it too: a DENY on an exact header value is written as a prefix (`true*`) or as an ALLOW.
      assert.equal((await twice('x-debug', 'true')).status, 200);
    });
    assert.deepEqual(seen, ['GET www.example.com /x']);
  });

  it('methods: POST with X-HTTP-Method-Override: DELETE is a POST to the policy, and the override reaches the app, as in Envoy', async () => {
    const n = app.seen.length;
    assert.equal((await send(gw.port, 'www.example.com', '/x', { 'x-http-method-override': 'DELETE' }, 'POST', '')).status, 200);
    assert.equal(app.seen[n]?.headers['x-http-method-override'], 'DELETE');
  });

  it('the gateway keeps serving after every probe', async () => {
    assert.equal((await send(gw.port, 'www.example.com', '/ok')).status, 200);
  });

  /** One h2c request with exactly these fields (node:http2 sends a lower-case method and `host` as given): its :status, 0 when reset. */
  async function h2Status(headers: OutgoingHttpHeaders): Promise<number> {
    const session = connect(`http://127.0.0.1:${gw.port}`);
    try {
      return (await h2Request(session, headers)).status;
    } finally {
      session.close();
    }
  }
});
