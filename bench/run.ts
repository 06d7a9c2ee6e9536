// `npm run bench`: meshgate against @fastify/http-proxy and against the upstream alone over HTTP, and
// against nginx over HTTPS (kept-alive requests, and new handshakes), one target after another in the
// same run and on the same machine, so that the ratios printed at the end mean something even where
// absolute numbers do not (a shared 2-core machine varies from run to run).
//
// Environment: BENCH_SECONDS (default 10) per measurement, BENCH_WARMUP_SECONDS (default 2),
// BENCH_CONNECTIONS (default 50), BENCH_TOOL=wrk|autocannon to force a load generator,
// BENCH_HANDSHAKE_CLIENTS (default 8) openssl s_time processes side by side, BENCH_NGINX=PATH|none.

import { cpus } from 'node:os';
import type { KeyType } from '../src/core/tls/issue-certificate.js';
import { findOpenssl, handshakePreflight, runHandshakes, stopHandshakes } from './handshakes.js';
import { pickTool, runLoad, stopLoad, type LoadTool } from './load.js';
import { findNginx, startNginx } from './nginx.js';
import { cpuSeconds, tempDir } from './processes.js';
import { handshakeRatio, handshakeTable, loadRatio, loadTable, type HandshakeRow, type LoadRow } from './report.js';
import { preflight, startFastifyProxy, startMeshgate, startUpstream, stopAll, type Target, type TlsTarget } from './targets.js';
import { KEY_LABEL, writeBenchCerts } from './tls-certs.js';

interface Settings {
  readonly tool: LoadTool;
  readonly openssl: string | undefined;
  readonly seconds: number;
  readonly warmup: number;
  readonly connections: number;
  readonly clients: number;
}

