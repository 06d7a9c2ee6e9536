// The CPU time per request that Istio metrics plus 1 % tracing cost the gateway, measured where
// req/s cannot be (a machine others are loading), and taken apart: which part of "on" costs what.
// Gateways in several modes (ObservabilityMode: both off, metrics alone, tracing 1 % alone, the
// tracing SDK loaded with sampling ~0, both on; tracing to a loopback OTLP sink; `log`, the access
// log alone, not among the default modes) run side by side;
// one at a time takes a short slice of load at a fixed rate, in rotating order, and each slice's CPU
// is charged to it: every thread's running time from /proc (to the nanosecond), the main thread
// apart from the helper threads (V8's and libuv's). Each gateway is preloaded with loop-probe.ts, which
// counts the slice's garbage collections, their pauses and the bytes allocated. A round (one slice
// of each mode) gives each mode's ratio to "off"; two processes of the same build can differ by a
// tenth in CPU per request for their whole life, so the set is started afresh several times and the
// figure is the median over all rounds of all sets.
//
//   npx tsc -p . && node dist/bench/observability-cost.js
//   OBSERVABILITY_MODES=on,off OBSERVABILITY_PAIRS=4 OBSERVABILITY_SLICES=8 OBSERVABILITY_RATE=500 OBSERVABILITY_SLICE_SECONDS=2 node dist/bench/observability-cost.js
//   OBSERVABILITY_BIN=<other build's bin/meshgate.js>: every mode twice, this build's and that one's
//   ("mode@other"), and each mode's CPU per request of this build over that one's.
//   OBSERVABILITY_OTHER_NODE_ARGS="<node flags>": the same, "mode@other" being this build with these
//   flags on its command line too (after NODE_OPTIONS, so they win): an A/B of V8 settings, e.g.
//   "--min-semi-space-size=32". With OBSERVABILITY_BIN, that build gets them.
//   OBSERVABILITY_PROFILE=DIR: the gateways run under --cpu-prof, their profiles written into DIR when they stop.
//   OBSERVABILITY_RATE=0: each slice saturates the gateway (wrk, 50 connections, as the bench's rows
//   do) instead of a fixed rate: the load of the pair in `npm run bench`.
//   OBSERVABILITY_TOGETHER=1: a round's slices run at the same time, every gateway under its own load
//   at once, instead of one after another: on a machine others load, the load that changes from one
//   second to the next then falls on every mode alike (at saturation they share the cores, so each
//   gets less and the figure is CPU per request under that contention).

import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ProbeWindow } from './loop-probe.js';
import { pickTool, runLoad, type LoadResult } from './load.js';
import { runPaced } from './paced-load.js';
import { tempDir } from './processes.js';
import { median } from './report.js';
import { startMeshgate, startSpanSink, startUpstream, stopAll, type ObservabilityMode, type Target } from './targets.js';

const sets = Number(process.env.OBSERVABILITY_PAIRS ?? 4);
const slices = Number(process.env.OBSERVABILITY_SLICES ?? 8);
const rate = Number(process.env.OBSERVABILITY_RATE ?? 500);
const seconds = Number(process.env.OBSERVABILITY_SLICE_SECONDS ?? 2);
const profile = process.env.OBSERVABILITY_PROFILE;
const otherBin = process.env.OBSERVABILITY_BIN;
const otherNodeArgs = (process.env.OBSERVABILITY_OTHER_NODE_ARGS ?? '').split(' ').filter(Boolean);
const hasOther = otherBin !== undefined || otherNodeArgs.length > 0;
// All gateways take their slice of a round at the same time, each its own load, rather than in turn:
// what the machine's other work does to CPU per request then falls on every mode alike.
const together = process.env.OBSERVABILITY_TOGETHER === '1';
// A mode may be given twice as `off#2` (a second gateway of that mode): what two processes of the same build differ by.
const modes = (process.env.OBSERVABILITY_MODES ?? 'off,metrics,tracing,sdk,on').split(',');

const WARM_REQUESTS = 20_000;

/** A slice's load: paced at `rate`, or (rate 0) as many requests as 50 connections get answered. */
function load(t: Target, secs: number): Promise<LoadResult> {
  return rate > 0 ? runPaced({ url: t.url, host: t.host, connections: 8, seconds: secs, rate }) : runLoad(pickTool(), { url: t.url, host: t.host, connections: 50, seconds: secs });
}
const LABELS: Record<ObservabilityMode, string> = { off: 'both off', metrics: 'metrics only', tracing: 'tracing 1 % only', sdk: 'tracing SDK, sampling ~0', on: 'metrics + tracing 1 %', log: 'access log on (Istio JSON keys)' };
const probeArgs = ['--import', new URL('./loop-probe.js', import.meta.url).href];

