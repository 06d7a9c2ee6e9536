// Integration: AuthorizationPolicy `action: CUSTOM` at the gateway with envoyExtAuthzHttp providers
// from the mesh config, against a real authorizer on loopback. Only requests the CUSTOM rules match
// are checked; the authorizer's 200 lets them on with the headers it chose, any other status is the
// client's answer (status, body, headers), and an authorizer that cannot answer gives statusOnError
// (403 by default) or, with failOpen, lets the request on. The access log says UAEX.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accessLogLine, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { gatewayYaml, serviceYaml, gatewayRouteYaml } from './helpers/cluster-yaml.js';
import { closedPort, startUpstream, type Upstream } from './helpers/upstream.js';
import { DENY_BODY, gatewayCustomPolicy, meshConfigMap, startHttpAuthorizer, type TestAuthorizer } from './helpers/ext-authz.js';

const ROUTES = gatewayRouteYaml(['app.example.com']);

const custom = gatewayCustomPolicy;

const MESH = `    extensionProviders:
    - name: "sample-ext-authz-http"
      envoyExtAuthzHttp:
        service: "ext-authz.foo.svc.cluster.local"
        port: "8000"
        includeRequestHeadersInCheck: ["x-ext-authz", "x-custom-*"]
        includeAdditionalHeadersInCheck: {x-added: fixed}
        headersToUpstreamOnAllow: ["x-ext-authz-check-*"]
        headersToDownstreamOnAllow: ["set-cookie"]
        headersToDownstreamOnDeny: ["x-ext-authz-check-result"]
    - name: prefixed
      envoyExtAuthzHttp: {service: ext-authz.foo.svc.cluster.local, port: 8000, pathPrefix: /check, includeRequestHeadersInCheck: [x-ext-authz]}
    - name: closed
      envoyExtAuthzHttp: {service: ext-authz-down.foo.svc.cluster.local, port: 8000, statusOnError: "503"}
    - name: closed-open
      envoyExtAuthzHttp: {service: ext-authz-down.foo.svc.cluster.local, port: 8000, failOpen: true}
    - name: slow
      envoyExtAuthzHttp: {service: ext-authz.foo.svc.cluster.local, port: 8000, timeout: 0.3s, includeRequestHeadersInCheck: [x-ext-authz]}
    - name: all-headers-on-deny
      envoyExtAuthzHttp: {service: ext-authz.foo.svc.cluster.local, port: 8000, includeRequestHeadersInCheck: [x-ext-authz]}`;

