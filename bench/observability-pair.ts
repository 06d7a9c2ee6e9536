// The observability pair of `npm run bench`: meshgate with Istio metrics plus 1 % of requests traced
// to an OTLP sink, against both off, in req/s and CPU per request. What tells them apart is a few
// percent, less than a machine drifts over a 10 s row and less than two processes of the same build
// differ by for their whole life (docs/benchmarks.md, "The cost of observability"), so the pair is
// not two rows back to back like the others:
//
// - the two gateways take turns in short runs, each round of a pair in the order its gateways were
//   started and warmed, the next one reversed (on off, off on; then off on, on off for the next
//   pair), so that neither is always the one that idled longest before its run;
// - both are warmed alike, by requests: in turns, the same number of runs each, until both have
//   served as many as every other row's warm-up (an unsettled JIT costs several times the CPU);
// - the two are started afresh for every pair, "on" first in half of them, and there are enough
//   pairs (BENCH_OBSERVABILITY_PAIRS, default 8) that one pair of lucky or unlucky processes cannot
//   move the median far; the spread over the pairs is printed with it.

import { runLoad, type LoadTool } from './load.js';
import { preciseCpuSeconds } from './processes.js';
import { quantile, type LoadRow } from './report.js';
import { warmInTurns, type RoundSettings } from './rounds.js';
import { preflight, startMeshgate, startSpanSink, type MeshgateTargets } from './targets.js';

export const OBSERVED = 'meshgate, metrics + tracing 1 %';
export const UNOBSERVED = 'meshgate, metrics and tracing off';

/** As the plain rounds' settings, but the pair's runs are a third of a row (at least 2 s). */
export type PairSettings = RoundSettings;

/** Gateways started afresh this many times (BENCH_OBSERVABILITY_PAIRS), rounds (one run each) per start. */
const PAIRS = Number(process.env.BENCH_OBSERVABILITY_PAIRS || 8);
const ROUNDS_PER_PAIR = 2;

type Mode = 'on' | 'off';
const other = (m: Mode): Mode => (m === 'on' ? 'off' : 'on');

/** One run's req/s and CPU seconds per request (from the scheduler's running time of every thread, to the ns). */
interface Run {
  readonly row: LoadRow;
  readonly cpuPerRequest: number;
}

async function measured(s: PairSettings, g: MeshgateTargets, mode: Mode, seconds: number): Promise<Run> {
  const t = g.http;
  const cpu0 = preciseCpuSeconds(t.pid);
  const t0 = performance.now();
  const result = await runLoad(s.tool, { url: t.url, host: t.host, connections: s.connections, seconds });
  const cpu = cpu0 === undefined ? undefined : preciseCpuSeconds(t.pid)! - cpu0;
  const wall = (performance.now() - t0) / 1000;
  return { row: { kind: 'http', target: mode === 'on' ? OBSERVED : UNOBSERVED, result, cores: cpu === undefined ? undefined : cpu / wall }, cpuPerRequest: cpu === undefined || result.requests === 0 ? NaN : cpu / result.requests };
}

/** The sum of istio_requests_total on a proxy's metrics port. */
async function requestsCounted(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/stats/prometheus`)).text();
  return [...text.matchAll(/^istio_requests_total\{[^}]*\} (\S+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
}

/** Of runs of one side, the one with the median req/s; its errors are all of theirs. */
function medianRun(runs: readonly Run[]): LoadRow {
  const m = [...runs].sort((a, b) => a.row.result.rps - b.row.result.rps)[Math.floor(runs.length / 2)]!.row;
  const errors = runs.reduce((n, r) => n + r.row.result.errors, 0);
  return { ...m, result: { ...m.result, errors, errorDetail: runs.map((r) => r.row.result.errorDetail).filter(Boolean).join('; ') } };
}

const range = (xs: readonly number[]): string => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`;

/**
 * Runs the pair. Returns what went wrong (an "on" gateway that counted nothing), the two sides'
 * median runs as rows, and the ratios: medians over all rounds of "on" over "off" in req/s and in
 * CPU per request, with the quartiles of the rounds and the range of the pairs' own medians.
 */
export async function measureObservability(s: PairSettings, upstreamPort: number): Promise<{ problems: string[]; rows: LoadRow[]; ratio: string }> {
  const sink = await startSpanSink();
  const otlpPort = sink.port;
  const problems: string[] = [];
  const runs: Record<Mode, Run[]> = { on: [], off: [] };
  const rps: number[] = [];
  const cpu: number[] = [];
  const pairRps: number[] = [];
  const pairCpu: number[] = [];
  const seconds = Math.max(2, Math.round(s.seconds / 3));
  process.stdout.write(`  observability pair: ${PAIRS} pairs of gateways started afresh, ${ROUNDS_PER_PAIR} rounds of ${seconds}s each way per pair, interleaved ... `);
  let counted = 0;
  try {
    for (let pair = 0; pair < PAIRS; pair++) {
      const first: Mode = pair % 2 === 0 ? 'on' : 'off';
      const order = [first, other(first)] as const;
      const gateways = {} as Record<Mode, MeshgateTargets>;
      for (const mode of order) gateways[mode] = await startMeshgate(upstreamPort, { observability: { mode, otlpPort } });
      for (const mode of order) await preflight(gateways[mode].http);
      await warmInTurns(s, order.map((m) => gateways[m].http));
      const fromRps = rps.length;
      for (let round = 0; round < ROUNDS_PER_PAIR; round++) {
        const got = {} as Record<Mode, Run>;
        for (const mode of round % 2 === 0 ? order : [...order].reverse()) runs[mode].push((got[mode] = await measured(s, gateways[mode], mode, seconds)));
        rps.push(got.on.row.result.rps / Math.max(1, got.off.row.result.rps));
        cpu.push(got.on.cpuPerRequest / got.off.cpuPerRequest);
      }
      pairRps.push(quantile(rps.slice(fromRps), 0.5));
      pairCpu.push(quantile(cpu.slice(fromRps), 0.5));
      const c = await requestsCounted(gateways.on.metricsPort);
      if (!(c > 0)) problems.push(`${OBSERVED}: the gateway's /stats/prometheus counted ${c} requests`);
      counted += c;
      await gateways.on.stop();
      await gateways.off.stop();
    }
  } finally {
    await sink.close();
  }
  const observed = medianRun(runs.on);
  const unobserved = medianRun(runs.off);
  console.log(`${Math.round(observed.result.rps)} and ${Math.round(unobserved.result.rps)} req/s`);
  console.log(`    ${counted} requests in istio_requests_total, ${sink.batches()} span batches exported`);
  const cpuKnown = cpu.every(Number.isFinite);
  const spread = (xs: number[], pairs: number[]): string => `rounds' quartiles ${quantile(xs, 0.25).toFixed(2)}–${quantile(xs, 0.75).toFixed(2)}, pairs ${range(pairs)}`;
  const ratio = `${quantile(rps, 0.5).toFixed(2)}× req/s (${spread(rps, pairRps)}), ${cpuKnown ? `${quantile(cpu, 0.5).toFixed(2)}× CPU per request (${spread(cpu, pairCpu)})` : 'CPU per request n/a'}; medians of ${rps.length} interleaved rounds of ${seconds}s, ${PAIRS} pairs`;
  return { problems, rows: [observed, unobserved], ratio };
}
