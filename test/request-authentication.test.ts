// Integration: RequestAuthentication (security.istio.io/v1) at the gateway, with keys and tokens made
// by jose in the test and a loopback JWKS server. A valid token passes and becomes request.auth
// (principal iss/sub, claims usable in `when`); a bad one — wrong key, expired, wrong audience,
// unknown issuer, not a JWT — is a 401 with Envoy's text; no token passes unless an
// AuthorizationPolicy requires requestPrincipals. The token header is stripped unless
// forwardOriginalToken; outputPayloadToHeader and outputClaimToHeaders reach the upstream.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually, send, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { sidecarOptions, testAuthority } from './helpers/mesh.js';
import { startSidecar, type RunningSidecar } from '../src/sidecar/main.js';
import { gatewayYaml, serviceYaml, gatewayRouteYaml } from './helpers/cluster-yaml.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { parseConfigText } from '../src/core/config/load.js';
import { validateAll } from '../src/core/config/validate.js';

const ISSUER = 'https://issuer.example';
const OTHER = 'https://other.example';

interface Keys {
  readonly privateKey: CryptoKey;
  readonly jwk: JWK;
}

async function keyPair(kid: string): Promise<Keys> {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  return { privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

async function token(keys: Keys, claims: Record<string, unknown>, opts: { iss?: string; sub?: string; aud?: string | string[]; exp?: string | number } = {}): Promise<string> {
  let t = new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: keys.jwk.kid! }).setIssuer(opts.iss ?? ISSUER).setSubject(opts.sub ?? 'alice').setIssuedAt();
  if (opts.aud !== undefined) t = t.setAudience(opts.aud);
  t = t.setExpirationTime(opts.exp ?? '10m');
  return t.sign(keys.privateKey);
}

const ROUTES = gatewayRouteYaml(['app.example.com']);

describe('RequestAuthentication at the gateway', () => {
  let up: Upstream;
  let gw: TestGateway;
  let jwksServer: Server;
  let jwksHits = 0;
  let good: Keys;
  let other: Keys;
  let stranger: Keys;

  before(async () => {
    good = await keyPair('k1');
    other = await keyPair('k2');
    stranger = await keyPair('k1'); // same kid, a key nobody published
    jwksServer = createServer((_req, res) => {
      jwksHits++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [other.jwk] }));
    });
    await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r));
    const jwksUri = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`;
    up = await startUpstream('app');
    gw = await startTestGateway({
      'gateway.yaml': gatewayYaml(['app.example.com']),
      'services.yaml': serviceYaml('app', [{ pod: 'app-1', port: up.port }]),
      'routes.yaml': ROUTES,
      'jwt.yaml': `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  jwtRules:
  - issuer: ${ISSUER}
    audiences: [app.example.com]
    jwks: '${JSON.stringify({ keys: [good.jwk] })}'
    outputPayloadToHeader: x-jwt-payload
    outputClaimToHeaders: [{header: x-jwt-group, claim: group}]
  - issuer: ${OTHER}
    jwksUri: ${jwksUri}
    fromHeaders: [{name: x-token}]
    fromParams: [token]
    forwardOriginalToken: true
`,
      'require.yaml': `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: require-jwt, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  rules:
  - to: [{operation: {notPaths: ["/private*", "/admin*"]}}]
  - to: [{operation: {paths: ["/private*"]}}]
    from: [{source: {requestPrincipals: ["*"]}}]
  - to: [{operation: {paths: ["/admin*"]}}]
    from: [{source: {requestPrincipals: ["${ISSUER}/alice"]}}]
    when: [{key: "request.auth.claims[group]", values: [admins]}]
`,
    });
  });
  after(async () => {
    await gw.close();
    await up.close();
    await new Promise((r) => jwksServer.close(r));
  });

  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

  it('the configuration validates clean', () => {
    const { resources } = parseConfigText(`apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: x, namespace: default}
spec:
  jwtRules: [{issuer: a, jwksUri: "https://a.example/keys"}]