/**
 * The threads' running time, ns: the main thread (JavaScript, and the GC's pauses) apart from the
 * others, which are V8's workers (concurrent marking and sweeping, compiling) and libuv's pool; this
 * Node names none of them, so they are told apart only by being the main thread or not.
 */
interface Threads { main: number; helpers: number; count: number }

function threadTimes(pid: number): Threads {
  const t: Threads = { main: 0, helpers: 0, count: 0 };
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      if (Number(tid) === pid) t.main += ns;
      else t.helpers += ns;
      t.count++;
    } catch {
      // a thread that ended since the listing: its time is gone from the sum either way
    }
  }
  return t;
}

/** One slice's figures, per request (µs, bytes, per 1,000 requests for GC counts). */
interface Slice {
  readonly cpu: number;
  readonly main: number;
  readonly helpers: number;
  readonly threads: number;
  readonly gcPause: number;
  readonly scavenges: number;
  readonly majors: number;
  readonly young: number;
  readonly promoted: number;
  readonly rssMB: number;
  readonly youngMB: number;
}

interface Gateway { readonly name: string; readonly mode: ObservabilityMode; readonly t: Target; readonly out: string; readonly stop: () => Promise<void> }

async function probeLine(out: string, before: number): Promise<ProbeWindow> {
  for (let i = 0; i < 100; i++) {
    const all = existsSync(out) ? readFileSync(out, 'utf8').split('\n').filter(Boolean) : [];
    if (all.length > before) return JSON.parse(all[all.length - 1]!) as ProbeWindow;
    await sleep(50);
  }
  throw new Error(`${out}: the probe wrote nothing`);
}

async function slice(g: Gateway): Promise<Slice> {
  const pid = g.t.pid!;
  const lines = existsSync(g.out) ? readFileSync(g.out, 'utf8').split('\n').filter(Boolean).length : 0;
  const a = threadTimes(pid);
  process.kill(pid, 'SIGUSR2');
  const r = await load(g.t, seconds);
  process.kill(pid, 'SIGUSR2');
  const b = threadTimes(pid);
  if (r.errors > 0) throw new Error(`${g.name}: ${r.errors} failed requests (${r.errorDetail})`);
  const p = await probeLine(g.out, lines);
  const n = r.requests;
  const us = (k: 'main' | 'helpers'): number => (b[k] - a[k]) / 1e3 / n;
  const gc = Object.entries(p.gc);
  return {
    cpu: us('main') + us('helpers'),
    main: us('main'),
    helpers: us('helpers'),
    threads: b.count,
    gcPause: gc.reduce((s, [, x]) => s + x.totalUs, 0) / n,
    scavenges: ((p.gc['Scavenge']?.count ?? 0) * 1000) / n,
    majors: (gc.filter(([k]) => k !== 'Scavenge').reduce((s, [, x]) => s + x.count, 0) * 1000) / n,
    young: p.youngAllocated / n,
    promoted: p.promoted / n,
    rssMB: p.rss / 1048576,
    youngMB: p.youngSize / 1048576,
  };
}

