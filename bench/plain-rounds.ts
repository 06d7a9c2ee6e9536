// The plain-HTTP rows that the p99 target compares: meshgate, @fastify/http-proxy and the bare
// node:http + undici Pool proxy. A p99 of a few milliseconds over one 10 s run moves by 2–3 ms from
// one run to the next even on a quiet machine (docs/benchmarks.md, "The plain-HTTP tail: rounds in
// turns"), more than the proxies differ by, so one run each would let one noisy run decide the row.
// As the observability pair does for its two gateways (observability-pair.ts):
//
// - the three are up together and take turns in runs of half a row (at least 2 s), the order
//   rotated each round so that each runs first, second and third equally often;
// - all are warmed alike, by requests, in turns, until each has served every row's warm-up;
// - they are started afresh BENCH_PLAIN_STARTS times (default 2), three rounds each: a process keeps
//   some traits for its whole life (the young generation it settles at), so one start would measure
//   one draw of them;
// - each row is the medians over all rounds of each figure (req/s, p50, p90, p99, cores), its errors
//   the sum; the ratios are then computed from those rows as for every other row, and a line gives
//   each proxy's p99 per round and the median of meshgate's per-round p99 ratios (paired within a
//   round, so that the machine's drift over minutes cancels).

import { runLoad, type LoadResult, type LoadTool } from './load.js';
import { cpuSeconds } from './processes.js';
import { quantile, type LoadRow } from './report.js';
import { preflight, startBareProxy, startFastifyProxy, startMeshgate, type Target } from './targets.js';

export interface RoundSettings {
  readonly tool: LoadTool;
  /** Seconds of each warm-up run (0: no warm-up). */
  readonly warmup: number;
  /** Requests each target serves before it is measured. */
  readonly warmRequests: number;
  readonly connections: number;
  /** Seconds of a whole row; a round's runs are half of it (at least 2 s). */
  readonly seconds: number;
}

const STARTS = Number(process.env.BENCH_PLAIN_STARTS || 2);
/** As many rounds per start as targets: each takes each place in the order once. */
const PROXIES = 3;

interface Run {
  readonly result: LoadResult;
  readonly cores: number | undefined;
}

/** Warms targets in turns, the same number of runs each, until each has served `warmRequests` (at most five runs). */
export async function warmInTurns(s: RoundSettings, targets: readonly Target[]): Promise<void> {
  const served = targets.map(() => 0);
  for (let i = 0; s.warmup > 0 && i < 5 && Math.min(...served) < s.warmRequests; i++) {
    for (const [j, t] of targets.entries()) served[j]! += (await runLoad(s.tool, { url: t.url, host: t.host, ...(t.hosts ? { hosts: t.hosts } : {}), connections: s.connections, seconds: s.warmup })).requests;
  }
}

async function measured(s: RoundSettings, t: Target, seconds: number): Promise<Run> {
  const cpu0 = cpuSeconds(t.pid);
  const t0 = performance.now();
  const result = await runLoad(s.tool, { url: t.url, host: t.host, connections: s.connections, seconds });
  const cpu1 = cpuSeconds(t.pid);
  const wall = (performance.now() - t0) / 1000;
  return { result, cores: cpu0 === undefined || cpu1 === undefined ? undefined : (cpu1 - cpu0) / wall };
}

/** One row from a target's runs: the median of each figure, every error. */
function medianRow(target: string, runs: readonly Run[]): LoadRow {
  const m = (f: (r: Run) => number | undefined): number => quantile(runs.map(f).filter((x): x is number => x !== undefined), 0.5);
  const cores = runs.every((r) => r.cores !== undefined) ? m((r) => r.cores) : undefined;
  const result: LoadResult = {
    tool: runs[0]!.result.tool,
    requests: runs.reduce((n, r) => n + r.result.requests, 0),
    rps: m((r) => r.result.rps),
    p50Ms: m((r) => r.result.p50Ms),
    p90Ms: m((r) => r.result.p90Ms),
    p99Ms: m((r) => r.result.p99Ms),
    errors: runs.reduce((n, r) => n + r.result.errors, 0),
    errorDetail: runs.map((r) => r.result.errorDetail).filter(Boolean).join('; '),
  };
  return { kind: 'http', target, result, cores };
}

/**
 * Runs the three in turns. Returns their rows (meshgate's labelled `meshgateLabel`) and a line on
 * the p99s: each proxy's range over the rounds, and the medians of meshgate's per-round ratios.
 */
export async function measurePlainRounds(s: RoundSettings, upstreamPort: number, meshgateLabel: string): Promise<{ rows: LoadRow[]; p99: string }> {
  const seconds = Math.max(2, Math.round(s.seconds / 2));
  const labels: string[] = [];
  const runs: Run[][] = [];
  process.stdout.write(`  plain HTTP in turns: meshgate, @fastify/http-proxy and the bare proxy started afresh ${STARTS} times, ${PROXIES} rounds of ${seconds}s each per start ... `);
  for (let start = 0; start < STARTS; start++) {
    const gateway = await startMeshgate(upstreamPort);
    const targets = [{ ...gateway.http, name: meshgateLabel }, await startFastifyProxy(upstreamPort), await startBareProxy(upstreamPort)];
    try {
      for (const t of targets) await preflight(t);
      if (labels.length === 0) labels.push(...targets.map((t) => t.name));
      await warmInTurns(s, targets);
      for (let round = 0; round < PROXIES; round++) {
        const got: Run[] = [];
        for (let k = 0; k < targets.length; k++) {
          const i = (k + round + start) % targets.length;
          got[i] = await measured(s, targets[i]!, seconds);
        }
        runs.push(got);
      }
    } finally {
      await Promise.all(targets.map((t) => t.stop()));
    }
  }
  const rows = labels.map((label, i) => medianRow(label, runs.map((r) => r[i]!)));
  console.log(rows.map((r) => `${Math.round(r.result.rps)}`).join(', ') + ' req/s (medians)');
  const range = (i: number): string => {
    const xs = runs.map((r) => r[i]!.result.p99Ms);
    return `${labels[i]} ${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`;
  };
  const ratio = (i: number): string => `${quantile(runs.map((r) => r[0]!.result.p99Ms / Math.max(r[i]!.result.p99Ms, 0.001)), 0.5).toFixed(2)}× ${labels[i]}`;
  const p99 = `${labels.map((_, i) => range(i)).join(', ')} ms; meshgate's per-round ratio, median: ${ratio(1)}, ${ratio(2)}; rows are medians of ${runs.length} rounds of ${seconds}s in turns, ${STARTS} start${STARTS === 1 ? '' : 's'}`;
  return { rows, p99 };
}
