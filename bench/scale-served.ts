// The scale bench's served pair: req/s and CPU per request of the gateway itself (the CLI in file
// mode, one worker) on the generated configuration at 10 services and at the largest size, requests
// through it to the bench's upstream. The in-process lookup rate (scale-size.ts) says what the route
// lookup alone costs; this says whether a request costs more at 10,000 services than at 10, which
// is what "flat" means for whoever runs the gateway.
//
// As the observability pair measures its two gateways (observability-pair.ts): both are up together
// and take turns in short runs, the order reversed each round; both are warmed alike by requests in
// turns; each round's figures are paired (large over small) and the medians of the pairs reported,
// so that a shared machine's drift over minutes cancels. CPU per request, from the scheduler's
// running time of every thread of the gateway, is the robust figure on a loaded machine; req/s is
// printed beside it. Requests go to 10 hosts spread over the configuration (as the lookup rows'),
// each matching its host's first route, whose destination is subset v2 of the host's service.

import { runLoad } from './load.js';
import { preciseCpuSeconds, rssBytes, tempDir } from './processes.js';
import { quantile } from './report.js';
import { warmInTurns, type RoundSettings } from './rounds.js';
import { scaleHost, writeScaleConfig } from './scale-config.js';
import { preflight, startMeshgate, type MeshgateTargets, type Target } from './targets.js';

/** Rounds in turns (BENCH_SCALE_SERVED_ROUNDS) and seconds of each run. */
const ROUNDS = Number(process.env.BENCH_SCALE_SERVED_ROUNDS || 8);
const RUN_SECONDS = 2;
/** A 10,000-service gateway was ready after 11 s on a quiet machine and 50 s on this one loaded. */
const READY_MS = 300_000;
const SMALL = 10;
const PATH = '/api/v0/items';

export interface ServedScale {
  readonly small: number;
  readonly large: number;
  readonly rounds: number;
  /** Medians over the rounds. */
  readonly rps: readonly [number, number];
  readonly cpuUsPerRequest: readonly [number, number];
  /** Medians of each round's large / small req/s, and of requests per CPU-second (small / large CPU per request): 1 is flat, above 1 the large one cheaper. */
  readonly rpsRatio: number;
  readonly cpuRatio: number;
  /** Their lowest and highest over the rounds. */
  readonly rpsRange: readonly [number, number];
  readonly cpuRange: readonly [number, number];
  readonly rssMB: readonly [number, number];
  readonly readySeconds: readonly [number, number];
  readonly errors: string[];
}

interface Run {
  readonly rps: number;
  readonly cpuPerRequest: number;
  readonly errors: number;
  readonly errorDetail: string;
}

/** 10 hosts spread over `services`, the lookup rows' spread. */
function hosts(services: number): string[] {
  const step = Math.max(1, Math.floor(services / 10));
  return Array.from({ length: 10 }, (_, i) => scaleHost((i * step) % services));
}

async function startSized(services: number, upstreamPort: number): Promise<{ gateway: MeshgateTargets; target: Target; readySeconds: number }> {
  const dir = await tempDir(`meshgate-scale-served-${services}-`);
  await writeScaleConfig(dir, services, upstreamPort);
  const t0 = performance.now();
  const gateway = await startMeshgate(upstreamPort, { config: { dir, readyMs: READY_MS } });
  const readySeconds = (performance.now() - t0) / 1000;
  const spread = hosts(services);
  const target: Target = { ...gateway.http, name: `meshgate, ${services} services`, url: `${gateway.http.url.replace(/\/$/, '')}${PATH}`, host: spread[0]!, hosts: spread };
  for (const host of spread) await preflight({ ...target, host });
  return { gateway, target, readySeconds };
}

async function measured(s: RoundSettings, t: Target): Promise<Run> {
  const cpu0 = preciseCpuSeconds(t.pid);
  const r = await runLoad(s.tool, { url: t.url, host: t.host, hosts: t.hosts!, connections: s.connections, seconds: RUN_SECONDS });
  const cpu = cpu0 === undefined ? NaN : preciseCpuSeconds(t.pid)! - cpu0;
  return { rps: r.rps, cpuPerRequest: r.requests > 0 ? cpu / r.requests : NaN, errors: r.errors, errorDetail: r.errorDetail };
}

