// Integration: includeRequestBodyInCheck of envoyExtAuthzHttp and envoyExtAuthzGrpc providers at the
// gateway, as Envoy's with_request_body: the body (up to maxRequestBytes) goes with the check, and the
// authorizers decide on it (a body holding `deny-me` is denied); a longer body is 413 unless
// allowPartialMessage, which sends its first maxRequestBytes; the upstream still gets the whole body,
// byte for byte, after it was read for the check. HTTP/1 (with a length and chunked) and HTTP/2.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect as h2Connect } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { chunked, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { gatewayYaml, serviceYaml, gatewayRouteYaml } from './helpers/cluster-yaml.js';
import { BODY_DENIED, gatewayCustomPolicy, meshConfigMap, startGrpcAuthorizer, startHttpAuthorizer, type TestAuthorizer, type TestGrpcAuthorizer } from './helpers/ext-authz.js';
import { rawExchange } from './helpers/raw-http.js';
import { parseConfigText } from '../src/core/config/load.js';
import { validateAll } from '../src/core/config/validate.js';

const MESH = `    extensionProviders:
    - name: whole
      envoyExtAuthzHttp:
        service: ext-authz.foo.svc.cluster.local
        port: 8000
        includeRequestHeadersInCheck: [x-ext-authz, x-envoy-auth-partial-body]
        includeRequestBodyInCheck: {maxRequestBytes: 16}
    - name: partial
      envoyExtAuthzHttp:
        service: ext-authz.foo.svc.cluster.local
        port: 8000
        includeRequestHeadersInCheck: [x-ext-authz, x-envoy-auth-partial-body]
        includeRequestBodyInCheck: {maxRequestBytes: 16, allowPartialMessage: true}
    - name: open-whole
      envoyExtAuthzHttp:
        service: ext-authz.foo.svc.cluster.local
        port: 8000
        failOpen: true
        includeRequestBodyInCheck: {maxRequestBytes: 16}
    - name: grpc
      envoyExtAuthzGrpc:
        service: ext-authz-grpc.foo.svc.cluster.local
        port: 9000
        includeRequestBodyInCheck: {maxRequestBytes: 16, allowPartialMessage: true}
    - name: grpc-bytes
      envoyExtAuthzGrpc:
        service: ext-authz-grpc.foo.svc.cluster.local
        port: 9000
        includeRequestBodyInCheck: {maxRequestBytes: 16, packAsBytes: true}`;

const custom = (provider: string): string => gatewayCustomPolicy(provider, provider, [`/${provider}/*`]);

