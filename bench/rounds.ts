// The rows whose ratios a target compares, taken as medians of rounds in turns rather than one
// 10 s run each: plain HTTP (meshgate, @fastify/http-proxy and the bare node:http + undici Pool
// proxy) and HTTPS kept-alive (meshgate, the node:https + undici Pool floor and nginx, with the RSA
// certificate). A p99 of a few milliseconds over one 10 s run moves by 2–3 ms from one run to the
// next even on a quiet machine (docs/benchmarks.md, "The plain-HTTP tail: rounds in turns"), and
// single runs minutes apart made the HTTPS rows disagree by more than the proxies differ (the
// floor's HTTPS row 1.20× the bare proxy's plaintext one, docs/benchmarks.md, "Both TLS rows beside
// the floor in the same seconds"), so one run each would let the machine's minute decide the row.
// As the observability pair does for its two gateways (observability-pair.ts):
//
// - the targets of a set are up together and take turns in short runs (plain: half a row, HTTPS: a
//   third, at least 2 s each), the order rotated each round so that each takes each place equally often;
// - all are warmed alike, by requests, in turns, until each has served every row's warm-up;
// - they are started afresh BENCH_PLAIN_STARTS / BENCH_HTTPS_STARTS times (default 4), as many rounds
//   each as there are targets: a process keeps some traits for its whole life (the young generation
//   it settles at, what V8 compiled), so one start would measure one draw of them, and two starts
//   left the plain row's ratio to the bare proxy at 0.91× in one quiet run and 1.09× in the next;
// - each row is the medians over all rounds of each figure (req/s, p50, p90, p99, cores: nginx's are
//   its master's and worker's, as cpuSeconds counts children), its errors the sum; the ratios are
//   then computed from those rows as for every other row, and a line gives each target's spread over
//   the rounds and the median of meshgate's per-round ratios (paired within a round, so that the
//   machine's drift over minutes cancels): p99 for plain HTTP, req/s per core for HTTPS.

import { runLoad, type LoadResult, type LoadTool } from './load.js';
import { startNginx } from './nginx.js';
import { cpuSeconds } from './processes.js';
import { perCore, quantile, type LoadRow } from './report.js';
import { preflight, startBareProxy, startFastifyProxy, startMeshgate, startTlsFloor, type Target } from './targets.js';
import { KEY_LABEL, type BenchCerts } from './tls-certs.js';

export interface RoundSettings {
  readonly tool: LoadTool;
  /** Seconds of each warm-up run (0: no warm-up). */
  readonly warmup: number;
  /** Requests each target serves before it is measured. */
  readonly warmRequests: number;
  readonly connections: number;
  /** Seconds of a whole row; a round's runs are a part of it (at least 2 s). */
  readonly seconds: number;
}

interface Run {
  readonly result: LoadResult;
  readonly cores: number | undefined;
}

/** One start of a set: its targets, meshgate first, and how to stop them all. */
interface Started {
  readonly targets: readonly Target[];
  stop(): Promise<unknown>;
}

/** A set's runs, `runs[round][target]`, and its rows (the medians). */
interface Rounds {
  readonly labels: readonly string[];
  readonly runs: readonly (readonly Run[])[];
  readonly rows: LoadRow[];
  /** How the rows were taken, for the spread line. */
  readonly how: string;
}

const starts = (name: string): number => Number(process.env[name] || 4);

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
function medianRow(kind: LoadRow['kind'], target: string, runs: readonly Run[]): LoadRow {
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
  return { kind, target, result, cores };
}

/** Starts a set `startCount` times and runs its targets in turns, as many rounds per start as targets. */
async function inTurns(s: RoundSettings, kind: LoadRow['kind'], what: string, startCount: number, seconds: number, start: () => Promise<Started>): Promise<Rounds> {
  const labels: string[] = [];
  const runs: Run[][] = [];
  let rounds = 0;
  process.stdout.write(`  ${what} started afresh ${startCount} times, `);
  for (let n = 0; n < startCount; n++) {
    const set = await start();
    const { targets } = set;
    try {
      for (const t of targets) await preflight(t);
      if (labels.length === 0) {
        labels.push(...targets.map((t) => t.name));
        process.stdout.write(`${targets.length} rounds of ${seconds}s each per start ... `);
      }
      await warmInTurns(s, targets);
      for (let round = 0; round < targets.length; round++, rounds++) {
        const got: Run[] = [];
        for (let k = 0; k < targets.length; k++) {
          const i = (k + round + n) % targets.length;
          got[i] = await measured(s, targets[i]!, seconds);
        }
        runs.push(got);
      }
    } finally {
      await set.stop();
    }
  }
  const rows = labels.map((label, i) => medianRow(kind, label, runs.map((r) => r[i]!)));
  console.log(rows.map((r) => `${Math.round(r.result.rps)}`).join(', ') + ' req/s (medians)');
  return { labels, runs, rows, how: `rows are medians of ${rounds} rounds of ${seconds}s in turns, ${startCount} start${startCount === 1 ? '' : 's'}` };
}

