// Istio's "Mirroring" task, its YAML unchanged (test/fixtures/istio-tasks/mirroring/): httpbin v1 and
// v2 behind one Service `httpbin` on port 8000, each beside a sidecar, and sleep calling
// `http://httpbin:8000/headers` through its own. With every request routed to v1, only v1's log has
// it; with `mirror: v2` at 100 %, v2's log has the same request too, while sleep still gets v1's
// answer. The copy keeps the Host `httpbin:8000`: Istio 1.28 and later no longer append Envoy's
// `-shadow` (DISABLE_SHADOW_HOST_SUFFIX defaults to true). The task's older form, `mirrorPercent:
// 100`, mirrors the same way.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunningSidecar } from '../src/sidecar/main.js';
import { startSidecar } from '../src/sidecar/main.js';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { eventually } from './helpers/gateway.js';
import { startHttpbin, type Httpbin } from './helpers/httpbin.js';
import { sidecarOptions, testAuthority, viaProxy } from './helpers/mesh.js';
import { NO_APP } from './helpers/ports.js';
import { repoPath } from './helpers/route-table.js';
import { kubectlApply, untilServed } from './helpers/task-mesh.js';

const task = (file: string): Promise<string> => readFile(repoPath(`test/fixtures/istio-tasks/mirroring/${file}`), 'utf8');

describe('Mirroring', () => {
  let dir: string;
  let v1: Httpbin, v2: Httpbin;
  let sidecars: RunningSidecar[];
  let sleep: RunningSidecar;
  /** `kubectl apply -f`: the VirtualService replaces the one of its name; the DestinationRule stays. */
  const apply = async (yaml: string): Promise<void> => {
    await kubectlApply(dir, yaml);
    await Promise.all(sidecars.map((s) => untilServed(s.holder, yaml)));
  };
  const curl = () => viaProxy(sleep.outboundPort, 'http://httpbin:8000/headers', { 'user-agent': 'curl/8.5.0' });

  before(async () => {
    const ca = await testAuthority();
    dir = await mkdtemp(join(tmpdir(), 'meshgate-mirroring-'));
    [v1, v2] = [await startHttpbin(), await startHttpbin()];
    const meshed = (app: Httpbin, version: string): Promise<RunningSidecar> => startSidecar({ ...sidecarOptions(ca, dir, 'httpbin', app.port), labels: { app: 'httpbin', version } });
    const [s1, s2] = [await meshed(v1, 'v1'), await meshed(v2, 'v2')];
    sleep = await startSidecar(sidecarOptions(ca, dir, 'sleep', NO_APP));
    sidecars = [s1, s2, sleep];
    const tls = { 'security.istio.io/tlsMode': 'istio' };
    await apply(
      serviceYaml(
        'httpbin',
        [
          { pod: 'httpbin-v1', port: s1.inboundPort, serviceAccount: 'httpbin', labels: { version: 'v1', ...tls } },
          { pod: 'httpbin-v2', port: s2.inboundPort, serviceAccount: 'httpbin', labels: { version: 'v2', ...tls } },
        ],
        { port: 8000 },
      ),
    );
  });
  after(async () => {
    await Promise.all((sidecars ?? []).map((s) => s.destroy()));
    await Promise.all([v1?.close(), v2?.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  it('all traffic to v1: v1 logs the request, v2 nothing', async () => {
    await apply(await task('httpbin-v1.yaml'));
    for (let i = 0; i < 5; i++) assert.equal((await curl()).status, 200);
    assert.deepEqual(v1.paths, Array(5).fill('/headers'));
    assert.deepEqual(v2.paths, []);
  });

  it('mirror v2 at 100 %: v2 logs the same request, with Host httpbin:8000; sleep gets v1\'s answer', async () => {
    await apply(await task('mirror-v2.yaml'));
    const r = await curl();
    assert.equal(r.status, 200, `${r.text} ${JSON.stringify(r.headers)}`);
    assert.equal((JSON.parse(r.text) as { headers: Record<string, string> }).headers['Host'], 'httpbin:8000');
    assert.equal(v1.paths.length, 6);
    await eventually(async () => v2.paths.length === 1);
    const copy = v2.seen[0]!;
    assert.equal(copy.url, '/headers');
    assert.equal(copy.headers.host, 'httpbin:8000');
    assert.equal(copy.headers['user-agent'], 'curl/8.5.0');
  });

  it('the task\'s older mirrorPercent: 100 mirrors every request the same way', async () => {
    const older = (await task('mirror-v2.yaml')).replace('    mirrorPercentage:\n      value: 100.0\n', '    mirrorPercent: 100\n');
    assert.match(older, /mirrorPercent: 100\n/);
    await apply(older);
    for (let i = 0; i < 3; i++) assert.equal((await curl()).status, 200);
    await eventually(async () => v2.paths.length === 4);
  });
});
