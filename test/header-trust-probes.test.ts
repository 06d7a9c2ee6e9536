// Security probes of the headers an outside client may send a gateway, each compared with what an
// Istio gateway's Envoy does: headers only a proxy may set (x-forwarded-client-cert, x-envoy-*,
// x-forwarded-proto) never reach the upstream, a route or a policy as the client wrote them and
// change neither retries nor timeouts; x-forwarded-for and x-real-ip decide `remoteIpBlocks` only through the trusted hop
// count (gatewayTopology.numTrustedProxies); the headers a verified token writes
// (outputClaimToHeaders, outputPayloadToHeader) are what AuthorizationPolicy reads, never a
// client's own value of them, with a token or without.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { send, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { gatewayTopologyYaml, gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

const HOST = 'app.example.com';
const ISSUER = 'https://issuer.example';

/** Routes on headers only a proxy may set; no retries for /fail, a long timeout elsewhere: what a client's x-envoy-* headers would change. */
const ROUTES = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app, namespace: default}
spec:
  hosts: [${HOST}]
  gateways: [gw]
  http:
  - {match: [{headers: {x-envoy-internal: {exact: "true"}}}], directResponse: {status: 200, body: {string: internal-only}}}
  - {match: [{headers: {x-forwarded-client-cert: {regex: ".*ns/admin.*"}}}], directResponse: {status: 200, body: {string: admins-only}}}
  - {match: [{uri: {prefix: /fail}}], route: [{destination: {host: app}}], retries: {attempts: 0}}
  - {route: [{destination: {host: app}}], timeout: 20s}
