// Istio's "Authorization: Explicit Deny" task on sidecars, its YAML unchanged
// (test/fixtures/istio-tasks/authz-deny/): sleep calls httpbin in foo. A DENY on GET answers 403
// `RBAC: access denied` to GET and lets POST through; with `notValues: ["admin"]` on x-token, only
// x-token: admin passes; an ALLOW on /ip beside it cannot undo the DENY, and denies other paths.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { repoPath } from './helpers/route-table.js';
import { startTaskMesh, type TaskMesh } from './helpers/task-mesh.js';

const task = (file: string): Promise<string> => readFile(repoPath(`test/fixtures/istio-tasks/authz-deny/${file}`), 'utf8');

describe('Authorization: Explicit Deny', () => {
  let mesh: TaskMesh;
  const code = async (method: string, path: string, headers: Record<string, string> = {}): Promise<number> => (await mesh.curl('foo', `http://httpbin.foo:8000${path}`, { method, headers })).status;

  before(async () => {
    mesh = await startTaskMesh(['foo']);
  });
  after(async () => {
    await mesh?.close();
  });

  it('sleep reaches httpbin before any policy', async () => {
    assert.equal(await code('GET', '/ip'), 200);
  });

  it('deny-method-get: GET is 403 RBAC: access denied, POST is 200', async () => {
    await mesh.apply('deny.yaml', await task('deny-method-get.yaml'));
    const denied = await mesh.curl('foo', 'http://httpbin.foo:8000/get', { method: 'GET' });
    assert.equal(denied.status, 403);
    assert.equal(denied.text, 'RBAC: access denied');
    assert.equal(await code('POST', '/post'), 200);
  });

  it('notValues ["admin"]: x-token admin passes, guest is denied', async () => {
    await mesh.apply('deny.yaml', await task('deny-method-get-unless-admin.yaml'));
    assert.equal(await code('GET', '/get', { 'x-token': 'admin' }), 200);
    assert.equal(await code('GET', '/get', { 'x-token': 'guest' }), 403);
  });

  it('allow-path-ip beside the DENY: guest on /ip is still denied, admin on /ip passes, admin on /get is denied', async () => {
    await mesh.apply('allow.yaml', await task('allow-path-ip.yaml'));
    assert.equal(await code('GET', '/ip', { 'x-token': 'guest' }), 403);
    assert.equal(await code('GET', '/ip', { 'x-token': 'admin' }), 200);
    assert.equal(await code('GET', '/get', { 'x-token': 'admin' }), 403);
  });
});
