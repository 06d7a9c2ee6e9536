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
//
// On a quiet machine (processes.ts, pinnedCpus) the gateways run on a CPU of their own and wrk and
// the upstream on the other: on two cores a saturated gateway, the upstream and wrk want about 1.8 of
// them, and left to the scheduler a run's gateway may share its core with one of the others for part
// of it. On a busy one they stay unpinned: pinned, a gateway cannot leave the core other work lands
// on, and its CPU per request rose by half. Each figure is a median of paired rounds with its
// quartiles beside it (the range of eight pairs was their two outliers), and the user-mode CPU
// ratio beside the whole one: both sizes make the same system calls, and the kernel's share, which
// a loaded machine's switches inflate, is where the configuration's size cannot matter.

import { pathToFileURL } from 'node:url';
import { pickTool, runLoad } from './load.js';
import { machineBusy, pinnedCpus, pinTo, preciseCpuSeconds, rssBytes, runThenStop, tempDir, userCpuSeconds } from './processes.js';
import { quantile } from './report.js';
import { warmInTurns, type RoundSettings } from './rounds.js';
import { scaleHost, writeScaleConfig } from './scale-config.js';
import { preflight, startMeshgate, startUpstream, type MeshgateTargets, type Target } from './targets.js';

/** Rounds in turns (BENCH_SCALE_SERVED_ROUNDS) and seconds of each run (BENCH_SCALE_SERVED_SECONDS). */
const ROUNDS = Number(process.env.BENCH_SCALE_SERVED_ROUNDS || 12);
const RUN_SECONDS = Number(process.env.BENCH_SCALE_SERVED_SECONDS || 3);
/** A 10,000-service gateway was ready after 11 s on a quiet machine and 50 s on this one loaded. */
const READY_MS = 300_000;
const SMALL = 10;
/** Busier than this (share of all CPUs, the gateways warm and idle), the machine has other work and the processes stay unpinned. */
const QUIET = 0.15;
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
  /** The same for user-mode CPU alone (the kernel's share, the same system calls at both sizes, left out). */
  readonly userCpuRatio: number;
  readonly userCpuQuartiles: readonly [number, number];
  readonly userCpuUsPerRequest: readonly [number, number];
  /** Their quartiles and their lowest and highest over the rounds. */
  readonly rpsQuartiles: readonly [number, number];
  readonly cpuQuartiles: readonly [number, number];
  readonly rpsRange: readonly [number, number];
  readonly cpuRange: readonly [number, number];
  /** Medians of the cores each gateway kept busy in its runs: 1 where it had its core to itself and was saturated. */
  readonly cores: readonly [number, number];
  /** The CPUs the gateways and the load ran on, when pinned. */
  readonly pinned?: { readonly measured: string; readonly load: string };
  /** How busy the machine was before the rounds (share of all CPUs), the gateways warm and idle. */
  readonly busyBefore?: number;
  readonly rssMB: readonly [number, number];
  readonly readySeconds: readonly [number, number];
  readonly errors: string[];
}

interface Run {
  readonly rps: number;
  readonly cpuPerRequest: number;
  readonly userCpuPerRequest: number;
  readonly cores: number;
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

async function measured(s: RoundSettings, t: Target, loadCpus: string | undefined): Promise<Run> {
  const cpu0 = preciseCpuSeconds(t.pid);
  const user0 = userCpuSeconds(t.pid) ?? NaN;
  const t0 = performance.now();
  const r = await runLoad(s.tool, { url: t.url, host: t.host, hosts: t.hosts!, connections: s.connections, seconds: RUN_SECONDS, ...(loadCpus ? { cpus: loadCpus } : {}) });
  const cpu = cpu0 === undefined ? NaN : preciseCpuSeconds(t.pid)! - cpu0;
  const wall = (performance.now() - t0) / 1000;
  const user = (userCpuSeconds(t.pid) ?? NaN) - user0;
  return { rps: r.rps, cpuPerRequest: r.requests > 0 ? cpu / r.requests : NaN, userCpuPerRequest: r.requests > 0 ? user / r.requests : NaN, cores: cpu / wall, errors: r.errors, errorDetail: r.errorDetail };
}

/** The served pair at 10 services and at `large`; `upstream`: the bench's upstream. */
export async function measureServedScale(s: RoundSettings, upstream: { readonly port: number; readonly pid?: number | undefined }, large: number): Promise<ServedScale> {
  process.stdout.write(`scale served: gateways on ${SMALL} and ${large} services, ${ROUNDS} rounds of ${RUN_SECONDS}s each in turns ... `);
  const started = performance.now();
  const big = await startSized(large, upstream.port);
  const small = await startSized(SMALL, upstream.port);
  const both = [small, big] as const;
  let pinned: ReturnType<typeof pinnedCpus>;
  let busy: number | undefined;
  try {
    await warmInTurns(s, both.map((g) => g.target));
    // Pinned only where the machine is quiet, both gateways warm and idle (processes.ts, pinnedCpus).
    busy = await machineBusy();
    pinned = process.env.BENCH_PIN === '1' || (busy !== undefined && busy < QUIET) ? pinnedCpus() : undefined;
    if (pinned) {
      for (const g of both) pinTo(g.target.pid, pinned.measured);
      pinTo(upstream.pid, pinned.load);
    }
    const runs: [Run[], Run[]] = [[], []];
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? [0, 1] : [1, 0];
      for (const i of order) runs[i]!.push(await measured(s, both[i]!.target, pinned?.load));
    }
    const med = (xs: readonly number[]) => quantile(xs, 0.5);
    const quartiles = (xs: readonly number[]): [number, number] => [quantile(xs, 0.25), quantile(xs, 0.75)];
    const rpsPairs = runs[1].map((r, i) => r.rps / runs[0][i]!.rps);
    const cpuPairs = runs[1].map((r, i) => runs[0][i]!.cpuPerRequest / r.cpuPerRequest);
    const userPairs = runs[1].map((r, i) => runs[0][i]!.userCpuPerRequest / r.userCpuPerRequest);
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
      rpsQuartiles: quartiles(rpsPairs),
      cpuQuartiles: quartiles(cpuPairs),
      userCpuRatio: med(userPairs),
      userCpuQuartiles: quartiles(userPairs),
      userCpuUsPerRequest: [med(runs[0].map((r) => r.userCpuPerRequest)) * 1e6, med(runs[1].map((r) => r.userCpuPerRequest)) * 1e6],
      rpsRange: [Math.min(...rpsPairs), Math.max(...rpsPairs)],
      cpuRange: [Math.min(...cpuPairs), Math.max(...cpuPairs)],
      cores: [med(runs[0].map((r) => r.cores)), med(runs[1].map((r) => r.cores))],
      ...(pinned ? { pinned: { measured: pinned.measured, load: pinned.load } } : {}),
      ...(busy !== undefined ? { busyBefore: busy } : {}),
      rssMB: rss,
      readySeconds: [small.readySeconds, big.readySeconds],
      errors,
    };
  } finally {
    // The upstream serves the bench's later rows: it gets every CPU back.
    if (pinned) pinTo(upstream.pid, pinned.all);
    await small.gateway.stop();
    await big.gateway.stop();
  }
}

