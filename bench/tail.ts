// The plain-HTTP latency tail, measured so that a loaded machine does not decide it: meshgate (one
// or more variants: builds, Node options) and the bare node:http + undici Pool proxy run side by
// side against one upstream, and take turns under the same load, several rounds, the order rotated
// each round. Each run reports, besides the load generator's figures, what loop-probe.ts recorded
// inside the proxy: CPU time per request, GC pauses per 1000 requests, young-generation bytes
// allocated per request, and the event loop's delay. The summary gives medians over the rounds and,
// for latency, the median of each round's ratio to the bare proxy measured minutes apart at most.
//
//   npx tsc -p . && node dist/bench/tail.js
//   TAIL_ROUNDS=6 TAIL_SECONDS=10 TAIL_WARMUP=3 TAIL_CONNECTIONS=50 TAIL_RATE=0 (0: wrk saturates;
//   N: the paced client at N req/s) TAIL_FASTIFY=1 (add @fastify/http-proxy)
//   TAIL_VARIANTS='[{"name":"base","bin":"/path/to/other/bin/meshgate.js"},{"name":"semi","nodeArgs":["--max-semi-space-size=8"]}]'

import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pickTool, runLoad, type LoadResult } from './load.js';
import { runPaced } from './paced-load.js';
import { runThenStop, tempDir } from './processes.js';
import { preflight, startBareProxy, startFastifyProxy, startMeshgate, startUpstream, type Target } from './targets.js';
import type { ProbeWindow } from './loop-probe.js';

interface Variant { readonly name: string; readonly bin?: string; readonly nodeArgs?: readonly string[] }
interface Run { readonly target: string; readonly load: LoadResult; readonly probe: ProbeWindow }

const num = (name: string, dflt: number): number => Number(process.env[name] ?? dflt);
const rounds = num('TAIL_ROUNDS', 6);
const seconds = num('TAIL_SECONDS', 10);
const warmup = num('TAIL_WARMUP', 3);
const connections = num('TAIL_CONNECTIONS', 50);
const rate = num('TAIL_RATE', 0);
const variants: Variant[] = process.env.TAIL_VARIANTS ? JSON.parse(process.env.TAIL_VARIANTS) as Variant[] : [{ name: 'meshgate' }];
const BARE = 'bare';
const probeArgs = ['--import', new URL('./loop-probe.js', import.meta.url).href];

async function load(t: Target, secs: number): Promise<LoadResult> {
  const opts = { url: t.url, host: t.host, connections, seconds: secs };
  return rate > 0 ? runPaced({ ...opts, rate }) : runLoad(pickTool(), opts);
}

/** One measured run: warm-up, then the probe's window around the load. */
async function measure(name: string, t: Target, out: string): Promise<Run> {
  await load(t, warmup);
  const lines = existsSync(out) ? readFileSync(out, 'utf8').split('\n').filter(Boolean).length : 0;
  process.kill(t.pid!, 'SIGUSR2');
  await sleep(50);
  const result = await load(t, seconds);
  process.kill(t.pid!, 'SIGUSR2');
  for (let i = 0; i < 100; i++) {
    const all = existsSync(out) ? readFileSync(out, 'utf8').split('\n').filter(Boolean) : [];
    if (all.length > lines) return { target: name, load: result, probe: JSON.parse(all[all.length - 1]!) as ProbeWindow };
    await sleep(100);
  }
  throw new Error(`${name}: the probe wrote nothing`);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function figures(r: Run): Record<string, number> {
  const n = r.load.requests || 1;
  const gc = Object.values(r.probe.gc);
  const scavenge = r.probe.gc.Scavenge;
  return {
    rps: r.load.rps,
    p50: r.load.p50Ms,
    p99: r.load.p99Ms,
    cpuUsPerReq: r.probe.cpuUs / n,
    gcUsPer1k: (gc.reduce((s, g) => s + g.totalUs, 0) / n) * 1000,
    scavengesPer1k: ((scavenge?.count ?? 0) / n) * 1000,
    majorPer1k: (gc.filter((g) => g !== scavenge).reduce((s, g) => s + g.count, 0) / n) * 1000,
    gcMaxMs: Math.max(0, ...gc.map((g) => g.maxUs)) / 1000,
    scavengeP50Ms: (scavenge?.p50Us ?? 0) / 1000,
    majorMaxMs: Math.max(0, ...gc.filter((g) => g !== scavenge).map((g) => g.maxUs)) / 1000,
    youngBytesPerReq: r.probe.youngAllocated / n,
    promotedBytesPerReq: r.probe.promoted / n,
    loopP90: r.probe.loopDelayMs.p90,
    loopP99: r.probe.loopDelayMs.p99,
    loopP999: r.probe.loopDelayMs.p999,
    loopMax: r.probe.loopDelayMs.max,
    rssMB: r.probe.rss / 1048576,
  };
}

const fmt = (f: Record<string, number>): string => Object.entries(f).map(([k, v]) => `${k} ${v < 10 ? v.toFixed(2) : Math.round(v)}`).join('  ');

async function main(): Promise<void> {
  const dir = await tempDir('meshgate-tail-');
  const upstream = await startUpstream();
  const targets: { name: string; t: Target; out: string }[] = [];
  const probeOut = (name: string): string => {
    const out = join(dir, `${name}.jsonl`);
    rmSync(out, { force: true });
    process.env.LOOP_PROBE_OUT = out;
    return out;
  };
  for (const v of variants) {
    const out = probeOut(v.name);
    const gw = await startMeshgate(upstream.port, { nodeArgs: [...(v.nodeArgs ?? []), ...probeArgs], ...(v.bin ? { bin: v.bin } : {}) });
    targets.push({ name: v.name, t: gw.http, out });
  }
  let out = probeOut(BARE);
  targets.push({ name: BARE, t: await startBareProxy(upstream.port, probeArgs), out });
  if (process.env.TAIL_FASTIFY === '1') {
    out = probeOut('fastify');
    targets.push({ name: 'fastify', t: await startFastifyProxy(upstream.port, probeArgs), out });
  }
  for (const x of targets) await preflight(x.t);
  console.log(`${rounds} rounds × ${targets.length} targets, ${rate > 0 ? `paced ${rate} req/s` : pickTool()}, ${connections} connections, ${warmup}+${seconds} s each`);

  const runs: Run[][] = [];
  for (let round = 0; round < rounds; round++) {
    const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
    const row: Run[] = [];
    for (const x of order) {
      const r = await measure(x.name, x.t, x.out);
      row.push(r);
      console.log(`round ${round + 1} ${x.name.padEnd(10)} ${fmt(figures(r))}`);
    }
    runs.push(row);
  }

  console.log('\nmedians over the rounds; "/bare": the median of each round\'s ratio to the bare proxy');
  for (const x of targets) {
    const mine = runs.map((row) => row.find((r) => r.target === x.name)!);
    const bare = runs.map((row) => row.find((r) => r.target === BARE)!);
    const keys = Object.keys(figures(mine[0]!));
    const med: Record<string, number> = {};
    for (const k of keys) med[k] = median(mine.map((r) => figures(r)[k]!));
    for (const k of ['rps', 'p99', 'cpuUsPerReq', 'loopP99']) med[`${k}/bare`] = median(mine.map((r, i) => figures(r)[k]! / figures(bare[i]!)[k]!));
    console.log(`${x.name.padEnd(10)} ${fmt(med)}`);
  }
}

runThenStop(main);
