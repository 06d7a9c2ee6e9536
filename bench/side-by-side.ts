// The plain-HTTP path of two or more proxies measured at the same time: each variant (a meshgate
// build, meshgate with other Node options, the bare node:http + undici Pool proxy) runs against one
// upstream under its own wrk, all of them in the same seconds, so that every variant meets the same
// machine. On a shared machine whose load moves from minute to minute, CPU time per request taken
// from runs in turns moved more between two runs of one build than the builds differed; side by side,
// the per-round ratio holds still enough to read. Each round reports, per variant, CPU µs per request
// (/proc, every thread), young-generation bytes allocated per request, scavenges per 100,000 requests
// and GC pause time per 1,000 (bench/loop-probe.ts, preloaded), req/s and p99; the summary gives
// medians and the median of each round's ratio to the first variant. Latency side by side is the
// machine's as much as the proxies': read the ratios of p99, not the figures.
//
//   npx tsc -p . && node dist/bench/side-by-side.js
//   SIDE_VARIANTS='[{"name":"base","bin":"/path/to/other/bin/meshgate.js"},{"name":"new"},{"name":"bare","bare":true}]'
//   SIDE_ROUNDS=6 SIDE_SECONDS=8 SIDE_CONNECTIONS=50; a variant's "nodeArgs" (e.g. ["--max-semi-space-size=64"]).

import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runLoad, type LoadResult } from './load.js';
import { cpuSeconds, runThenStop, tempDir } from './processes.js';
import { median } from './report.js';
import { preflight, startBareProxy, startMeshgate, startUpstream, type Target } from './targets.js';
import type { ProbeWindow } from './loop-probe.js';

interface Variant { readonly name: string; readonly bin?: string; readonly nodeArgs?: readonly string[]; readonly bare?: boolean }
interface Figures { readonly rps: number; readonly p99: number; readonly cpuUs: number; readonly youngBytes: number; readonly scavenges: number; readonly gcUs: number; readonly rssMB: number }

const num = (name: string, dflt: number): number => Number(process.env[name] ?? dflt);
const rounds = num('SIDE_ROUNDS', 6);
const seconds = num('SIDE_SECONDS', 8);
const connections = num('SIDE_CONNECTIONS', 50);
const variants: Variant[] = process.env.SIDE_VARIANTS ? JSON.parse(process.env.SIDE_VARIANTS) as Variant[] : [{ name: 'meshgate' }, { name: 'bare', bare: true }];
const probeArgs = ['--import', new URL('./loop-probe.js', import.meta.url).href];
/** Warm-up requests per variant before the first round (a fresh gateway's JIT settles by about 30,000). */
const WARM_REQUESTS = 60_000;

const load = (t: Target, secs: number): Promise<LoadResult> => runLoad('wrk', { url: t.url, host: t.host, connections, seconds: secs });

const windowsIn = (out: string): string[] => (existsSync(out) ? readFileSync(out, 'utf8').split('\n').filter(Boolean) : []);

/** The window the probe writes after the `known`-th: the one the second signal of a round ends. */
async function nextWindow(out: string, known: number): Promise<ProbeWindow> {
  for (let i = 0; i < 100; i++) {
    const all = windowsIn(out);
    if (all.length > known) return JSON.parse(all[all.length - 1]!) as ProbeWindow;
    await sleep(100);
  }
  throw new Error(`${out}: the probe wrote nothing`);
}

function figures(r: LoadResult, cpu: number, p: ProbeWindow): Figures {
  const n = r.requests || 1;
  const gc = Object.values(p.gc);
  return {
    rps: r.rps,
    p99: r.p99Ms,
    cpuUs: (cpu * 1e6) / n,
    youngBytes: p.youngAllocated / n,
    scavenges: ((p.gc.Scavenge?.count ?? 0) / n) * 1e5,
    gcUs: (gc.reduce((s, g) => s + g.totalUs, 0) / n) * 1000,
    rssMB: p.rss / 1048576,
  };
}

const show = (f: Figures): string =>
  `${Math.round(f.rps)} req/s, p99 ${f.p99.toFixed(1)} ms, ${f.cpuUs.toFixed(1)} µs CPU, ${Math.round(f.youngBytes)} B young, ${f.scavenges.toFixed(0)} scavenges/100k, GC ${Math.round(f.gcUs)} µs/1k`;

async function main(): Promise<void> {
  const dir = await tempDir('meshgate-side-');
  // The probe only measures its window; the loop-delay timer would cost CPU the figures include.
  process.env.LOOP_PROBE_DELAY = '0';
  const upstream = await startUpstream();
  const targets: { v: Variant; t: Target; out: string }[] = [];
  for (const v of variants) {
    const out = join(dir, `${v.name}.jsonl`);
    rmSync(out, { force: true });
    process.env.LOOP_PROBE_OUT = out;
    const nodeArgs = [...(v.nodeArgs ?? []), ...probeArgs];
    const t = v.bare ? await startBareProxy(upstream.port, nodeArgs) : (await startMeshgate(upstream.port, { nodeArgs, ...(v.bin ? { bin: v.bin } : {}) })).http;
    await preflight(t);
    targets.push({ v, t, out });
  }
  for (let n = 0; n < WARM_REQUESTS;) n += Math.min(...(await Promise.all(targets.map((x) => load(x.t, 4)))).map((r) => r.requests));
  console.log(`${rounds} rounds of ${seconds} s, ${targets.length} variants side by side, wrk with ${connections} connections each`);

  const rows: Figures[][] = [];
  for (let round = 0; round < rounds; round++) {
    for (const x of targets) process.kill(x.t.pid!, 'SIGUSR2');
    const cpu0 = targets.map((x) => cpuSeconds(x.t.pid) ?? NaN);
    const results = await Promise.all(targets.map((x) => load(x.t, seconds)));
    const cpu1 = targets.map((x) => cpuSeconds(x.t.pid) ?? NaN);
    const known = targets.map((x) => windowsIn(x.out).length);
    for (const x of targets) process.kill(x.t.pid!, 'SIGUSR2');
    const windows = await Promise.all(targets.map((x, i) => nextWindow(x.out, known[i]!)));
    const row = targets.map((_, i) => figures(results[i]!, cpu1[i]! - cpu0[i]!, windows[i]!));
    rows.push(row);
    console.log(`round ${round + 1}`);
    for (const [i, x] of targets.entries()) console.log(`  ${x.v.name.padEnd(10)} ${show(row[i]!)}`);
  }

  console.log(`\nmedians; in brackets the median of each round's ratio to ${targets[0]!.v.name}`);
  for (const [i, x] of targets.entries()) {
    const med = (k: keyof Figures): number => median(rows.map((r) => r[i]![k]));
    const ratio = (k: keyof Figures): string => median(rows.map((r) => r[i]![k] / r[0]![k])).toFixed(3);
    console.log(
      `  ${x.v.name.padEnd(10)} ${Math.round(med('rps'))} req/s (${ratio('rps')}), p99 ${med('p99').toFixed(2)} ms (${ratio('p99')}), ` +
        `${med('cpuUs').toFixed(1)} µs CPU/request (${ratio('cpuUs')}), ${Math.round(med('youngBytes'))} B young/request, ` +
        `${med('scavenges').toFixed(1)} scavenges/100k, GC ${Math.round(med('gcUs'))} µs/1k, RSS ${Math.round(med('rssMB'))} MB`,
    );
  }
}

runThenStop(main);
