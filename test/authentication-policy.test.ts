// Istio's "Authentication Policy" task: sleep and httpbin in foo and bar beside sidecars, and in
// legacy without. The task's curl loop (every sleep to every httpbin, `%{http_code}`) answers 200
// everywhere, then 000 (the connection closed, curl's exit 56) from legacy to each workload a
// STRICT PeerAuthentication covers: mesh-wide, namespace-wide, one workload, and not on a port the
// workload policy DISABLEs. Auto mutual TLS shows in X-Forwarded-Client-Cert. The YAML is the
// task's (test/fixtures/istio-tasks/authentication/); the port-level policy's 8080 is the stand-in
// httpbin's port here, which the OS chooses.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { repoPath } from './helpers/route-table.js';
import { startTaskMesh, type TaskMesh } from './helpers/task-mesh.js';

const NAMESPACES = ['foo', 'bar', 'legacy'];
const task = (file: string): Promise<string> => readFile(repoPath(`test/fixtures/istio-tasks/authentication/${file}`), 'utf8');

describe('Authentication Policy (PeerAuthentication)', () => {
  let mesh: TaskMesh;

  /** The task's loop: `curl.<from> to httpbin.<to>: <code>` for every pair. */
  async function loop(): Promise<string[]> {
    const lines: string[] = [];
    for (const from of NAMESPACES) {
      for (const to of NAMESPACES) lines.push(`curl.${from} to httpbin.${to}: ${String((await mesh.curl(from, `http://httpbin.${to}:8000/ip`)).status).padStart(3, '0')}`);
    }
    return lines;
  }
  const expect = (unreachable: readonly string[]): string[] =>
    NAMESPACES.flatMap((from) => NAMESPACES.map((to) => `curl.${from} to httpbin.${to}: ${from === 'legacy' && unreachable.includes(to) ? '000' : '200'}`));

  before(async () => {
    mesh = await startTaskMesh(NAMESPACES, ['legacy']);
  });
  after(async () => {
    await mesh?.close();
  });

  it('before any policy every sleep reaches every httpbin', async () => {
    assert.deepEqual(await loop(), expect([]));
  });

  it('auto mutual TLS: httpbin.foo sees the caller\'s identity in X-Forwarded-Client-Cert, httpbin.legacy sees none', async () => {
    const meshed = JSON.parse((await mesh.curl('foo', 'http://httpbin.foo:8000/headers')).text) as { headers: Record<string, string> };
    assert.match(meshed.headers['X-Forwarded-Client-Cert'] ?? '', /^By=spiffe:\/\/cluster\.local\/ns\/foo\/sa\/httpbin;Hash=[0-9a-f]+;Subject="";URI=spiffe:\/\/cluster\.local\/ns\/foo\/sa\/sleep$/);
    const legacy = JSON.parse((await mesh.curl('foo', 'http://httpbin.legacy:8000/headers')).text) as { headers: Record<string, string> };
    assert.equal(legacy.headers['X-Forwarded-Client-Cert'], undefined);
  });

  it('mesh-wide STRICT: legacy reaches neither foo nor bar; meshed sleeps still reach legacy', async () => {
    await mesh.apply('mesh.yaml', await task('mesh-strict.yaml'));
    assert.deepEqual(await loop(), expect(['foo', 'bar']));
    await mesh.remove('mesh.yaml');
  });

  it('namespace-wide STRICT in foo: only foo refuses legacy', async () => {
    await mesh.apply('foo.yaml', await task('namespace-strict.yaml'));
    assert.deepEqual(await loop(), expect(['foo']));
  });

  it('workload STRICT for httpbin in bar: bar refuses legacy too', async () => {
    await mesh.apply('bar.yaml', await task('workload-strict.yaml'));
    assert.deepEqual(await loop(), expect(['foo', 'bar']));
  });

  it('port-level DISABLE on httpbin\'s container port: legacy reaches bar again', async () => {
    const port = mesh.httpbin.get('bar')!.port;
    await mesh.apply('bar.yaml', (await task('port-level.yaml')).replace('    8080:', `    ${port}:`));
    assert.deepEqual(await loop(), expect(['foo']));
  });
});
