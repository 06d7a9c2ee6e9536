// Preloaded into a proxy under test (`node --import <this file> ...`) by tail.ts: between two
// SIGUSR2 it records the process's CPU time, every garbage collection (v8.GCProfiler: kind, pause
// and the heap before and after, so the bytes allocated in the young generation too) and the event
// loop's delay (perf_hooks), and on the second SIGUSR2 appends one JSON line to $LOOP_PROBE_OUT.
// It changes nothing in the process it watches beside one 1 ms sampling timer ($LOOP_PROBE_DELAY=0
// leaves that out, where the CPU per request is what is measured and the loop's delay is not). With
// $LOOP_PROBE_PROMOTED set to a file, the window also runs V8's sampling heap profiler keeping the
// samples that survived the young generation (dropped only when a mark-compact frees them), and
// writes that profile there: where what gets promoted is allocated (run it with --expose-gc and send
// the second signal after the load has stopped, so that the last requests' garbage is left out).

import { appendFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { GCProfiler, getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';

interface SpaceStats { readonly spaceName: string; readonly spaceUsedSize: number; readonly spaceSize: number }
interface GcEvent {
  readonly gcType: string;
  readonly cost: number;
  readonly beforeGC: { readonly heapSpaceStatistics: readonly SpaceStats[] };
  readonly afterGC: { readonly heapSpaceStatistics: readonly SpaceStats[] };
}

/** What one window between two signals measured. */
export interface ProbeWindow {
  readonly pid: number;
  readonly cpuUs: number;
  readonly wallMs: number;
  /** Per GC kind (Scavenge, MarkSweepCompact, ...): how many, and their pauses in µs (the median too: the max is often the scheduler's). */
  readonly gc: Record<string, { count: number; totalUs: number; maxUs: number; p50Us: number }>;
  /** Bytes allocated in the young generation: what each collection found used, less what the previous one (or the window's start) left, plus what is used at the end beyond the last one's. */
  readonly youngAllocated: number;
  /** Bytes scavenges promoted into the old generation. */
  readonly promoted: number;
  /** The young generation's size (new_space, both semi-spaces) after the window's last GC, bytes: what V8 grew or shrank it to. */
  readonly youngSize: number;
  /** Resident memory as the window ends, bytes. */
  readonly rss: number;
  /** Event-loop delay percentiles, ms. */
  readonly loopDelayMs: { readonly p50: number; readonly p90: number; readonly p99: number; readonly p999: number; readonly max: number };
}

const used = (stats: readonly SpaceStats[], space: string): number => stats.find((s) => s.spaceName === space)?.spaceUsedSize ?? 0;

let window: { profiler: GCProfiler; cpu: NodeJS.CpuUsage; start: number; youngUsed: number } | undefined;

/** Bytes in use in the young generation now (its semi-space and its large objects). */
function youngUsedNow(): number {
  let n = 0;
  for (const s of getHeapSpaceStatistics()) if (s.space_name === 'new_space' || s.space_name === 'new_large_object_space') n += s.space_used_size;
  return n;
}
const delay = monitorEventLoopDelay({ resolution: 1 });
const watchDelay = process.env.LOOP_PROBE_DELAY !== '0';
const promotedOut = process.env.LOOP_PROBE_PROMOTED;
const session = promotedOut ? new Session() : undefined;
session?.connect();

process.on('SIGUSR2', () => {
  if (!window) {
    const profiler = new GCProfiler();
    profiler.start();
    delay.reset();
    if (watchDelay) delay.enable();
    session?.post('HeapProfiler.startSampling', { samplingInterval: 8192, includeObjectsCollectedByMajorGC: true });
    window = { profiler, cpu: process.cpuUsage(), start: performance.now(), youngUsed: youngUsedNow() };
    // $LOOP_PROBE_SNAPSHOT: a heap snapshot 3 s into the load, to see what holds finished requests.
    const snapshot = process.env.LOOP_PROBE_SNAPSHOT;
    if (snapshot) setTimeout(() => writeHeapSnapshot(`${snapshot}.${process.pid}.heapsnapshot`), 3000);
    return;
  }
  const { profiler, cpu, start, youngUsed } = window;
  window = undefined;
  const cpuNow = process.cpuUsage(cpu);
  const youngUsedAtEnd = youngUsedNow();
  delay.disable();
  const events = (profiler.stop()?.statistics ?? []) as unknown as GcEvent[];
  // Samples still in the young generation are mostly the last requests' garbage, not what was
  // promoted: with --expose-gc, two scavenges (after the load has stopped, so nothing is in flight)
  // drop them, and what is left outlived two, as promoted objects do.
  const collect = (globalThis as { gc?: (o: { type: string }) => void }).gc;
  if (session && collect) for (let i = 0; i < 2; i++) collect({ type: 'minor' });
  session?.post('HeapProfiler.stopSampling', (err, r) => {
    if (!err && promotedOut) writeFileSync(`${promotedOut}.${process.pid}`, JSON.stringify(r.profile));
  });
  const gc: ProbeWindow['gc'] = {};
  const pauses: Record<string, number[]> = {};
  // What the young generation held when the window opened, then after each collection: every byte
  // allocated in the window is in what a collection found, or in what is there at the end, less that.
  let youngAllocated = 0;
  let promoted = 0;
  let youngLeft = youngUsed;
  let youngSize = 0;
  for (const e of events) {
    const g = (gc[e.gcType] ??= { count: 0, totalUs: 0, maxUs: 0, p50Us: 0 });
    g.count++;
    g.totalUs += e.cost;
    g.maxUs = Math.max(g.maxUs, e.cost);
    (pauses[e.gcType] ??= []).push(e.cost);
    const young = (x: readonly SpaceStats[]): number => used(x, 'new_space') + used(x, 'new_large_object_space');
    const before = young(e.beforeGC.heapSpaceStatistics);
    const after = young(e.afterGC.heapSpaceStatistics);
    youngAllocated += Math.max(0, before - youngLeft);
    youngLeft = after;
    youngSize = e.afterGC.heapSpaceStatistics.find((x) => x.spaceName === 'new_space')?.spaceSize ?? youngSize;
    if (e.gcType === 'Scavenge') promoted += Math.max(0, used(e.afterGC.heapSpaceStatistics, 'old_space') - used(e.beforeGC.heapSpaceStatistics, 'old_space'));
  }
  for (const [kind, xs] of Object.entries(pauses)) gc[kind]!.p50Us = xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  youngAllocated += Math.max(0, youngUsedAtEnd - youngLeft);
  const ms = (ns: number): number => Math.round(ns / 1e4) / 100;
  const out: ProbeWindow = {
    pid: process.pid,
    cpuUs: cpuNow.user + cpuNow.system,
    wallMs: performance.now() - start,
    gc,
    youngAllocated,
    promoted,
    youngSize,
    rss: process.memoryUsage.rss(),
    loopDelayMs: { p50: ms(delay.percentile(50)), p90: ms(delay.percentile(90)), p99: ms(delay.percentile(99)), p999: ms(delay.percentile(99.9)), max: ms(delay.max) },
  };
  if (process.env.LOOP_PROBE_OUT) appendFileSync(process.env.LOOP_PROBE_OUT, `${JSON.stringify(out)}\n`);
});