describe('gateway: CUSTOM providers with includeRequestBodyInCheck', () => {
  let authz: TestAuthorizer;
  let grpcAuthz: TestGrpcAuthorizer;
  let gw: TestGateway;
  let app: Server;
  /** Bodies the app received, in order. */
  const bodies: string[] = [];

  before(async () => {
    app = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        bodies.push(Buffer.concat(chunks).toString());
        res.end('ok');
      });
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    authz = await startHttpAuthorizer();
    grpcAuthz = await startGrpcAuthorizer();
    gw = await startTestGateway({
      'gateway.yaml': gatewayYaml(['app.example.com']),
      'services.yaml': serviceYaml('app', [{ pod: 'app-1', port: (app.address() as AddressInfo).port }]),
      'ext-authz.yaml': serviceYaml('ext-authz', [{ pod: 'ext-authz-1', port: authz.port }], { namespace: 'foo', port: 8000 }),
      'ext-authz-grpc.yaml': serviceYaml('ext-authz-grpc', [{ pod: 'ext-authz-grpc-1', port: grpcAuthz.port }], { namespace: 'foo', port: 9000, portName: 'grpc' }),
      'routes.yaml': gatewayRouteYaml(['app.example.com']),
      'mesh.yaml': meshConfigMap(MESH),
      'policies.yaml': ['whole', 'partial', 'open-whole', 'grpc', 'grpc-bytes'].map(custom).join('---\n'),
    });
  });
  after(async () => {
    await gw?.close();
    await authz?.close();
    await grpcAuthz?.close();
    await new Promise((r) => app?.close(r));
  });

  const post = (path: string, body: string | ReturnType<typeof chunked>, allow = true) =>
    gw.get('app.example.com', path, allow ? { 'x-ext-authz': 'allow' } : {}, 'POST', body);

  it('HTTP provider: the body is the check\'s body; the authorizer decides on it; the app gets the body whole', async () => {
    const checks = authz.seen.length;
    const apps = bodies.length;
    assert.equal((await post('/whole/a', 'hello body')).status, 200);
    assert.equal((await post('/whole/a', chunked('chunked body'))).status, 200);
    const denied = await post('/whole/a', `x ${BODY_DENIED}`);
    assert.equal(denied.status, 403);
    assert.deepEqual(authz.seen.slice(checks).map((c) => [c.body, c.headers['content-length'], c.headers['x-envoy-auth-partial-body']]), [
      ['hello body', '10', 'false'],
      ['chunked body', '12', 'false'],
      [`x ${BODY_DENIED}`, '9', 'false'],
    ]);
    assert.deepEqual(bodies.slice(apps), ['hello body', 'chunked body']);
    // Without a body the check has none.
    assert.equal((await gw.get('app.example.com', '/whole/a', { 'x-ext-authz': 'allow' })).status, 200);
    assert.equal(authz.seen.at(-1)!.body, '');
    assert.equal(authz.seen.at(-1)!.headers['x-envoy-auth-partial-body'], undefined);
  });

  it('a body longer than maxRequestBytes is 413 without allowPartialMessage (failOpen or not), the authorizer and the app never asked', async () => {
    const checks = authz.seen.length;
    const apps = bodies.length;
    for (const path of ['/whole/a', '/open-whole/a']) {
      const r = await post(path, '0123456789abcdefX');
      assert.equal(r.status, 413, path);
      assert.equal(r.text, 'Payload Too Large');
      assert.equal((await post(path, chunked('0123456789abcdefX'))).status, 413, `${path} chunked`);
    }
    // Exactly maxRequestBytes fits.
    assert.equal((await post('/whole/a', '0123456789abcdef')).status, 200);
    assert.equal(authz.seen.length, checks + 1);
    assert.deepEqual(bodies.slice(apps), ['0123456789abcdef']);
  });

  it('allowPartialMessage: the first maxRequestBytes are checked (x-envoy-auth-partial-body: true), the app gets all of it', async () => {
    const checks = authz.seen.length;
    const apps = bodies.length;
    const long = `0123456789abcdef${BODY_DENIED} and more`;
    assert.equal((await post('/partial/a', long)).status, 200, 'what decides is past the first 16 bytes');
    assert.equal((await post('/partial/a', chunked(long))).status, 200);
    assert.equal((await post('/partial/a', `${BODY_DENIED} first`)).status, 403);
    assert.deepEqual(authz.seen.slice(checks).map((c) => [c.body, c.headers['x-envoy-auth-partial-body']]), [
      ['0123456789abcdef', 'true'],
      ['0123456789abcdef', 'true'],
      [`${BODY_DENIED} first`, 'false'],
    ]);
    assert.deepEqual(bodies.slice(apps), [long, long]);
  });

  it('a denial after reading only the start of a long body: the rest is read and dropped, and the HTTP/1 connection serves its next request', async () => {
    const body = `${BODY_DENIED}${'x'.repeat(200_000)}`;
    const first = `POST /partial/a HTTP/1.1\r\nhost: app.example.com\r\nx-ext-authz: allow\r\ncontent-length: ${body.length}\r\n\r\n`;
    const second = 'GET /ok HTTP/1.1\r\nhost: app.example.com\r\nconnection: close\r\n\r\n';
    const r = await rawExchange(gw.port, first, { more: `${body}${second}` });
    assert.deepEqual(r.text.match(/HTTP\/1\.1 \d+/g), ['HTTP/1.1 403', 'HTTP/1.1 200']);
  });

  it('gRPC provider: attributes.request.http.body, or raw_body with packAsBytes; the partial-body header with the others', async () => {
    const checks = grpcAuthz.seen.length;
    const apps = bodies.length;
    assert.equal((await post('/grpc/a', 'grpc body')).status, 200);
    assert.equal((await post('/grpc/a', `0123456789abcdef${BODY_DENIED}`)).status, 200);
    assert.equal((await post('/grpc/a', BODY_DENIED)).status, 403);
    assert.equal((await post('/grpc-bytes/a', 'raw body')).status, 200);
    assert.equal((await post('/grpc-bytes/a', BODY_DENIED)).status, 403);
    assert.equal((await post('/grpc-bytes/a', '0123456789abcdefX')).status, 413);
    const seen = grpcAuthz.seen.slice(checks).map((c) => c.attributes.request!.http!);
    assert.deepEqual(seen.map((h) => [h.body, h.rawBody.toString(), h.headers['x-envoy-auth-partial-body']]), [
      ['grpc body', '', 'false'],
      ['0123456789abcdef', '', 'true'],
      [BODY_DENIED, '', 'false'],
      ['', 'raw body', 'false'],
      ['', BODY_DENIED, 'false'],
    ]);
    assert.deepEqual(bodies.slice(apps), ['grpc body', `0123456789abcdef${BODY_DENIED}`, 'raw body']);
  });

  it('HTTP/2 (h2c prior knowledge): the body reaches the authorizer and then the app', async () => {
    const checks = authz.seen.length;
    const apps = bodies.length;
    const session = h2Connect(`http://127.0.0.1:${gw.port}`);
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const s = session.request({ ':method': 'POST', ':path': '/whole/h2', ':authority': 'app.example.com', 'x-ext-authz': 'allow' });
        s.on('response', (h) => resolve(Number(h[':status'])));
        s.on('error', reject);
        s.resume();
        s.write('h2 ');
        s.end('body');
      });
      assert.equal(status, 200);
    } finally {
      session.close();
    }
    assert.equal(authz.seen.at(-1)!.body, 'h2 body');
    assert.equal(authz.seen.length, checks + 1);
    assert.deepEqual(bodies.slice(apps), ['h2 body']);
  });

  it('validation: no warning that the body is not sent; maxRequestBytes unset or 0 makes the provider deny', () => {
    const text = meshConfigMap(`    extensionProviders:
    - name: ok
      envoyExtAuthzHttp: {service: a.foo.svc.cluster.local, port: 8000, includeRequestBodyInCheck: {maxRequestBytes: 10}}
    - name: zero
      envoyExtAuthzHttp: {service: a.foo.svc.cluster.local, port: 8000, includeRequestBodyInCheck: {allowPartialMessage: true}}`);
    const { problems } = validateAll(parseConfigText(text, 'mesh.yaml').resources);
    assert.deepEqual(problems.map((p) => [p.severity, p.field]), [['warning', 'data.mesh.extensionProviders[1].envoyExtAuthzHttp.includeRequestBodyInCheck.maxRequestBytes']]);
    assert.match(problems[0]!.message, /deny every request/);
  });
});
