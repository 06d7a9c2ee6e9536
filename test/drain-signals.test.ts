// Stopping a gateway with workers whichever of its processes get the signal: the primary alone, one
// worker alone, or the whole process group at once (Ctrl-C in a terminal, `kill -- -PGID`, systemd's
// KillMode=control-group, `tini -g`). Each time the drain runs once: readiness fails, and a steady
// loop of requests on new connections fails none while the drain period lasts; then the gateway
// exits 0. A group signal reaches every process, and one stop is relayed from the primary as well, so
// duplicates must change nothing; a third signal stops at once. Repeated to catch the race the bug
// had (a worker ended by a second SIGTERM in 4 runs out of 5).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { eventually } from './helpers/gateway.js';
import { startWorkersGateway, type WorkersGateway } from './helpers/gateway-workers.js';
import { freshGet } from './helpers/ports.js';
import { exited, ready } from './helpers/processes.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

const HOST = 'app.example.com';
const DRAIN_SECONDS = 2;
/** How long the loop runs on after the signal: well inside the drain period, which starts later still. */
const LOOP_AFTER_SIGNAL_MS = 1000;

interface LoopResult {
  readonly ok: number;
  readonly failed: Record<string, number>;
}

/**
 * Two clients sending GETs, each on a new connection, until `stop()`; what they got, by outcome.
 * `inDrain(sentAt)` says whether a request sent then is one the drain period must serve: on a loaded
 * machine the loop may run on past the period's end, where a refused connection is right.
 */
function requestLoop(port: number, inDrain: (sentAt: number) => boolean): { stop(): Promise<LoopResult>; warm(): Promise<void> } {
  let running = true;
  let ok = 0;
  const failed: Record<string, number> = {};
  const client = async (): Promise<void> => {
    while (running) {
      const sentAt = Date.now();
      const fail = (what: string): void => {
        if (inDrain(sentAt)) failed[what] = (failed[what] ?? 0) + 1;
      };
      try {
        const r = await freshGet(port, HOST, '/');
        if (r.status === 200) ok++;
        else fail(String(r.status));
      } catch (err) {
        fail((err as NodeJS.ErrnoException).code ?? 'error');
      }
    }
  };
  const clients = [client(), client()];
  return {
    warm: () => eventually(async () => ok >= 20, 20_000),
    stop: async () => {
      running = false;
      await Promise.all(clients);
      return { ok, failed };
    },
  };
}

function signalTargets(gw: WorkersGateway, target: 'group' | 'primary' | 'worker'): number[] {
  if (target === 'group') return [-gw.proc.pid!];
  if (target === 'primary') return [gw.proc.pid!];
  return [gw.workers()[0]!];
}

describe('gateway --workers: a stop signal to any of its processes drains once', () => {
  let dir: string;
  let up: Upstream;
  const running: WorkersGateway[] = [];

  before(async () => {
    up = await startUpstream('app');
    dir = await mkdtemp(join(tmpdir(), 'meshgate-drain-signals-'));
    await writeFile(join(dir, 'gw.yaml'), gatewayYaml([HOST]));
    await writeFile(join(dir, 'svc.yaml'), serviceYaml('app', [{ pod: 'app-0', port: up.port }]));
    await writeFile(join(dir, 'vs.yaml'), `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: app}\nspec:\n  hosts: [${HOST}]\n  gateways: [gw]\n  http:\n  - route: [{destination: {host: app}}]\n`);
  });
  after(async () => {
    for (const gw of running) gw.kill();
    await up.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function stopUnderLoad(target: 'group' | 'primary' | 'worker', signal: NodeJS.Signals, times = 1): Promise<void> {
    const gw = await startWorkersGateway(dir, 2, ['--drain-seconds', String(DRAIN_SECONDS), '--drain-deadline-seconds', '20'], { detached: true });
    running.push(gw);
    const exit = exited(gw.proc);
    let signalled = Infinity;
    // The drain period starts when a process sees the signal, after `signalled`; a margin keeps a
    // request sent just before its end (and accepted after it) out of the count.
    const loop = requestLoop(gw.port, (sentAt) => sentAt < signalled + DRAIN_SECONDS * 1000 - 500);
    await loop.warm();
    signalled = Date.now();
    for (let i = 0; i < times; i++) for (const pid of signalTargets(gw, target)) process.kill(pid, signal);
    await eventually(async () => !(await ready(gw.statusPort)));
    // Readiness failing is the first step; serving goes on for the rest of the drain period.
    const rest = LOOP_AFTER_SIGNAL_MS - (Date.now() - signalled);
    if (rest > 0) await new Promise((r) => setTimeout(r, rest));
    const result = await loop.stop();
    assert.deepEqual(result.failed, {}, `no request fails while the drain period lasts (${result.ok} answered 200)`);
    assert.equal(await exit, 0, `the gateway exits 0 after its drain\n${gw.proc.pid}`);
    assert.equal(gw.count('stopping workers'), 1, 'the primary stops its workers once');
    assert.equal(gw.count('draining: readiness fails now, serving continues until the drain period ends'), 2, 'each worker drains once');
  }

  it('SIGTERM to the process group (run 1)', () => stopUnderLoad('group', 'SIGTERM'));
  it('SIGTERM to the process group (run 2)', () => stopUnderLoad('group', 'SIGTERM'));
  it('SIGINT to the process group, as Ctrl-C sends it', () => stopUnderLoad('group', 'SIGINT'));
  it('SIGTERM to the primary only', () => stopUnderLoad('primary', 'SIGTERM'));
  it('SIGTERM to one worker only stops the whole gateway', () => stopUnderLoad('worker', 'SIGTERM'));
  it('a second signal to the group does not cut the drain short', () => stopUnderLoad('group', 'SIGTERM', 2));

  it('a third signal stops at once', async () => {
    const gw = await startWorkersGateway(dir, 2, ['--drain-seconds', '30', '--drain-deadline-seconds', '60'], { detached: true });
    running.push(gw);
    const exit = exited(gw.proc);
    // Each signal waits for the one before to be seen: two of the same signal pending at once are
    // one to the kernel, as they would be for a person pressing Ctrl-C twice within a millisecond.
    process.kill(gw.proc.pid!, 'SIGTERM');
    await eventually(async () => gw.count('stopping workers') === 1);
    process.kill(gw.proc.pid!, 'SIGTERM');
    await eventually(async () => gw.count('already stopping; 1 more signal(s) stop at once') === 1);
    process.kill(gw.proc.pid!, 'SIGTERM');
    assert.equal(await exit, 143, 'exit code 128 + SIGTERM, long before the 30 s drain period ends');
  });
});