`, 'x.yaml');
    assert.deepEqual(validateAll(resources).problems, []);
  });

  it('no token passes where no policy asks for one', async () => {
    const r = await gw.get('app.example.com', '/open');
    assert.equal(r.status, 200);
  });

  it('no token on a path that requires requestPrincipals is 403', async () => {
    const r = await gw.get('app.example.com', '/private/x');
    assert.equal(r.status, 403);
    assert.equal(r.text, 'RBAC: access denied');
  });

  it('a valid token passes; the Authorization header is stripped and the payload and claim headers are set', async () => {
    const t = await token(good, { group: 'users' }, { aud: 'app.example.com' });
    const r = await gw.get('app.example.com', '/private/x', bearer(t));
    assert.equal(r.status, 200, r.text);
    const seen = r.json<{ headers: Record<string, string> }>().headers;
    assert.equal(seen.authorization, undefined);
    assert.equal(seen['x-jwt-group'], 'users');
    const payload = JSON.parse(Buffer.from(seen['x-jwt-payload']!, 'base64url').toString()) as Record<string, unknown>;
    assert.equal(payload.sub, 'alice');
    assert.equal(payload.iss, ISSUER);
  });

  it('a client-sent claim header is replaced, not trusted', async () => {
    const t = await token(good, { group: 'users' }, { aud: 'app.example.com' });
    const r = await gw.get('app.example.com', '/open', { ...bearer(t), 'x-jwt-group': 'admins' });
    assert.equal(r.json<{ headers: Record<string, string> }>().headers['x-jwt-group'], 'users');
  });

  it('a client-sent claim or payload header never reaches the upstream without a token, nor with a token that lacks the claim', async () => {
    const spoof = { 'x-jwt-group': 'admins', 'x-jwt-payload': Buffer.from('{"sub":"admin"}').toString('base64url') };
    const none = (await gw.get('app.example.com', '/open', spoof)).json<{ headers: Record<string, string> }>().headers;
    assert.equal(none['x-jwt-group'], undefined);
    assert.equal(none['x-jwt-payload'], undefined);
    const t = await token(good, {}, { aud: 'app.example.com' });
    const lacking = (await gw.get('app.example.com', '/open', { ...bearer(t), ...spoof })).json<{ headers: Record<string, string> }>().headers;
    assert.equal(lacking['x-jwt-group'], undefined);
  });

  it('claims in `when`: the admin path needs alice in group admins', async () => {
    const admin = await token(good, { group: 'admins' }, { aud: 'app.example.com' });
    const user = await token(good, { group: 'users' }, { aud: 'app.example.com' });
    const bob = await token(good, { group: 'admins' }, { aud: 'app.example.com', sub: 'bob' });
    assert.equal((await gw.get('app.example.com', '/admin', bearer(admin))).status, 200);
    assert.equal((await gw.get('app.example.com', '/admin', bearer(user))).status, 403);
    assert.equal((await gw.get('app.example.com', '/admin', bearer(bob))).status, 403);
  });

  it('bad tokens are 401 with Envoy\'s text, even where no policy asks for a token', async () => {
    const cases: Array<[string, string, string]> = [
      ['signed by another key', await token(stranger, {}, { aud: 'app.example.com' }), 'Jwt verification fails'],
      ['expired', await token(good, {}, { aud: 'app.example.com', exp: Math.floor(Date.now() / 1000) - 3600 }), 'Jwt is expired'],
      ['wrong audience', await token(good, {}, { aud: 'elsewhere' }), 'Audiences in Jwt are not allowed'],
      ['unknown issuer', await token(good, {}, { iss: 'https://evil.example', aud: 'app.example.com' }), 'Jwt issuer is not configured'],
      ['not a JWT', 'not-a-jwt', 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections'],
    ];
    for (const [what, t, text] of cases) {
      const before = up.seen.length;
      const r = await gw.get('app.example.com', '/open', bearer(t));
      assert.equal(r.status, 401, what);
      assert.equal(r.text, text, what);
      assert.match(String(r.headers['www-authenticate']), /^Bearer /, what);
      assert.equal(up.seen.length, before, `${what}: the upstream saw it`);
    }
  });

  it('Authorization without the Bearer prefix holds no token', async () => {
    assert.equal((await gw.get('app.example.com', '/open', { authorization: 'Basic YTpi' })).status, 200);
  });

  it('jwksUri, fromHeaders and fromParams; forwardOriginalToken keeps the header', async () => {
    const t = await token(other, {}, { iss: OTHER, sub: 'carol' });
    const viaHeader = await gw.get('app.example.com', '/private/h', { 'x-token': t });
    assert.equal(viaHeader.status, 200, viaHeader.text);
    assert.equal(viaHeader.json<{ headers: Record<string, string> }>().headers['x-token'], t);
    const viaParam = await gw.get('app.example.com', `/private/p?token=${t}`);
    assert.equal(viaParam.status, 200, viaParam.text);
    // The OTHER issuer's token is not read from Authorization (its rule names its own locations).
    assert.equal((await gw.get('app.example.com', '/private/a', bearer(t))).status, 401);
    assert.ok(jwksHits >= 1);
    const hits = jwksHits;
    await gw.get('app.example.com', '/private/h', { 'x-token': t });
    assert.equal(jwksHits, hits, 'the key set is cached');
  });

  it('removing the RequestAuthentication stops checking tokens', async () => {
    // Rewritten to select another workload (an emptied file could read as a half-written one).
    await gw.write('require.yaml', `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: require-jwt, namespace: istio-system}
spec:
  selector: {matchLabels: {app: elsewhere}}
`);
    await gw.write('jwt.yaml', `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: istio-system}
spec:
  selector: {matchLabels: {app: elsewhere}}
  jwtRules: [{issuer: ${ISSUER}, jwksUri: "https://issuer.example/keys"}]