/** The served pair at 10 services and at `large`; `upstreamPort`: the bench's upstream. */
export async function measureServedScale(s: RoundSettings, upstreamPort: number, large: number): Promise<ServedScale> {
  process.stdout.write(`scale served: gateways on ${SMALL} and ${large} services, ${ROUNDS} rounds of ${RUN_SECONDS}s each in turns ... `);
  const started = performance.now();
  const big = await startSized(large, upstreamPort);
  const small = await startSized(SMALL, upstreamPort);
  try {
    const both = [small, big] as const;
    await warmInTurns(s, both.map((g) => g.target));
    const runs: [Run[], Run[]] = [[], []];
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? [0, 1] : [1, 0];
      for (const i of order) runs[i]!.push(await measured(s, both[i]!.target));
    }
    const med = (xs: readonly number[]) => quantile(xs, 0.5);
    const rpsPairs = runs[1].map((r, i) => r.rps / runs[0][i]!.rps);
    const cpuPairs = runs[1].map((r, i) => runs[0][i]!.cpuPerRequest / r.cpuPerRequest);
    const rss = both.map((g) => Math.round((rssBytes(g.target.pid) ?? NaN) / 1e6)) as [number, number];
    const errors = both.flatMap((g, i) => {
      const n = runs[i]!.reduce((sum, r) => sum + r.errors, 0);
      return n === 0 ? [] : [`${g.target.name}: ${n} failed requests (${runs[i]!.map((r) => r.errorDetail).filter(Boolean).join('; ')})`];
    });
    console.log(`${((performance.now() - started) / 1000).toFixed(0)} s`);
    return {
      small: SMALL,
      large,
      rounds: ROUNDS,
      rps: [med(runs[0].map((r) => r.rps)), med(runs[1].map((r) => r.rps))],
      cpuUsPerRequest: [med(runs[0].map((r) => r.cpuPerRequest)) * 1e6, med(runs[1].map((r) => r.cpuPerRequest)) * 1e6],
      rpsRatio: med(rpsPairs),
      cpuRatio: med(cpuPairs),
      rpsRange: [Math.min(...rpsPairs), Math.max(...rpsPairs)],
      cpuRange: [Math.min(...cpuPairs), Math.max(...cpuPairs)],
      rssMB: rss,
      readySeconds: [small.readySeconds, big.readySeconds],
      errors,
    };
  } finally {
    await small.gateway.stop();
    await big.gateway.stop();
  }
}

export function servedLines(r: ServedScale): string[] {
  const n = (x: number) => Math.round(x).toLocaleString('en-US');
  return [
    `served at ${n(r.large)} services / at ${r.small}: requests per CPU-second ${r.cpuRatio.toFixed(2)}× (${r.cpuRange[0].toFixed(2)}–${r.cpuRange[1].toFixed(2)} over the rounds; ${r.cpuUsPerRequest[1].toFixed(1)} against ${r.cpuUsPerRequest[0].toFixed(1)} µs of the gateway's CPU a request), req/s ${r.rpsRatio.toFixed(2)}× (${r.rpsRange[0].toFixed(2)}–${r.rpsRange[1].toFixed(2)}; ${n(r.rps[1])} against ${n(r.rps[0])})`,
    `  the gateway CLI in file mode, one worker each, up together and measured in ${r.rounds} rounds of ${RUN_SECONDS} s in turns (medians of the rounds' ratios); requests to 10 hosts through their first route to the bench's upstream; ready after ${r.readySeconds[1].toFixed(1)} / ${r.readySeconds[0].toFixed(1)} s, RSS ${r.rssMB[1]} / ${r.rssMB[0]} MB after the rounds`,
  ];
}

/**
 * The pair at 10 services and the largest of `sizes` (none when that is 10 or less, or with
 * BENCH_SCALE_SERVED_ROUNDS=0): its lines for the bench's output and its failed requests.
 */
export async function servedScale(s: RoundSettings, upstreamPort: number, sizes: readonly number[]): Promise<{ lines: string[]; problems: string[] }> {
  const large = Math.max(...sizes);
  if (ROUNDS === 0 || large <= SMALL) return { lines: [], problems: [] };
  const r = await measureServedScale(s, upstreamPort, large);
  return { lines: servedLines(r), problems: r.errors };
}