`;

function securityYaml(jwk: JWK): string {
  return `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  jwtRules:
  - issuer: ${ISSUER}
    jwks: '${JSON.stringify({ keys: [jwk] })}'
    outputPayloadToHeader: x-jwt-payload
    outputClaimToHeaders: [{header: x-user-group, claim: group}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  rules:
  - to: [{operation: {notPaths: ["/admin*", "/claims*", "/payload*", "/office*"]}}]
  - to: [{operation: {paths: ["/admin*"]}}]
    when: [{key: "request.headers[x-user-group]", values: [admins]}]
  - to: [{operation: {paths: ["/claims*"]}}]
    when: [{key: "request.auth.claims[group]", values: [admins]}]
  - to: [{operation: {paths: ["/payload*"]}}]
    when: [{key: "request.headers[x-jwt-payload]", values: ["*"]}]
  - to: [{operation: {paths: ["/office*"]}}]
    from: [{source: {remoteIpBlocks: ["203.0.113.0/24"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: https-only, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  action: DENY
  rules:
  - to: [{operation: {paths: ["/secure*"]}}]
    when: [{key: "request.headers[x-forwarded-proto]", notValues: [https]}]
`;
}

describe('header trust at the gateway edge', () => {
  let app: Upstream;
  let gw: TestGateway;
  let trusting: TestGateway;
  let key: CryptoKey;

  const token = (claims: Record<string, unknown>): Promise<string> =>
    new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer(ISSUER).setSubject('alice').setIssuedAt().setExpirationTime('10m').sign(key);

  before(async () => {
    const pair = await generateKeyPair('RS256');
    key = pair.privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    app = await startUpstream('app', (req, res) => {
      if (req.url?.startsWith('/fail')) {
        res.writeHead(500, { 'content-length': '4' });
        res.end('fail');
        return true;
      }
      if (req.url?.startsWith('/peer-metadata')) {
        // What an Istio sidecar in front of the app answers with: its namespace, labels, node id and address.
        res.writeHead(200, { 'x-envoy-peer-metadata': 'CgtOQU1FU1BBQ0UKBHNob3A=', 'x-envoy-peer-metadata-id': 'sidecar~10.1.2.3~app-1.shop~shop.svc.cluster.local', 'x-app': 'kept' });
        res.end('ok');
        return true;
      }
      if (req.url?.startsWith('/slow')) {
        // Longer than the 1 ms the client asks for, far shorter than the route's 20 s.
        setTimeout(() => res.end('slow'), 200);
        return true;
      }
      return false;
    });
    const files = {
      'gateway.yaml': gatewayYaml([HOST]),
      'services.yaml': serviceYaml('app', [{ pod: 'app-1', port: app.port }]),
      'routes.yaml': ROUTES,
      'security.yaml': securityYaml(jwk),
    };
    gw = await startTestGateway(files);
    trusting = await startTestGateway({ ...files, 'mesh.yaml': gatewayTopologyYaml(1) });
  });
  after(async () => {
    await gw?.close();
    await trusting?.close();
    await app?.close();
  });

  const seenLast = () => app.seen[app.seen.length - 1]!;

  it('x-forwarded-client-cert, x-envoy-*, x-forwarded-proto from outside never reach the upstream as sent; x-forwarded-for gets the peer appended', async () => {
    const spoofed = {
      'x-forwarded-client-cert': 'By=spiffe://cluster.local/ns/default/sa/app;URI=spiffe://cluster.local/ns/admin/sa/root',
      'x-envoy-decorator-operation': 'spoofed',
      'x-envoy-original-path': '/admin',
      'x-envoy-peer-metadata': 'c3Bvb2Zl',
      'x-envoy-peer-metadata-id': 'sidecar~10.0.0.1~evil.admin~admin.svc.cluster.local',
      'x-envoy-internal': 'true',
      'x-envoy-external-address': '10.0.0.1',
      'x-envoy-attempt-count': '7',
      'x-forwarded-proto': 'https',
      'x-forwarded-for': '10.0.0.1',
      'x-real-ip': '10.0.0.1',
    };
    const r = await gw.get(HOST, '/headers', spoofed);
    assert.equal(r.status, 200, r.text);
    const h = seenLast().headers;
    assert.equal(h['x-forwarded-client-cert'], undefined);
    const own = new Set(['x-envoy-attempt-count', 'x-envoy-external-address']);
    for (const name of Object.keys(spoofed).filter((n) => n.startsWith('x-envoy-') && !own.has(n))) assert.equal(h[name], undefined, name);
    assert.equal(h['x-envoy-attempt-count'], '1');
    assert.equal(h['x-envoy-external-address'], '127.0.0.1', 'the peer, not the client\'s claim');
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.equal(h['x-forwarded-for'], '10.0.0.1,127.0.0.1');
    // x-real-ip is no header Envoy reads or writes: passed on, trusted by nothing.
    assert.equal(h['x-real-ip'], '10.0.0.1');
  });

  it('the forwarding headers an upstream sees, exactly as an Istio gateway writes them (use_remote_address, no internal addresses)', async () => {
    const forwarding = async (via: TestGateway, headers: Record<string, string> = {}) => {
      const r = await send(via.port, HOST, '/headers', headers);
      assert.equal(r.status, 200, r.text);
      const h = seenLast().headers;
      return { xff: h['x-forwarded-for'], external: h['x-envoy-external-address'], internal: h['x-envoy-internal'], proto: h['x-forwarded-proto'] };
    };
    // A direct client: the peer, appended to nothing, is the external address; never x-envoy-internal.
    assert.deepEqual(await forwarding(gw), { xff: '127.0.0.1', external: '127.0.0.1', internal: undefined, proto: 'http' });
    // Behind numTrustedProxies: 1: the right-most entry the proxy wrote is the client; the peer is appended after a bare comma.
    assert.deepEqual(await forwarding(trusting, { 'x-forwarded-for': '198.51.100.1, 203.0.113.7' }), { xff: '198.51.100.1, 203.0.113.7,127.0.0.1', external: '203.0.113.7', internal: undefined, proto: 'http' });
    // numTrustedProxies: 1 with no x-forwarded-for: Envoy falls back to the peer.
    assert.deepEqual(await forwarding(trusting), { xff: '127.0.0.1', external: '127.0.0.1', internal: undefined, proto: 'http' });
    // A client's own x-forwarded-for, nothing trusted: kept as written, the peer appended, the peer external.
    assert.deepEqual(await forwarding(gw, { 'x-forwarded-for': '198.51.100.1, 203.0.113.7' }), { xff: '198.51.100.1, 203.0.113.7,127.0.0.1', external: '127.0.0.1', internal: undefined, proto: 'http' });
  });

  it('routes and policies read the sanitized request: a DENY on x-forwarded-proto other than https, routes on x-envoy-internal or x-forwarded-client-cert', async () => {
    assert.equal((await gw.get(HOST, '/secure', { 'x-forwarded-proto': 'https' })).status, 403);
    const seen = app.seen.length;
    for (const h of <Array<Record<string, string>>>[{ 'x-envoy-internal': 'true' }, { 'x-forwarded-client-cert': 'URI=spiffe://cluster.local/ns/admin/sa/root' }]) {
      const r = await gw.get(HOST, '/anything', h);
      assert.equal(r.status, 200, JSON.stringify(h));
      assert.doesNotMatch(r.text, /only/, JSON.stringify(h));
    }
    assert.equal(app.seen.length - seen, 2);
  });

  it('an upstream sidecar\'s x-envoy-peer-metadata and -id never reach the client (Istio\'s peer metadata filter removes them)', async () => {
    const r = await send(gw.port, HOST, '/peer-metadata');
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-envoy-peer-metadata'], undefined);
    assert.equal(r.headers['x-envoy-peer-metadata-id'], undefined);
    assert.equal(r.headers['x-app'], 'kept');
  });

  it('x-envoy-retry-on / x-envoy-max-retries from outside cause no retry; x-envoy-upstream-rq-timeout-ms shortens no timeout', async () => {
    const n = app.seen.length;
    const r = await gw.get(HOST, '/fail', { 'x-envoy-retry-on': '5xx,retriable-status-codes', 'x-envoy-retriable-status-codes': '500', 'x-envoy-max-retries': '5' });
    assert.equal(r.status, 500);
    assert.equal(app.seen.length - n, 1);
    const slow = await gw.get(HOST, '/slow', { 'x-envoy-upstream-rq-timeout-ms': '1', 'x-envoy-upstream-rq-per-try-timeout-ms': '1', 'x-envoy-expected-rq-timeout-ms': '1' });
    assert.equal(slow.status, 200, slow.text);
    assert.equal(slow.text, 'slow');
  });

  it('remoteIpBlocks without trusted proxies: x-forwarded-for, x-real-ip and XFCC name no client; the peer (127.0.0.1) is not in the block', async () => {
    for (const headers of <Array<Record<string, string>>>[{ 'x-forwarded-for': '203.0.113.7' }, { 'x-real-ip': '203.0.113.7' }, { 'x-forwarded-for': '203.0.113.7, 203.0.113.8' }, { 'x-envoy-external-address': '203.0.113.7' }]) {
      assert.equal((await gw.get(HOST, '/office', headers)).status, 403, JSON.stringify(headers));
    }
  });

  it('remoteIpBlocks behind one trusted proxy: the right-most x-forwarded-for entry only; entries to its left, x-real-ip and non-addresses prove nothing', async () => {
    const get = (headers: Record<string, string>) => send(trusting.port, HOST, '/office', headers);
    assert.equal((await get({ 'x-forwarded-for': '203.0.113.7' })).status, 200);
    assert.equal((await get({ 'x-forwarded-for': '198.51.100.1, 203.0.113.7' })).status, 200);
    assert.equal((await get({ 'x-forwarded-for': '203.0.113.7, 198.51.100.1' })).status, 403);
    assert.equal((await get({ 'x-real-ip': '203.0.113.7' })).status, 403);
    for (const xff of ['203.0.113.7:1234', 'unknown', '203.0.113.7 x', '']) assert.equal((await get({ 'x-forwarded-for': xff })).status, 403, xff);
  });

  it('a client-sent outputClaimToHeaders header is not what authorization reads: without a token, and against a verified token saying otherwise', async () => {
    assert.equal((await gw.get(HOST, '/admin', { 'x-user-group': 'admins' })).status, 403);
    const users = await token({ group: 'users' });
    assert.equal((await gw.get(HOST, '/admin', { authorization: `Bearer ${users}`, 'x-user-group': 'admins' })).status, 403);
    const admins = await token({ group: 'admins' });
    const n = app.seen.length;
    const ok = await gw.get(HOST, '/admin', { authorization: `Bearer ${admins}`, 'x-user-group': 'users' });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(app.seen.slice(n)[0]?.headers['x-user-group'], 'admins');
  });

  it('a client-sent outputPayloadToHeader header is not what authorization reads, and claims are never taken from headers', async () => {
    const forged = Buffer.from(JSON.stringify({ iss: ISSUER, sub: 'alice', group: 'admins' })).toString('base64url');
    assert.equal((await gw.get(HOST, '/payload', { 'x-jwt-payload': forged })).status, 403);
    assert.equal((await gw.get(HOST, '/claims', { 'x-jwt-payload': forged, 'x-user-group': 'admins' })).status, 403);
    const admins = await token({ group: 'admins' });
    assert.equal((await gw.get(HOST, '/payload', { authorization: `Bearer ${admins}` })).status, 200);
    assert.equal((await gw.get(HOST, '/claims', { authorization: `Bearer ${admins}` })).status, 200);
  });
});
