// `npm run bench`: meshgate against @fastify/http-proxy and against the upstream alone, one after
// another in the same run and on the same machine, so that the ratios printed at the end mean
// something even where absolute numbers do not (a shared 2-core machine varies from run to run).
//
// Environment: BENCH_SECONDS (default 10) per measurement, BENCH_WARMUP_SECONDS (default 2),
// BENCH_CONNECTIONS (default 50), BENCH_TOOL=wrk|autocannon to force a load generator.

import { cpus } from 'node:os';
import { pickTool, runLoad, stopLoad, type LoadResult, type LoadTool } from './load.js';
import { preflight, startFastifyProxy, startMeshgate, startUpstream, stopAll, type Target } from './targets.js';

interface Row {
  readonly target: string;
  readonly result: LoadResult;
}

function envInt(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}=${v} is not a whole number`);
  return n;
}

async function measure(tool: LoadTool, t: Target, seconds: number, warmup: number, connections: number): Promise<Row> {
  await preflight(t);
  process.stdout.write(`  ${t.name}: warm-up ${warmup}s, then ${seconds}s ... `);
  // The warm-up lets the JIT settle and pools fill; its figures are thrown away.
  if (warmup > 0) await runLoad(tool, { url: t.url, host: t.host, connections, seconds: warmup });
  const result = await runLoad(tool, { url: t.url, host: t.host, connections, seconds });
  console.log(`${Math.round(result.rps)} req/s`);
  return { target: t.name, result };
}

function table(rows: readonly Row[]): string {
  const head = ['target', 'req/s', 'p50 ms', 'p99 ms', 'errors'];
  const body = rows.map((r) => [
    r.target,
    r.result.rps.toFixed(0),
    r.result.p50Ms.toFixed(2),
    r.result.p99Ms.toFixed(2),
    String(r.result.errors),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

function ratio(a: Row | undefined, b: Row | undefined): string {
  if (!a || !b || b.result.rps === 0) return 'n/a';
  return `${(a.result.rps / b.result.rps).toFixed(2)}× req/s, p99 ${(a.result.p99Ms / Math.max(b.result.p99Ms, 0.001)).toFixed(2)}×`;
}

async function main(): Promise<number> {
  const seconds = envInt('BENCH_SECONDS', 10) || 10;
  const warmup = envInt('BENCH_WARMUP_SECONDS', 2);
  const connections = envInt('BENCH_CONNECTIONS', 50) || 50;
  const tool = pickTool();
  console.log(`meshgate bench: ${tool}, ${connections} connections, ${seconds}s per target, node ${process.version}, ${cpus().length} cpu(s)`);
  if (tool === 'autocannon') console.log('  (wrk not found on PATH: using autocannon, which takes more CPU from the targets)');

  const rows: Row[] = [];
  const upstream = await startUpstream();

  // One proxy at a time, so an idle proxy never takes CPU from the one being measured.
  const mesh = await startMeshgate(upstream.port);
  rows.push(await measure(tool, mesh, seconds, warmup, connections));
  await mesh.stop();

  const peer = await startFastifyProxy(upstream.port);
  rows.push(await measure(tool, peer, seconds, warmup, connections));
  await peer.stop();

  rows.push(await measure(tool, upstream, seconds, warmup, connections));

  console.log('');
  console.log(table(rows));
  console.log('');
  const [m, f, d] = rows;
  console.log(`meshgate / @fastify/http-proxy: ${ratio(m, f)}`);
  console.log(`meshgate / direct:              ${ratio(m, d)}`);

  const failed = rows.filter((r) => r.result.errors > 0);
  for (const r of failed) console.error(`${r.target}: ${r.result.errors} failed requests (${r.result.errorDetail})`);
  return failed.length > 0 ? 1 : 0;
}

let stopping = false;
const interrupt = (signal: NodeJS.Signals) => {
  if (stopping) return;
  stopping = true;
  console.error(`\n${signal}: stopping the bench's processes`);
  stopLoad();
  void stopAll().finally(() => process.exit(130));
};
process.once('SIGINT', interrupt);
process.once('SIGTERM', interrupt);

main()
  .then(
    (code) => (process.exitCode = code),
    (err: unknown) => {
      console.error(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 1;
    },
  )
  .finally(() => stopAll());
