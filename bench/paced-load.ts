// A fixed request rate, the condition Istio's published sidecar figures were measured under (1000
// req/s), where wrk and autocannon only offer saturation or bursts: wrk has no rate option, and
// autocannon's rate sends each second's quota as fast as it can and then waits, so its latencies
// measure the burst's queue. This client spreads the requests evenly over each second, over a pool
// of kept-alive connections, and times every request from when it was due rather than from when it
// was sent, so a stalled target is charged for the requests it delayed (no coordinated omission).
// It runs inside the bench's own process; at 1000 req/s that costs a few percent of a core.

import { Pool, type buildConnector } from 'undici';
import type { LoadResult } from './load.js';

export interface PacedOptions {
  readonly url: string;
  readonly host: string;
  readonly connections: number;
  readonly seconds: number;
  /** Requests per second, spread evenly. */
  readonly rate: number;
  /** TLS options for an https:// url (a client certificate, the CA to verify against). */
  readonly tls?: buildConnector.BuildOptions;
}

export async function runPaced(opts: PacedOptions): Promise<LoadResult> {
  const url = new URL(opts.url);
  const pool = new Pool(url.origin, { connections: opts.connections, pipelining: 1, headersTimeout: 10_000, bodyTimeout: 10_000, ...(opts.tls ? { connect: opts.tls } : {}) });
  const latencies: number[] = [];
  const failures = new Map<string, number>();
  const fail = (why: string): void => void failures.set(why, (failures.get(why) ?? 0) + 1);
  const total = Math.round(opts.rate * opts.seconds);
  const interval = 1000 / opts.rate;
  const inFlight = new Set<Promise<void>>();

  const send = (due: number): void => {
    const p = pool
      .request({ path: url.pathname + url.search, method: 'GET', headers: { host: opts.host } })
      .then(async (r) => {
        await r.body.text();
        if (r.statusCode >= 200 && r.statusCode < 300) latencies.push(performance.now() - due);
        else fail(`status ${r.statusCode}`);
      })
      .catch((err: unknown) => fail(err instanceof Error ? (err as { code?: string }).code ?? err.message : String(err)))
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  };

  const start = performance.now();
  let sent = 0;
  // Timers fire late and coarsely; every tick sends all the requests that have come due since the last.
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (sent < total && start + sent * interval <= now) send(start + sent++ * interval);
      if (sent < total) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  await Promise.all(inFlight);
  const wall = (performance.now() - start) / 1000;
  await pool.close();

  latencies.sort((a, b) => a - b);
  const at = (q: number) => (latencies.length === 0 ? 0 : latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)]!);
  const errors = [...failures.values()].reduce((a, b) => a + b, 0);
  return {
    tool: 'paced',
    requests: latencies.length,
    rps: latencies.length / wall,
    p50Ms: at(0.5),
    p90Ms: at(0.9),
    p99Ms: at(0.99),
    errors,
    errorDetail: [...failures].map(([why, n]) => `${why} ×${n}`).join(', '),
  };
}