async function main(): Promise<void> {
  const sink = await startSpanSink();
  const otlpPort = sink.port;
  const upstream = await startUpstream();
  const dir = await tempDir('meshgate-observability-');
  const variants = modes.flatMap((name) => {
    const mode = name.split('#')[0] as ObservabilityMode;
    return [{ name, mode, bin: undefined as string | undefined, extra: [] as string[] }, ...(hasOther ? [{ name: `${name}@other`, mode, bin: otherBin, extra: otherNodeArgs }] : [])];
  });
  const bySlice = new Map<string, Slice[]>(variants.map((v) => [v.name, []]));
  const ratios = new Map<string, number[]>(variants.map((v) => [v.name, []]));
  /** This build's CPU per request over the other build's, same mode, by round (OBSERVABILITY_BIN). */
  const builds = new Map<string, number[]>(modes.map((m) => [m, []]));
  const baseline = (name: string): string => (name.endsWith('@other') ? 'off@other' : 'off');
  process.env.LOOP_PROBE_DELAY = '0';
  try {
    for (let set = 0; set < sets; set++) {
      const gateways: Gateway[] = [];
      // The start order turns with each set, so that no mode is always the first started (and the
      // longest idle before the slices) or always follows the same one.
      for (const v of variants.map((_, i) => variants[(i + set) % variants.length]!)) {
        const out = join(dir, `${v.name}-${set}.jsonl`);
        rmSync(out, { force: true });
        process.env.LOOP_PROBE_OUT = out;
        const nodeArgs = [...v.extra, ...probeArgs, ...(profile ? ['--cpu-prof', '--cpu-prof-dir', profile, '--cpu-prof-name', `observability-${v.name}-${set}.cpuprofile`] : [])];
        const gw = await startMeshgate(upstream.port, { observability: { mode: v.mode, otlpPort }, nodeArgs, ...(v.bin ? { bin: v.bin } : {}) });
        gateways.push({ name: v.name, mode: v.mode, t: gw.http, out, stop: gw.stop });
      }
      // Warm-up, by requests rather than seconds (a loaded machine serves few in a given time): the
      // JIT settles, pools fill, the tracing SDK is loaded. In turns, a quarter at a time, so that none
      // has idled much longer than the others when the slices start.
      for (let q = 0; q < 4; q++) for (const g of gateways) await (rate > 0 ? runPaced({ url: g.t.url, host: g.t.host, connections: 8, seconds: WARM_REQUESTS / 4 / 2000, rate: 2000 }) : load(g.t, 2));
      for (let i = 0; i < slices; i++) {
        const round = new Map<string, Slice>();
        const order = gateways.map((_, j) => gateways[(i + j) % gateways.length]!);
        const taken = together ? await Promise.all(order.map((g) => slice(g))) : [];
        if (!together) for (const g of order) taken.push(await slice(g));
        order.forEach((g, j) => {
          round.set(g.name, taken[j]!);
          bySlice.get(g.name)!.push(taken[j]!);
        });
        for (const [name, s] of round) {
          const off = round.get(baseline(name));
          if (off) ratios.get(name)!.push(s.cpu / off.cpu);
          const other = round.get(`${name}@other`);
          if (other) builds.get(name)!.push(s.cpu / other.cpu);
        }
      }
      console.log(`set ${set + 1}: ${variants.map((v) => `${v.name} ${median(ratios.get(v.name)!.slice(-slices)).toFixed(3)}×`).join(', ')} (CPU per request / off, median of its ${slices} rounds)`);
      const own = (v: { name: string }, k: keyof Slice): number => median(bySlice.get(v.name)!.slice(-slices).map((x) => x[k]));
      console.log(`       ${variants.map((v) => `${v.name} ${own(v, 'cpu').toFixed(1)} µs, ${own(v, 'scavenges').toFixed(2)} scavenges/1k, young ${own(v, 'youngMB').toFixed(1)} MB`).join('; ')}`);
      for (const g of gateways) await g.stop();
    }
    const f = (x: number, d = 1): string => x.toFixed(d);
    console.log(`\n${sets} sets × ${slices} rounds, ${seconds} s slices ${rate > 0 ? `at ${rate} req/s` : 'saturated (50 connections)'}${together ? ', every gateway at once' : ', one gateway at a time'}; per request: CPU µs (all threads, the main thread, the others), GC pause µs; per 1,000 requests: scavenges, mark-compacts; bytes allocated (young generation) and promoted per request; the young generation's size V8 had set it to`);
    console.log('| mode | CPU / off | CPU µs | main µs | helpers µs | threads | GC pause µs | scavenges /1k | mark-compacts /1k | allocated B | promoted B | young gen MB | RSS MB |');
    console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const v of variants) {
      const s = bySlice.get(v.name)!;
      const m = (k: keyof Slice): number => median(s.map((x) => x[k]));
      console.log(`| ${v.name === v.mode ? LABELS[v.mode] : `${LABELS[v.mode]} (${v.name})`} | ${f(median(ratios.get(v.name)!), 3)}× | ${f(m('cpu'))} | ${f(m('main'))} | ${f(m('helpers'))} | ${f(m('threads'), 0)} | ${f(m('gcPause'), 2)} | ${f(m('scavenges'), 2)} | ${f(m('majors'), 3)} | ${f(m('young'), 0)} | ${f(m('promoted'), 0)} | ${f(m('youngMB'), 1)} | ${f(m('rssMB'), 0)} |`);
    }
    if (hasOther) console.log(`this build / the other${otherNodeArgs.length > 0 ? ` (${otherNodeArgs.join(' ')})` : ''}: ${modes.map((m) => `${m} ${f(median(builds.get(m)!), 3)}×`).join(', ')} (CPU per request, median of ${sets * slices} rounds)`);
    console.log(`${sink.batches()} span batches exported to the sink`);
  } finally {
    await sink.close();
    await stopAll();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