describe('gateway: CUSTOM with an envoyExtAuthzHttp provider', () => {
  let up: Upstream;
  let authz: TestAuthorizer;
  let gw: TestGateway;
  let logDir: string;
  const log = (): string => join(logDir, 'access.log');

  before(async () => {
    logDir = await mkdtemp(join(tmpdir(), 'meshgate-extauthz-'));
    up = await startUpstream('app');
    authz = await startHttpAuthorizer();
    const down = await closedPort();
    gw = await startTestGateway(
      {
        'gateway.yaml': gatewayYaml(['app.example.com']),
        'services.yaml': serviceYaml('app', [{ pod: 'app-1', port: up.port }]),
        'ext-authz.yaml': serviceYaml('ext-authz', [{ pod: 'ext-authz-1', port: authz.port }], { namespace: 'foo', port: 8000 }),
        'ext-authz-down.yaml': serviceYaml('ext-authz-down', [{ pod: 'ext-authz-down-1', port: down }], { namespace: 'foo', port: 8000 }),
        'routes.yaml': ROUTES,
        'mesh.yaml': meshConfigMap(MESH),
        'p-headers.yaml': custom('ext-authz', 'sample-ext-authz-http', ['/headers']),
        'p-prefixed.yaml': custom('prefixed', 'prefixed', ['/prefixed/*']),
        'p-closed.yaml': custom('closed', 'closed', ['/closed/*']),
        'p-open.yaml': custom('open', 'closed-open', ['/open/*']),
        'p-slow.yaml': custom('slow', 'slow', ['/slow/*']),
        'p-all.yaml': custom('all', 'all-headers-on-deny', ['/all/*']),
        'p-missing.yaml': custom('missing', 'no-such-provider', ['/missing/*']),
      },
      { accessLog: log() },
    );
  });
  after(async () => {
    await gw?.close();
    await up?.close();
    await authz?.close();
    await rm(logDir, { recursive: true, force: true });
  });

  it('a denial is the authorizer\'s status and body, with the headers it may send, and never reaches the app', async () => {
    const seenBefore = up.seen.length;
    const r = await gw.get('app.example.com', '/headers', { 'x-ext-authz': 'deny', 'x-request-id': 'deny-1' });
    assert.equal(r.status, 403);
    assert.equal(r.text, DENY_BODY);
    assert.equal(r.headers['x-ext-authz-check-result'], 'denied');
    // Named in headersToDownstreamOnDeny, or one Envoy always passes (www-authenticate); nothing else.
    assert.equal(r.headers['www-authenticate'], 'Basic realm="sample"');
    assert.equal(r.headers['x-ext-authz-check-received'], undefined);
    assert.equal(up.seen.length, seenBefore);
    const line = await accessLogLine(log(), 'deny-1');
    assert.equal(line.response_flags, 'UAEX');
    assert.equal(line.meshgate_error_code, 'MESHGATE_ERR_EXT_AUTHZ_DENIED');
  });

  it('what the authorizer is sent: the method, the path with its query, Host, the named and fixed headers, no body', async () => {
    await gw.get('app.example.com', '/headers?a=1', { 'x-ext-authz': 'deny', 'x-custom-one': '1', authorization: 'Bearer t', 'x-other': 'no', 'x-added': 'from-client' }, 'POST', 'request body');
    const check = authz.seen.at(-1)!;
    assert.equal(check.method, 'POST');
    assert.equal(check.url, '/headers?a=1');
    assert.equal(check.headers.host, 'app.example.com');
    assert.equal(check.headers['x-ext-authz'], 'deny');
    assert.equal(check.headers['x-custom-one'], '1');
    assert.equal(check.headers.authorization, 'Bearer t');
    assert.equal(check.headers['x-other'], undefined);
    assert.equal(check.headers['x-added'], 'fixed');
    assert.equal(check.headers['content-length'], '0');
    assert.equal(check.body, '');
  });

  it('an allowed request reaches the app with headersToUpstreamOnAllow, and the client gets headersToDownstreamOnAllow', async () => {
    const r = await gw.get('app.example.com', '/headers', { 'x-ext-authz': 'allow' });
    assert.equal(r.status, 200, r.text);
    const echo = r.json<{ headers: Record<string, string> }>();
    assert.equal(echo.headers['x-ext-authz-check-result'], 'allowed');
    assert.equal(echo.headers['x-ext-authz-check-received'], 'GET /headers');
    assert.deepEqual(r.headers['set-cookie'], ['session=abc', 'theme=dark']);
  });

  it('requests the CUSTOM rules do not match are never sent to the authorizer', async () => {
    const checks = authz.seen.length;
    const r = await gw.get('app.example.com', '/ip', { 'x-ext-authz': 'deny' });
    assert.equal(r.status, 200);
    assert.equal(authz.seen.length, checks);
  });

  it('pathPrefix goes before the request path', async () => {
    assert.equal((await gw.get('app.example.com', '/prefixed/x?q=1', { 'x-ext-authz': 'allow' })).status, 200);
    assert.equal(authz.seen.at(-1)!.url, '/check/prefixed/x?q=1');
  });

  it('without headersToDownstreamOnDeny every header of the denial goes to the client', async () => {
    const r = await gw.get('app.example.com', '/all/x', { 'x-ext-authz': 'no' });
    assert.equal(r.status, 403);
    assert.equal(r.headers['x-ext-authz-check-received'], 'GET /all/x');
    assert.equal(r.headers['content-type'], 'text/plain');
  });

  it('an authorizer that cannot be reached answers statusOnError, with flag UAEX', async () => {
    const r = await gw.get('app.example.com', '/closed/x', { 'x-request-id': 'closed-1' });
    assert.equal(r.status, 503);
    assert.equal(r.text, '');
    const line = await accessLogLine(log(), 'closed-1');
    assert.equal(line.response_flags, 'UAEX');
    assert.equal(line.meshgate_error_code, 'MESHGATE_ERR_EXT_AUTHZ_ERROR');
  });

  it('failOpen lets the request on when the authorizer cannot be reached', async () => {
    const r = await gw.get('app.example.com', '/open/x');
    assert.equal(r.status, 200);
    assert.equal(r.json().url, '/open/x');
  });

  it('an authorizer past its timeout, or answering 5xx, is an error: 403 by default', async () => {
    const slow = await gw.get('app.example.com', '/slow/x', { 'x-ext-authz': 'hang' });
    assert.equal(slow.status, 403);
    assert.equal(slow.text, '');
    const crashed = await gw.get('app.example.com', '/slow/y', { 'x-ext-authz': 'crash' });
    assert.equal(crashed.status, 403);
    assert.equal(crashed.text, '', 'the 5xx body is not passed on');
  });

  it('a policy naming a provider the mesh config does not define denies: RBAC: access denied', async () => {
    const r = await gw.get('app.example.com', '/missing/x', { 'x-ext-authz': 'allow', 'x-request-id': 'missing-1' });
    assert.equal(r.status, 403);
    assert.equal(r.text, 'RBAC: access denied');
    const line = await accessLogLine(log(), 'missing-1');
    assert.match(String(line.response_code_details), /deny-due-to-bad-CUSTOM-action/);
  });
});
