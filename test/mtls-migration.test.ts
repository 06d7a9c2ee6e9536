// Istio's "Mutual TLS Migration" task on sidecars: sleep and httpbin beside sidecars in foo and bar,
// sleep without one in legacy. The task's PeerAuthentication (test/fixtures/istio-tasks/mtls-migration/,
// namespace-less as the task writes it) is applied with `kubectl apply -n foo`, then `-n istio-system`:
// the namespace is set as kubectl sets it. The task's loop prints 200 for every pair, then 000
// (curl's exit 56: the connection closed) from legacy to foo only, then to foo and bar.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { repoPath } from './helpers/route-table.js';
import { startTaskMesh, type TaskMesh } from './helpers/task-mesh.js';

const FROM = ['foo', 'bar', 'legacy'];
const TO = ['foo', 'bar'];
/** `kubectl apply -n <namespace> -f`: the task's namespace-less resource, in that namespace. */
const strictIn = async (namespace: string): Promise<string> =>
  (await readFile(repoPath('test/fixtures/istio-tasks/mtls-migration/strict.yaml'), 'utf8')).replace('  name: "default"\n', `  name: "default"\n  namespace: ${namespace}\n`);

describe('Mutual TLS Migration', () => {
  let mesh: TaskMesh;
  /** The task's loop: `sleep.<from> to httpbin.<to>: <code>`. */
  const loop = async (): Promise<string[]> => {
    const lines: string[] = [];
    for (const from of FROM) for (const to of TO) lines.push(`sleep.${from} to httpbin.${to}: ${String((await mesh.curl(from, `http://httpbin.${to}:8000/ip`)).status).padStart(3, '0')}`);
    return lines;
  };
  const expect = (locked: readonly string[]): string[] => FROM.flatMap((from) => TO.map((to) => `sleep.${from} to httpbin.${to}: ${from === 'legacy' && locked.includes(to) ? '000' : '200'}`));

  before(async () => {
    mesh = await startTaskMesh(FROM, ['legacy']);
  });
  after(async () => {
    await mesh?.close();
  });

  it('PERMISSIVE by default: every sleep reaches httpbin.foo and httpbin.bar', async () => {
    assert.deepEqual(await loop(), expect([]));
  });

  it('STRICT in foo: sleep.legacy to httpbin.foo fails (000), everything else 200', async () => {
    await mesh.apply('foo-strict.yaml', await strictIn('foo'));
    assert.deepEqual(await loop(), expect(['foo']));
  });

  it('STRICT for the mesh (istio-system): sleep.legacy fails to both', async () => {
    await mesh.apply('mesh-strict.yaml', await strictIn('istio-system'));
    assert.deepEqual(await loop(), expect(['foo', 'bar']));
  });

  it('removing the policies: 200 everywhere again', async () => {
    await mesh.remove('mesh-strict.yaml');
    await mesh.remove('foo-strict.yaml');
    assert.deepEqual(await loop(), expect([]));
  });
});