function envInt(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}=${v} is not a whole number`);
  return n;
}

/** Runs `work` and returns its value with the cores `pid` kept busy meanwhile. */
async function withCpu<T>(pid: number | undefined, work: () => Promise<T>): Promise<{ value: T; cores: number | undefined }> {
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  const value = await work();
  const cpu1 = cpuSeconds(pid);
  const wall = (performance.now() - t0) / 1000;
  return { value, cores: cpu0 === undefined || cpu1 === undefined ? undefined : (cpu1 - cpu0) / wall };
}

async function measureLoad(s: Settings, t: Target, label: string, kind: LoadRow['kind']): Promise<LoadRow> {
  await preflight(t);
  process.stdout.write(`  ${label}: warm-up ${s.warmup}s, then ${s.seconds}s ... `);
  const opts = { url: t.url, host: t.host, connections: s.connections };
  // The warm-up lets the JIT settle and pools fill; its figures are thrown away.
  if (s.warmup > 0) await runLoad(s.tool, { ...opts, seconds: s.warmup });
  const { value: result, cores } = await withCpu(t.pid, () => runLoad(s.tool, { ...opts, seconds: s.seconds }));
  console.log(`${Math.round(result.rps)} req/s`);
  return { kind, target: label, result, cores };
}

async function measureHandshakes(s: Settings, openssl: string, t: TlsTarget): Promise<HandshakeRow> {
  const { negotiated, answerBytes } = await handshakePreflight(t);
  process.stdout.write(`  ${t.name} new handshakes (${KEY_LABEL[t.keyType]}, ${negotiated}): warm-up ${s.warmup}s, then ${s.seconds}s ... `);
  const opts = { clients: s.clients, seconds: s.seconds };
  if (s.warmup > 0) await runHandshakes(openssl, t, { ...opts, seconds: s.warmup }, answerBytes);
  const { value: result, cores } = await withCpu(t.pid, () => runHandshakes(openssl, t, opts, answerBytes));
  console.log(`${Math.round(result.rate)} handshakes/s`);
  return { target: t.name, keyType: t.keyType, result, cores };
}

/** A TLS-terminating proxy: kept-alive requests with the RSA certificate, then handshakes with each. */
async function measureTls(s: Settings, targets: readonly TlsTarget[], loads: LoadRow[], handshakes: HandshakeRow[]): Promise<void> {
  const rsa = targets.find((t) => t.keyType === 'rsa')!;
  loads.push(await measureLoad(s, rsa, `${rsa.name} HTTPS (${KEY_LABEL.rsa})`, 'https'));
  if (!s.openssl) return;
  for (const t of targets) handshakes.push(await measureHandshakes(s, s.openssl, t));
}

async function main(): Promise<number> {
  const tool = pickTool();
  const s: Settings = {
    tool,
    openssl: findOpenssl(),
    seconds: envInt('BENCH_SECONDS', 10) || 10,
    warmup: envInt('BENCH_WARMUP_SECONDS', 2),
    connections: envInt('BENCH_CONNECTIONS', 50) || 50,
    clients: envInt('BENCH_HANDSHAKE_CLIENTS', 8) || 8,
  };
  const nginx = findNginx();
  console.log(`meshgate bench: ${tool}, ${s.connections} connections, ${s.seconds}s per target, node ${process.version} (OpenSSL ${process.versions.openssl}), ${cpus().length} cpu(s)`);
  if (tool === 'autocannon') console.log('  wrk not found on PATH: using autocannon, which takes more CPU from the targets (apt-get install wrk)');
  if (!nginx) console.log('  nginx not found: the HTTPS comparisons meshgate / nginx are skipped; meshgate\'s HTTPS figures still run (apt-get install nginx)');
  if (!s.openssl) console.log('  openssl not found: new-handshake figures are skipped (apt-get install openssl)');
  else console.log(`  new handshakes: ${s.clients} × \`openssl s_time -new\`, each connection a full TLS handshake and one request`);
  console.log(`  HTTPS: kept-alive rows use the ${KEY_LABEL.rsa} certificate; handshakes run with ${KEY_LABEL.rsa} and ${KEY_LABEL.ec}, the same files for every target`);

  const loads: LoadRow[] = [];
  const handshakes: HandshakeRow[] = [];
  const certs = await writeBenchCerts(await tempDir('meshgate-bench-certs-'));
  const upstream = await startUpstream();

  // One proxy at a time, so an idle proxy never takes CPU from the one being measured.
  const mesh = await startMeshgate(upstream.port, certs);
  loads.push(await measureLoad(s, mesh.http, 'meshgate', 'http'));
  await measureTls(s, mesh.https, loads, handshakes);
  await mesh.stop();

  const peer = await startFastifyProxy(upstream.port);
  loads.push(await measureLoad(s, peer, peer.name, 'http'));
  await peer.stop();

  if (nginx) {
    const ng = await startNginx(nginx, upstream.port, certs);
    await measureTls(s, ng, loads, handshakes);
    await ng[0]!.stop();
  }

  loads.push(await measureLoad(s, upstream, upstream.name, 'http'));

  console.log('');
  console.log(loadTable(loads));
  if (handshakes.length > 0) {
    console.log('');
    console.log(handshakeTable(handshakes));
  }
  console.log('');
  const load = (target: string, kind: LoadRow['kind']) => loads.find((r) => r.kind === kind && r.target.startsWith(target));
  const hs = (target: string, k: KeyType) => handshakes.find((r) => r.target === target && r.keyType === k);
  const ratios: [string, string][] = [
    ['meshgate / @fastify/http-proxy', loadRatio(load('meshgate', 'http'), load('@fastify', 'http'))],
    ['meshgate / direct', loadRatio(load('meshgate', 'http'), load('upstream', 'http'))],
  ];
  if (nginx) {
    ratios.push(['meshgate / nginx, HTTPS kept-alive', loadRatio(load('meshgate', 'https'), load('nginx', 'https'))]);
    for (const k of handshakes.length > 0 ? (['rsa', 'ec'] as const) : []) {
      ratios.push([`meshgate / nginx, handshakes ${KEY_LABEL[k]}`, handshakeRatio(hs('meshgate', k), hs('nginx', k))]);
    }
  }
  const width = Math.max(...ratios.map(([label]) => label.length)) + 1;
  for (const [label, value] of ratios) console.log(`${`${label}:`.padEnd(width)} ${value}`);
  console.log('cpu: cores the measured process kept busy (nginx: master and its one worker); per core = rate / cpu.');

  const failed = [
    ...loads.filter((r) => r.result.errors > 0).map((r) => `${r.target}: ${r.result.errors} failed requests (${r.result.errorDetail})`),
    ...handshakes.filter((r) => r.result.errors > 0).map((r) => `${r.target} handshakes ${KEY_LABEL[r.keyType]}: ${r.result.errorDetail}`),
  ];
  for (const f of failed) console.error(f);
  return failed.length > 0 ? 1 : 0;
}

let stopping = false;
const interrupt = (signal: NodeJS.Signals) => {
  if (stopping) return;
  stopping = true;
  console.error(`\n${signal}: stopping the bench's processes`);
  stopLoad();
  stopHandshakes();
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
