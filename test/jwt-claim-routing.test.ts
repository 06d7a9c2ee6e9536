// Istio's JWT claim based routing task at the gateway: a VirtualService route that matches
// `@request.auth.claims.groups` is chosen by the claims of the verified token, never by a header the
// client sends. No token: the route does not match (404); a bad token: 401 before any route; a token
// whose list claim holds the group: routed; one without it: 404. Nested claims, both spellings,
// `withoutHeaders` on a claim, and case kept in claim names. docs/reference/routing.md.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

const ISSUER = 'testing@secure.istio.io';

describe('JWT claim based routing at the gateway', () => {
  let v1: Upstream, v2: Upstream, admin: Upstream;
  let gw: TestGateway;
  let key: CryptoKey;
  let jwk: JWK;

  const token = (claims: Record<string, unknown>): Promise<string> =>
    new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer(ISSUER).setSubject('alice').setIssuedAt().setExpirationTime('10m').sign(key);
  const bearer = async (claims: Record<string, unknown>) => ({ authorization: `Bearer ${await token(claims)}` });

  before(async () => {
    const pair = await generateKeyPair('RS256');
    key = pair.privateKey;
    jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    v1 = await startUpstream('httpbin-v1');
    v2 = await startUpstream('httpbin-v2');
    admin = await startUpstream('admin');
    gw = await startTestGateway({
      'gateway.yaml': gatewayYaml(['httpbin.example.com']),
      'services.yaml': serviceYaml('httpbin-v1', [{ pod: 'v1-0', port: v1.port }]) + '---\n' + serviceYaml('httpbin-v2', [{ pod: 'v2-0', port: v2.port }]) + '---\n' + serviceYaml('admin', [{ pod: 'admin-0', port: admin.port }]),
      'jwt.yaml': `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: ingress-jwt, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  jwtRules:
  - issuer: ${ISSUER}
    jwks: '${JSON.stringify({ keys: [jwk] })}'
`,
      'routes.yaml': `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: httpbin, namespace: default}
spec:
  hosts: [httpbin.example.com]
  gateways: [gw]
  http:
  - match:
    - uri: {prefix: /admin}
      headers:
        "@request.auth.claims[org.example/role]": {exact: Admin}
    route: [{destination: {host: admin}}]
  - match:
    - uri: {prefix: /headers}
      headers:
        "@request.auth.claims.groups": {exact: group1}
    route: [{destination: {host: httpbin-v1}}]
  - match:
    - uri: {prefix: /nested}
      headers:
        "@request.auth.claims.team.name": {prefix: plat}
      withoutHeaders:
        "@request.auth.claims.team.tier": {exact: free}
    route: [{destination: {host: httpbin-v2}}]
`,
    });
  });

  after(async () => {
    await gw?.close();
    await Promise.all([v1?.close(), v2?.close(), admin?.close()]);
  });

  it('without a token the claim route does not match: 404', async () => {
    assert.equal((await gw.get('httpbin.example.com', '/headers')).status, 404);
  });

  it('a client-sent header named like the claim is not a claim', async () => {
    const r = await gw.get('httpbin.example.com', '/headers', { groups: 'group1', 'x-jwt-claim-groups': 'group1' });
    assert.equal(r.status, 404);
  });

  it('a bad token is 401, before any route', async () => {
    const r = await gw.get('httpbin.example.com', '/headers', { authorization: 'Bearer not.a.token' });
    assert.equal(r.status, 401);
    assert.equal(v1.seen.length, 0);
  });

  it('a token whose groups hold group1 is routed; the upstream does not get the token', async () => {
    const r = await gw.get('httpbin.example.com', '/headers', await bearer({ groups: ['group1', 'group2'] }));
    assert.equal(r.status, 200, r.text);
    assert.equal(v1.seen.at(-1)?.url, '/headers');
    assert.equal(v1.seen.at(-1)?.headers['authorization'], undefined);
    const single = await gw.get('httpbin.example.com', '/headers', await bearer({ groups: 'group1' }));
    assert.equal(single.status, 200, 'a string claim matches too');
  });

  it('a valid token without the group: 404', async () => {
    assert.equal((await gw.get('httpbin.example.com', '/headers', await bearer({ groups: ['group2'] }))).status, 404);
    assert.equal((await gw.get('httpbin.example.com', '/headers', await bearer({}))).status, 404);
  });

  it('nested claims with dots and with brackets, withoutHeaders on a claim, and case kept in claim names', async () => {
    assert.equal((await gw.get('httpbin.example.com', '/nested', await bearer({ team: { name: 'platform', tier: 'paid' } }))).status, 200);
    assert.equal(v2.seen.at(-1)?.url, '/nested');
    assert.equal((await gw.get('httpbin.example.com', '/nested', await bearer({ team: { name: 'platform', tier: 'free' } }))).status, 404);
    assert.equal((await gw.get('httpbin.example.com', '/admin', await bearer({ 'org.example/role': 'Admin' }))).status, 200);
    assert.equal((await gw.get('httpbin.example.com', '/admin', await bearer({ 'org.example/role': 'admin' }))).status, 404);
  });
});