export function servedLines(r: ServedScale): string[] {
  const n = (x: number) => Math.round(x).toLocaleString('en-US');
  const f = (x: number) => x.toFixed(2);
  const spread = (q: readonly [number, number], range: readonly [number, number]) => `quartiles ${f(q[0])}–${f(q[1])}, rounds ${f(range[0])}–${f(range[1])}`;
  const busy = r.busyBefore === undefined ? '' : ` (the machine ${Math.round(r.busyBefore * 100)} % busy before the rounds)`;
  const where = `${r.pinned ? `the gateways on CPU ${r.pinned.measured}, wrk and the upstream on ${r.pinned.load}` : 'placed by the scheduler'}${busy}`;
  return [
    `served at ${n(r.large)} services / at ${r.small}: requests per CPU-second ${f(r.cpuRatio)}× (${spread(r.cpuQuartiles, r.cpuRange)}; ${r.cpuUsPerRequest[1].toFixed(1)} against ${r.cpuUsPerRequest[0].toFixed(1)} µs of the gateway's CPU a request), req/s ${f(r.rpsRatio)}× (${spread(r.rpsQuartiles, r.rpsRange)}; ${n(r.rps[1])} against ${n(r.rps[0])})`,
    `  user-mode CPU alone: ${f(r.userCpuRatio)}× (quartiles ${f(r.userCpuQuartiles[0])}–${f(r.userCpuQuartiles[1])}; ${r.userCpuUsPerRequest[1].toFixed(1)} against ${r.userCpuUsPerRequest[0].toFixed(1)} µs a request)`,
    `  the gateway CLI in file mode, one worker each, up together and measured in ${r.rounds} rounds of ${RUN_SECONDS} s in turns (medians of the rounds' ratios), ${where}; the gateway kept ${f(r.cores[1])} / ${f(r.cores[0])} cores busy (1: its core to itself; below, the machine's other work took part of it, and req/s says less than CPU a request); requests to 10 hosts through their first route to the bench's upstream; ready after ${r.readySeconds[1].toFixed(1)} / ${r.readySeconds[0].toFixed(1)} s, RSS ${r.rssMB[1]} / ${r.rssMB[0]} MB after the rounds`,
  ];
}

/**
 * The pair at 10 services and the largest of `sizes` (none when that is 10 or less, or with
 * BENCH_SCALE_SERVED_ROUNDS=0): its lines for the bench's output and its failed requests.
 */
export async function servedScale(s: RoundSettings, upstream: { readonly port: number; readonly pid?: number | undefined }, sizes: readonly number[]): Promise<{ lines: string[]; problems: string[] }> {
  const large = Math.max(...sizes);
  if (ROUNDS === 0 || large <= SMALL) return { lines: [], problems: [] };
  const r = await measureServedScale(s, upstream, large);
  return { lines: servedLines(r), problems: r.errors };
}

// Run directly, the pair alone at one size (default 10,000), with the settings scale.ts gives it:
//   npx tsc -p . && node dist/bench/scale-served.js [services]
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runThenStop(async () => {
    const upstream = await startUpstream();
    const r = await measureServedScale({ tool: pickTool(), warmup: 2, warmRequests: 50_000, connections: 50, seconds: 10 }, upstream, Number(process.argv[2] || 10_000));
    for (const line of [...servedLines(r), ...r.errors]) console.log(line);
  });
}
