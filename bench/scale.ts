// The scale rows of `npm run bench`: the generated configuration of bench/scale-config.ts at each
// size (BENCH_SCALE_SIZES, default 10,100,1000,10000 services; `none` leaves them out), each size in a
// process of its own (bench/scale-size.ts) with the gateway's NODE_OPTIONS. Printed as a table against size, bars of build time,
// memory and edit → served against size, and the route lookup rate at the largest size as a ratio of
// the smallest's; then the served pair (scale-served.ts). Idle CPU is measured for BENCH_SCALE_IDLE_SECONDS (default 30) at the largest size
// and 5 s at the others. `node dist/bench/scale.js` runs these rows alone.

import { execFile } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { GATEWAY_NODE_OPTIONS } from '../src/gateway/node-options.js';
import type { ScaleSample } from './scale-size.js';
import { pickTool } from './load.js';
import { servedScale } from './scale-served.js';
import { startUpstream, stopAll } from './targets.js';

const SIZE_SCRIPT = fileURLToPath(new URL('./scale-size.js', import.meta.url));

export function scaleSizes(): number[] {
  const text = process.env.BENCH_SCALE_SIZES ?? '10,100,1000,10000';
  if (text === 'none' || text === '') return [];
  const sizes = text.split(',').map(Number);
  if (sizes.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`BENCH_SCALE_SIZES=${text} is not a list of service counts`);
  return sizes;
}

function measure(services: number, idleSeconds: number): Promise<ScaleSample> {
  return new Promise((resolve, reject) => {
    // With the gateway's V8 options (its young generation is larger than the default), so that the
    // memory figures are those of a gateway.
    const env = { ...process.env, NODE_OPTIONS: process.env.BENCH_GATEWAY_NODE_OPTIONS ?? GATEWAY_NODE_OPTIONS };
    execFile(process.execPath, ['--expose-gc', SIZE_SCRIPT, String(services), String(idleSeconds)], { maxBuffer: 1 << 20, env }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`scale ${services}: ${stderr.trim() || err.message}`));
      resolve(JSON.parse(stdout.trim().split('\n').pop()!) as ScaleSample);
    });
  });
}

export async function runScale(sizes: readonly number[]): Promise<ScaleSample[]> {
  const samples: ScaleSample[] = [];
  const largest = Math.max(...sizes);
  const idle = Number(process.env.BENCH_SCALE_IDLE_SECONDS ?? 30);
  for (const n of sizes) {
    process.stdout.write(`scale: ${n} services … `);
    const started = performance.now();
    const s = await measure(n, n === largest ? idle : 5);
    console.log(`built in ${s.buildMs} ms, edit served in ${s.editServedMs} ms (${((performance.now() - started) / 1000).toFixed(0)} s for this size)`);
    samples.push(s);
  }
  return samples;
}

export function scaleTable(samples: readonly ScaleSample[]): string {
  const head = ['services', 'resources', 'read (ms)', 'build (ms)', 'read / build cpu (ms)', 'then analysis: ms / cpu ms', 'heap (MB)', 'rss (MB)', 'edit → served (ms, median / most)', 'edit: rebuild (ms)', 'rebuild cpu (ms)', `heap / rss after ${samples[0]?.reloads ?? 10} edits (MB)`, 'idle cpu (% of a core)', 'heap / rss after idle (MB)', 'lookups per cpu-s (10 hosts)', '/ at 10 services', 'lookups per cpu-s (1,000 hosts)'];
  const rows = samples.map((s) =>
    [s.services, s.resources, s.loadMs, s.buildMs, `${s.loadCpuMs} / ${s.buildCpuMs}`, `${s.analysisMs} / ${s.analysisCpuMs}`, s.heapMB, s.rssMB, `${s.editServedMs} / ${s.editServedMaxMs}`, s.editBuildMs, s.editBuildCpuMs, `${s.heapAfterReloadsMB} / ${s.rssAfterReloadsMB}`, `${s.idleCpuPercent} (${s.idleSeconds} s)`, `${s.heapAfterIdleMB} / ${s.rssAfterIdleMB}`, s.lookupsPerSecond, `${(s.lookupsPerSecond / s.smallLookupsPerSecond).toFixed(2)}×`, s.spreadLookupsPerSecond].map(String),
  );
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padStart(widths[i]!)).join(' | ')} |`;
  const out = [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)];
  out.push('', ...plot('build (ms)', samples, (s) => s.buildMs), ...plot('rss after edits (MB)', samples, (s) => s.rssAfterReloadsMB), ...plot('edit → served (ms)', samples, (s) => s.editServedMs));
  const large = samples[samples.length - 1];
  if (large) {
    const ns = (rate: number) => 1e9 / rate;
    out.push(`route lookups at ${large.services} services / at 10: ${(large.lookupsPerSecond / large.smallLookupsPerSecond).toFixed(2)}×, ${ns(large.lookupsPerSecond).toFixed(0)} against ${ns(large.smallLookupsPerSecond).toFixed(0)} ns of CPU a lookup (the lookup alone, both configurations in one process, rounds in turn, median of 11; requests to 10 hosts in both: host by one map probe, then the host's own routes; the difference is where the objects lie in a large heap, not the index: the served pair below is what a request costs)`);
    out.push(`  with requests to 1,000 hosts of ${large.services}: ${large.spreadLookupsPerSecond} lookups per CPU-second, ${(1e6 / large.spreadLookupsPerSecond).toFixed(1)} µs each (another virtual host each time: memory cache misses, not the index)`);
  }
  out.push('read: the folder parsed from scratch; build: the first snapshot, up to serving; analysis: the analyzers run on it, which run once it is swapped in; edit: one service of a 100-service file changed on disk, seen by the file watch, that file read again and the snapshot rebuilt, reusing what the edit did not touch (median and most of the edits; "rebuild" is the build alone); cpu: user + system time of this process, which load from other processes inflates far less than wall time; heap / rss: after a full collection, right after the edits and again after the idle period (V8 gives back committed pages once allocation stops).');
  return out.join('\n');
}

/** One bar per size, scaled to the largest value: a plot of `what` against size in plain text. */
function plot(what: string, samples: readonly ScaleSample[], value: (s: ScaleSample) => number): string[] {
  const most = Math.max(1, ...samples.map(value));
  const label = Math.max(...samples.map((s) => String(s.services).length));
  return [`${what} against services:`, ...samples.map((s) => `  ${String(s.services).padStart(label)} ${'#'.repeat(Math.max(1, Math.round((value(s) / most) * 50)))} ${value(s)}`)];
}

// Run directly: the scale rows alone, without the rest of the bench.
// The served pair follows, with an upstream and the load generator of its own.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const started = performance.now();
  const sizes = scaleSizes();
  const table = scaleTable(await runScale(sizes));
  const upstream = await startUpstream();
  try {
    const served = await servedScale({ tool: pickTool(), warmup: 2, warmRequests: 50_000, connections: 50, seconds: 10 }, upstream, sizes);
    console.log(table);
    for (const line of [...served.lines, ...served.problems]) console.log(line);
  } finally {
    await stopAll();
  }
  console.log(`scale rows: ${((performance.now() - started) / 1000).toFixed(0)} s`);
}