`);
    await eventually(async () => (await gw.get('app.example.com', '/open', bearer('not-a-jwt'))).status === 200);
  });
});

describe('RequestAuthentication at a sidecar inbound side, selected by the workload labels', () => {
  let dir: string;
  let app: Upstream;
  let sidecar: RunningSidecar;
  let keys: Keys;

  before(async () => {
    keys = await keyPair('s1');
    const ca = await testAuthority();
    app = await startUpstream('jwt-app');
    dir = await mkdtemp(join(tmpdir(), 'meshgate-jwt-sidecar-'));
    await writeFile(join(dir, 'security.yaml'), `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec: {mtls: {mode: PERMISSIVE}}
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: default}
spec:
  selector: {matchLabels: {app: jwt-app}}
  jwtRules: [{issuer: "${ISSUER}", jwks: '${JSON.stringify({ keys: [keys.jwk] })}'}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: need-token, namespace: default}
spec:
  selector: {matchLabels: {app: jwt-app}}
  rules: [{from: [{source: {requestPrincipals: ["${ISSUER}/*"]}}]}]
`);
    sidecar = await startSidecar(sidecarOptions(ca, dir, 'jwt-app', app.port));
  });
  after(async () => {
    await sidecar.destroy();
    await app.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('no token: 403; a bad one: 401; a valid one reaches the app without the Authorization header', async () => {
    const get = (headers: Record<string, string> = {}) => send(sidecar.inboundPort, 'jwt-app', '/x', headers);
    assert.equal((await get()).status, 403);
    const bad = await get({ authorization: 'Bearer not-a-jwt' });
    assert.equal(bad.status, 401);
    const ok = await get({ authorization: `Bearer ${await token(keys, {})}` });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json<{ headers: Record<string, string> }>().headers.authorization, undefined);
  });
});

describe('RequestAuthentication validation, with file and line', () => {
  const cases: Array<[string, string, string, string]> = [
    // [what, jwtRules YAML, field path, message part]
    ['issuer is required', '- {jwksUri: "https://a.example/k"}', 'spec.jwtRules[0].issuer', 'issuer is required'],
    ['both key sources', `- {issuer: a, jwksUri: "https://a.example/k", jwks: '{"keys":[{"kty":"oct","k":"AA"}]}'}`, 'spec.jwtRules[0].jwks', 'cannot be set together with jwksUri'],
    ['jwksUri not http', '- {issuer: a, jwksUri: "file:///etc/keys"}', 'spec.jwtRules[0].jwksUri', 'not an http or https URL'],
    ['jwks not JSON', `- {issuer: a, jwks: 'nope'}`, 'spec.jwtRules[0].jwks', 'jwks is not JSON'],
    ['jwks without keys', `- {issuer: a, jwks: '{"keys":[]}'}`, 'spec.jwtRules[0].jwks', 'no keys'],
    ['duplicate issuer', '- {issuer: a, jwksUri: "https://a.example/k"}\n  - {issuer: a, jwksUri: "https://a.example/k2"}', 'spec.jwtRules[1].issuer', 'already configured'],
    ['header without name', '- {issuer: a, jwksUri: "https://a.example/k", fromHeaders: [{prefix: "x "}]}', 'spec.jwtRules[0].fromHeaders[0].name', 'name is required'],
    ['claim header needs a claim', '- {issuer: a, jwksUri: "https://a.example/k", outputClaimToHeaders: [{header: x-a}]}', 'spec.jwtRules[0].outputClaimToHeaders[0].claim', 'claim is required'],
    ['misspelt field', '- {issuer: a, jwksUri: "https://a.example/k", audience: [x]}', 'spec.jwtRules[0].audience', 'unknown field'],
  ];
  for (const [what, rules, field, message] of cases) {
    it(what, () => {
      const text = `apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: r, namespace: default}\nspec:\n  jwtRules:\n  ${rules}\n`;
      const { resources } = parseConfigText(text, 'ra.yaml');
      const { valid, problems } = validateAll(resources);
      const p = problems.find((x) => x.field === field && x.message.includes(message));
      assert.ok(p, `${field}: ${message} in ${JSON.stringify(problems)}`);
      assert.equal(p.file, 'ra.yaml');
      assert.ok(p.line >= 5, `line ${p.line}`);
      assert.equal(valid.length, 0);
    });
  }

  it('no key source: accepted, as Istio accepts it (it would discover the keys), with a warning that meshgate refuses every token', () => {
    const text = 'apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: r, namespace: default}\nspec:\n  jwtRules:\n  - {issuer: a}\n';
    const { valid, problems } = validateAll(parseConfigText(text, 'ra.yaml').resources);
    assert.equal(valid.length, 1);
    const p = problems.find((x) => x.field === 'spec.jwtRules[0]');
    assert.equal(p?.severity, 'warning', JSON.stringify(problems));
    assert.match(p!.message, /no jwksUri or jwks.*401/);
  });

  it('a symmetric key in jwks: accepted with a warning that its tokens are refused', () => {
    const jwks = JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0', alg: 'HS256' }] });
    const text = `apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {name: r, namespace: default}\nspec:\n  jwtRules:\n  - {issuer: a, jwks: '${jwks}'}\n`;
    const { valid, problems } = validateAll(parseConfigText(text, 'ra.yaml').resources);
    assert.equal(valid.length, 1);
    const p = problems.find((x) => x.field === 'spec.jwtRules[0].jwks');
    assert.equal(p?.severity, 'warning', JSON.stringify(problems));
    assert.match(p!.message, /symmetric keys.*401/);
  });
});
