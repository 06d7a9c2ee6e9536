// Istio's "Authorization with JWT" task on sidecars (sleep calls httpbin in foo), its YAML unchanged
// (test/fixtures/istio-tasks/authz-jwt/) but for jwksUri, which names Istio's sample key set on
// GitHub: here a loopback server with a key of the test's own, and the task's two tokens made with it,
// claims as the task prints them (demo.jwt: iss = sub = testing@secure.istio.io; groups-scope.jwt:
// also groups [group1, group2]). What the task shows: an invalid token 401, no token 200 until
// require-jwt, then 403 without a token and 200 with; with `request.auth.claims[groups]` = group1 the
// groups token passes and demo.jwt is 403.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { repoPath } from './helpers/route-table.js';
import { startTaskMesh, type TaskMesh } from './helpers/task-mesh.js';

const task = (file: string): Promise<string> => readFile(repoPath(`test/fixtures/istio-tasks/authz-jwt/${file}`), 'utf8');
const SAMPLE_JWKS = 'https://raw.githubusercontent.com/istio/istio/master/security/tools/jwt/samples/jwks.json';
const ISSUER = 'testing@secure.istio.io';

describe('Authorization with JWT', () => {
  let mesh: TaskMesh;
  let jwks: Server;
  let jwksUri: string;
  let token: string, tokenGroup: string;
  const code = async (authorization?: string): Promise<number> =>
    (await mesh.curl('foo', 'http://httpbin.foo:8000/headers', authorization ? { headers: { authorization } } : {})).status;

  before(async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'task', alg: 'RS256', use: 'sig' };
    const sign = (claims: Record<string, unknown>): Promise<string> => new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'task', typ: 'JWT' }).sign(privateKey);
    token = await sign({ exp: 4685989700, foo: 'bar', iat: 1532389700, iss: ISSUER, sub: ISSUER });
    tokenGroup = await sign({ exp: 3537391104, groups: ['group1', 'group2'], iat: 1537391104, iss: ISSUER, scope: ['scope1', 'scope2'], sub: ISSUER });
    jwks = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] })));
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
    jwksUri = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;
    mesh = await startTaskMesh(['foo']);
  });
  after(async () => {
    await mesh?.close();
    await new Promise((r) => jwks?.close(r));
  });

  it('sleep reaches httpbin', async () => {
    assert.equal(await code(), 200);
  });

  it('jwt-example: an invalid token is 401; no token is still 200 (no policy asks for one)', async () => {
    const yaml = (await task('jwt-example.yaml')).replace(SAMPLE_JWKS, jwksUri);
    assert.notEqual(yaml, await task('jwt-example.yaml'));
    await mesh.apply('jwt-example.yaml', yaml);
    assert.equal(await code('Bearer invalidToken'), 401);
    assert.equal(await code(), 200);
  });

  it('require-jwt: the task\'s token is 200, no token 403', async () => {
    await mesh.apply('require-jwt.yaml', await task('require-jwt.yaml'));
    assert.equal(await code(`Bearer ${token}`), 200);
    assert.equal(await code(), 403);
  });

  it('require-jwt with request.auth.claims[groups] group1: the groups token is 200, the token without groups 403', async () => {
    await mesh.apply('require-jwt.yaml', await task('require-jwt-groups.yaml'));
    assert.equal(await code(`Bearer ${tokenGroup}`), 200);
    const denied = await mesh.curl('foo', 'http://httpbin.foo:8000/headers', { headers: { authorization: `Bearer ${token}` } });
    assert.equal(denied.status, 403);
    assert.equal(denied.text, 'RBAC: access denied');
  });
});