/** Each target's range of `f` over the rounds, and the medians of meshgate's (the first's) per-round ratios to the others. */
function spread(r: Rounds, f: (run: Run) => number | undefined, digits: number, unit: string): string {
  const range = (i: number): string => {
    const xs = r.runs.map((run) => f(run[i]!)).filter((x): x is number => x !== undefined);
    return `${r.labels[i]} ${xs.length ? `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}` : 'n/a'}`;
  };
  const ratio = (i: number): string => {
    const xs = r.runs.map((run) => [f(run[0]!), f(run[i]!)] as const).filter((p): p is readonly [number, number] => p[0] !== undefined && p[1] !== undefined && p[1] > 0);
    return `${xs.length ? quantile(xs.map(([a, b]) => a / b), 0.5).toFixed(2) : 'n/a'}× ${r.labels[i]}`;
  };
  const others = r.labels.slice(1).map((_, i) => ratio(i + 1));
  return `${r.labels.map((_, i) => range(i)).join(', ')} ${unit}; meshgate's per-round ratio, median: ${others.join(', ')}; ${r.how}`;
}

/**
 * meshgate, @fastify/http-proxy and the bare proxy in turns. Returns their rows (meshgate's labelled
 * `meshgateLabel`), a line on the p99s and one on the req/s (paired within each round, the ratio the
 * machine's drift moves least).
 */
export async function measurePlainRounds(s: RoundSettings, upstreamPort: number, meshgateLabel: string): Promise<{ rows: LoadRow[]; p99: string; rps: string }> {
  const r = await inTurns(s, 'http', 'plain HTTP in turns: meshgate, @fastify/http-proxy and the bare proxy', starts('BENCH_PLAIN_STARTS'), Math.max(2, Math.round(s.seconds / 2)), async () => {
    const gateway = await startMeshgate(upstreamPort);
    const targets = [{ ...gateway.http, name: meshgateLabel }, await startFastifyProxy(upstreamPort), await startBareProxy(upstreamPort)];
    return { targets, stop: () => Promise.all(targets.map((t) => t.stop())) };
  });
  return { rows: r.rows, p99: spread(r, (run) => Math.max(run.result.p99Ms, 0.001), 2, 'ms'), rps: spread(r, (run) => run.result.rps, 0, 'req/s') };
}

/**
 * meshgate, the Node floor and (with `nginx`, the binary) nginx, each terminating TLS with the RSA
 * certificate, in turns: their kept-alive HTTPS rows, labelled `<name> HTTPS (RSA 2048)`, and a line
 * on their req/s per core.
 */
export async function measureHttpsRounds(s: RoundSettings, upstreamPort: number, certs: BenchCerts, nginx: string | undefined): Promise<{ rows: LoadRow[]; perCore: string }> {
  const what = `HTTPS kept-alive in turns (${KEY_LABEL.rsa}): meshgate, the Node floor${nginx ? ' and nginx' : ''}`;
  const r = await inTurns(s, 'https', what, starts('BENCH_HTTPS_STARTS'), Math.max(2, Math.round(s.seconds / 3)), async () => {
    const gateway = await startMeshgate(upstreamPort, { certs });
    const floor = await startTlsFloor(upstreamPort, certs);
    const ng = nginx ? await startNginx(nginx, upstreamPort, certs) : undefined;
    const rsa = (ts: readonly (Target & { keyType: string })[]) => ts.find((t) => t.keyType === 'rsa')!;
    const targets = [rsa(gateway.https), rsa(floor), ...(ng ? [rsa(ng.https)] : [])];
    return { targets, stop: () => Promise.all([gateway.stop(), ...floor.map((t) => t.stop()), ng?.http.stop()]) };
  });
  const rows = r.rows.map((row) => ({ ...row, target: `${row.target} HTTPS (${KEY_LABEL.rsa})` }));
  return { rows, perCore: spread(r, (run) => perCore(run.result.rps, run.cores), 0, 'req/s per core') };
}
