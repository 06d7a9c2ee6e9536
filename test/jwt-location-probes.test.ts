// Security probes of where RequestAuthentication reads tokens and what it hands on, at a gateway,
// each compared with what Istio's Envoy (jwt_authn) does: `fromHeaders` with a prefix (the token
// without it, after other text, in lower case), `fromParams`, a good token beside a forged one in
// another place, a token of one issuer in another issuer's place, key ids that name the wrong key or
// none, a 40 KB token, `requestPrincipals` patterns (`iss/*`, `*/sub`, `*`) and `notRequestPrincipals`,
// `outputPayloadToHeader`, and `forwardOriginalToken` (the header that carried the token is gone
// upstream unless it says true; a query parameter stays).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { authorizationPolicy, gatewayRouteYaml, gatewayYaml, requestAuthentication, serviceYaml } from './helpers/cluster-yaml.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { h2Request, rawExchange } from './helpers/raw-http.js';
import { connect } from 'node:http2';

const HOST = 'app.example.com';
const ISS = 'https://a.example';
const ISS_B = 'https://b.example';
const GATEWAY = '{matchLabels: {istio: ingressgateway}}';

describe('token locations, key ids and principals at the gateway', () => {
  let app: Upstream;
  let gw: TestGateway;
  let key1: CryptoKey;
  let key2: CryptoKey;

  before(async () => {
    const p1 = await generateKeyPair('RS256', { extractable: true });
    const p2 = await generateKeyPair('RS256', { extractable: true });
    key1 = p1.privateKey;
    key2 = p2.privateKey;
    const jwks: JWK[] = [
      { ...(await exportJWK(p1.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' },
      { ...(await exportJWK(p2.publicKey)), kid: 'k2', alg: 'RS256', use: 'sig' },
    ];
    const set = JSON.stringify({ keys: jwks });
    app = await startUpstream('app');
    gw = await startTestGateway({
      'gateway.yaml': gatewayYaml([HOST]),
      'services.yaml': serviceYaml('app', [{ pod: 'app-1', port: app.port }]),
      'routes.yaml': gatewayRouteYaml([HOST]),
      'jwt.yaml': requestAuthentication('jwt', 'istio-system', GATEWAY, `  - issuer: ${ISS}
    jwks: '${set}'
    fromHeaders: [{name: x-jwt, prefix: "Token "}]
    fromParams: [tok]
    fromCookies: [session]
    outputPayloadToHeader: x-jwt-payload
    outputClaimToHeaders: [{header: x-name, claim: name}]
  - issuer: ${ISS_B}
    jwks: '${set}'
    forwardOriginalToken: true`),
      'allow.yaml': authorizationPolicy('who', 'istio-system', GATEWAY, `  rules:
  - to: [{operation: {notPaths: ["/a/*", "/alice/*", "/any/*"]}}]
  - to: [{operation: {paths: ["/a/*"]}}]
    from: [{source: {requestPrincipals: ["${ISS}/*"]}}]
  - to: [{operation: {paths: ["/alice/*"]}}]
    from: [{source: {requestPrincipals: ["*/alice"]}}]
  - to: [{operation: {paths: ["/any/*"]}}]
    from: [{source: {requestPrincipals: ["*"]}}]`),
      'deny.yaml': authorizationPolicy('admin', 'istio-system', GATEWAY, `  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin*"]}}]
    from: [{source: {notRequestPrincipals: ["${ISS}/root"]}}]`),
    });
  });
  after(async () => {
    await gw?.close();
    await app?.close();
  });

  const token = (iss: string, sub: string, key = key1, kid: string | null = 'k1'): Promise<string> =>
    new SignJWT({ role: 'user' })
      .setProtectedHeader(kid === null ? { alg: 'RS256' } : { alg: 'RS256', kid })
      .setIssuer(iss).setSubject(sub).setExpirationTime('10m').sign(key);
  /** Status, and the request the app saw (undefined when none reached it). */
  const call = async (path: string, headers: Record<string, string> = {}) => {
    const n = app.seen.length;
    const r = await gw.get(HOST, path, headers);
    return { status: r.status, text: r.text, seen: app.seen.length > n ? app.seen[n] : undefined };
  };

  it('fromHeaders prefix: the token after "Token " verifies, found anywhere in the value and in any case; without it, no token', async () => {
    const t = await token(ISS, 'alice');
    const forged = `${t.slice(0, -4)}AAAA`;
    assert.equal((await call('/a/x', { 'x-jwt': `Token ${t}` })).status, 200);
    // Envoy finds the prefix anywhere in the value (two header lines are one, joined by a comma).
    assert.equal((await call('/a/x', { 'x-jwt': `Basic zz, Token ${t}` })).status, 200);
    for (const value of [`Basic zz, Token ${forged}`, `token ${forged}`, `Token ${t}, Token ${forged}`, 'Token !!']) {
      const r = await call('/ok', { 'x-jwt': value });
      assert.equal(r.status, 401, value);
      assert.equal(r.seen, undefined, value);
    }
    // No prefix at all: no token for this location, as in Envoy (the header is the app's to read).
    const bare = await call('/a/x', { 'x-jwt': t });
    assert.equal(bare.status, 403);
  });

  it('fromCookies: the cookie\'s token verifies; a forged one is 401 wherever it sits among the cookies', async () => {
    const t = await token(ISS, 'alice');
    const forged = `${t.slice(0, -4)}AAAA`;
    assert.equal((await call('/a/x', { cookie: `theme=dark; session=${t}` })).status, 200);
    assert.equal((await call('/a/x', { cookie: `session="${t}"` })).status, 200);
    for (const cookie of [`session=${forged}`, `a=b; session=${forged}; c=d`, `session=${t}; session=${forged}`]) {
      const r = await call('/ok', { cookie });
      assert.equal(r.status, 401, cookie);
      assert.equal(r.seen, undefined, cookie);
    }
    assert.equal((await call('/a/x', { cookie: `xsession=${t}` })).status, 403);
  });

  it('a good token and a forged one in another place: 401, whichever place holds which', async () => {
    const good = await token(ISS, 'alice');
    const forged = `${good.slice(0, -4)}AAAA`;
    for (const [path, headers] of [
      [`/a/x?tok=${forged}`, { 'x-jwt': `Token ${good}` }],
      [`/a/x?tok=${good}`, { 'x-jwt': `Token ${forged}` }],
      [`/a/x?tok=${good}&tok=${forged}`, {}],
      ['/a/x', { 'x-jwt': `Token ${good}`, authorization: `Bearer ${forged}` }],
      [`/a/x?access_token=${forged}`, { 'x-jwt': `Token ${good}` }],
    ] as const) {
      const r = await call(path, headers);
      assert.equal(r.status, 401, `${path} ${JSON.stringify(Object.keys(headers))}`);
      assert.equal(r.seen, undefined);
    }
  });

  it('a token of one issuer in the other issuer\'s place: 401 Jwt issuer is not configured', async () => {
    for (const [path, headers] of [
      ['/any/x', { authorization: `Bearer ${await token(ISS, 'alice')}` }],
      [`/any/x?access_token=${await token(ISS, 'alice')}`, {}],
      ['/any/x', { 'x-jwt': `Token ${await token(ISS_B, 'alice')}` }],
    ] as const) {
      assert.deepEqual(await call(path, headers), { status: 401, text: 'Jwt issuer is not configured', seen: undefined }, path);
    }
  });

  it('key ids: the kid of the other key or an unknown kid is 401; no kid tries every key, as Envoy', async () => {
    const wrong = await call('/any/x', { 'x-jwt': `Token ${await token(ISS, 'alice', key2, 'k1')}` });
    assert.deepEqual([wrong.status, wrong.text], [401, 'Jwt verification fails']);
    const unknown = await call('/any/x', { 'x-jwt': `Token ${await token(ISS, 'alice', key1, 'k9')}` });
    assert.deepEqual([unknown.status, unknown.text], [401, "Jwks doesn't have key to match kid or alg from Jwt"]);
    for (const key of [key1, key2]) assert.equal((await call('/any/x', { 'x-jwt': `Token ${await token(ISS, 'alice', key, null)}` })).status, 200);
    const other = (await generateKeyPair('RS256')).privateKey;
    const stranger = await call('/any/x', { 'x-jwt': `Token ${await token(ISS, 'alice', other, null)}` });
    assert.deepEqual([stranger.status, stranger.text], [401, 'Jwt verification fails']);
    const expired = await new SignJWT({}).setProtectedHeader({ alg: 'RS256' }).setIssuer(ISS).setSubject('a').setExpirationTime(Math.floor(Date.now() / 1000) - 60).sign(key2);
    assert.equal((await call('/any/x', { 'x-jwt': `Token ${expired}` })).text, 'Jwt is expired');
  });

  it('large tokens: 40 KB of garbage is 401; a valid 10 KB token is verified and its payload passed on', async () => {
    const big = `${'a'.repeat(20000)}.${'b'.repeat(20000)}.c`;
    const r = await call('/any/x', { 'x-jwt': `Token ${big}` });
    assert.deepEqual([r.status, r.seen], [401, undefined]);
    const t = await new SignJWT({ pad: 'x'.repeat(7000) }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer(ISS).setSubject('alice').setExpirationTime('10m').sign(key1);
    const ok = await call('/any/x', { 'x-jwt': `Token ${t}` });
    assert.equal(ok.status, 200);
    assert.equal(JSON.parse(Buffer.from(String(ok.seen?.headers['x-jwt-payload']), 'base64url').toString()).pad.length, 7000);
  });

  it('requestPrincipals patterns (iss/*, */sub, *) and notRequestPrincipals match the principal iss/sub as a string, as Istio', async () => {
    const got: string[] = [];
    for (const [iss, sub, path] of [
      [ISS_B, 'alice', '/alice/x'], [ISS_B, 'malice', '/alice/x'], [ISS_B, 'x/alice', '/alice/x'], [ISS_B, 'alice', '/a/x'],
      [ISS, 'root', '/admin'], [ISS, 'rooted', '/admin'], [ISS_B, 'root', '/admin'], [ISS, '', '/any/x'],
    ] as const) {
      const t = await token(iss, sub);
      const r = await call(path, iss === ISS ? { 'x-jwt': `Token ${t}` } : { authorization: `Bearer ${t}` });
      got.push(`${iss}/${sub} ${path} ${r.status}`);
    }
    got.push(`(none) /admin ${(await call('/admin')).status}`, `(none) /any/x ${(await call('/any/x')).status}`);
    assert.deepEqual(got, [
      `${ISS_B}/alice /alice/x 200`, `${ISS_B}/malice /alice/x 403`, `${ISS_B}/x/alice /alice/x 200`, `${ISS_B}/alice /a/x 403`,
      `${ISS}/root /admin 200`, `${ISS}/rooted /admin 403`, `${ISS_B}/root /admin 403`, `${ISS}/ /any/x 200`,
      '(none) /admin 403', '(none) /any/x 403',
    ]);
  });

  it('upstream: the payload header is the token\'s (a client\'s is replaced), the token header is gone unless forwardOriginalToken, a parameter stays', async () => {
    const t = await token(ISS, 'alice');
    const r = await call(`/a/x?tok=${t}`, { 'x-jwt-payload': 'forged', x_jwt_payload: 'forged' });
    assert.equal(r.seen?.headers.x_jwt_payload, undefined);
    assert.equal(r.seen?.url, `/a/x?tok=${t}`);
    assert.equal(JSON.parse(Buffer.from(String(r.seen?.headers['x-jwt-payload']), 'base64url').toString()).sub, 'alice');
    const r2 = await call('/a/x', { 'x-jwt': `Token ${t}` });
    assert.equal(r2.seen?.headers['x-jwt'], undefined);
    const tb = await token(ISS_B, 'alice');
    const r3 = await call('/any/x', { authorization: `Bearer ${tb}` });
    assert.equal(r3.seen?.headers.authorization, `Bearer ${tb}`);
  });

  it('outputClaimToHeaders: a claim with CR, LF or NUL writes no header (no injection, no 502); non-ASCII goes as its UTF-8 bytes', async () => {
    const named = async (name: string) => {
      const t = await new SignJWT({ name }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer(ISS).setSubject('alice').setExpirationTime('10m').sign(key1);
      return call('/a/x', { 'x-jwt': `Token ${t}`, 'x-name': 'forged' });
    };
    for (const name of ['a\r\nx-injected: 1', 'a\nb', 'a\u0000b']) {
      const r = await named(name);
      assert.equal(r.status, 200, JSON.stringify(name));
      assert.equal(r.seen?.headers['x-name'], undefined);
      assert.equal(r.seen?.headers['x-injected'], undefined);
    }
    for (const name of ['é', '日本']) {
      const r = await named(name);
      assert.equal(r.status, 200, name);
      assert.equal(Buffer.from(String(r.seen?.headers['x-name']), 'latin1').toString('utf8'), name);
    }
  });

  it('a forged token on a WebSocket upgrade, and in a second HTTP/2 cookie field: 401, no tunnel, nothing upstream', async () => {
    const forged = `${(await token(ISS, 'alice')).slice(0, -4)}AAAA`;
    const n = app.seen.length;
    const ws = await rawExchange(gw.port, `GET /a/x?tok=${forged} HTTP/1.1\r\nhost: ${HOST}\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n`);
    assert.deepEqual(ws.statuses, [401]);
    const session = connect(`http://127.0.0.1:${gw.port}`);
    try {
      const r = await h2Request(session, { ':method': 'GET', ':path': '/a/x', ':authority': HOST, cookie: ['theme=dark', `session=${forged}`] });
      assert.equal(r.status, 401);
    } finally {
      session.close();
    }
    assert.equal(app.seen.length, n);
  });
});
