// `npm run bench`: meshgate against @fastify/http-proxy and against the upstream alone over HTTP,
// against itself with `--workers 2` and under a RateLimitPolicy (store memory, and redis when
// redis-server is installed), against nginx and the Node floor (node:https + undici Pool) over HTTPS (kept-alive requests, new
// and resumed handshakes),
// and the mesh path (gateway → sidecar → app over mTLS against gateway → app), one target after
// another in the same run and on
// the same machine, so that the ratios printed at the end mean something even where absolute
// numbers do not (a shared 2-core machine varies from run to run).
//
// Environment: BENCH_SECONDS (default 10) per measurement, BENCH_WARMUP_SECONDS (default 2),
// BENCH_CONNECTIONS (default 50), BENCH_TOOL=wrk|autocannon to force a load generator,
// BENCH_HANDSHAKE_CLIENTS (default 8) openssl s_time processes side by side, BENCH_NGINX=PATH|none,
// BENCH_MESH_RATE (default 1000) req/s of the mesh's fixed-rate runs, 0 to leave them out,
// BENCH_ONLY=sidecar only the mesh rows (the sidecar's cost beside Istio's), BENCH_SIDECAR_NODE_OPTIONS
// the sidecar's NODE_OPTIONS instead of those injection gives it (an A/B of V8 settings),
// BENCH_REDIS=PATH|none the redis-server for the store redis row, BENCH_CADDY=PATH|none the caddy of the plain-HTTP
// caddy row, BENCH_HAPROXY=PATH|none the haproxy of its plain-HTTP row, BENCH_SCALE_SIZES (default 10,100,1000,10000,
// or none) the generated configurations of the scale and push rows,
// BENCH_SCALE_SERVED_ROUNDS (default 12, 0: left out) the served pair's rounds, BENCH_PIN=0|1 its pinning (scale-served.ts),
// BENCH_XDS_PROXIES (default 200) the proxies subscribed in the push rows; BENCH_PLAIN_STARTS (default 4)
// how many times meshgate, @fastify/http-proxy and the bare proxy are started afresh for their rounds in
// turns, BENCH_HTTPS_STARTS (default 4) the same for the HTTPS kept-alive rows (rounds.ts);
// BENCH_ONLY=plain runs only meshgate, @fastify/http-proxy and the bare proxy in turns;
// BENCH_ONLY=https runs only the HTTPS kept-alive rows in turns (no handshakes);
// BENCH_ONLY=observability runs only the pair "metrics + tracing 1 %" against "both off", BENCH_OBSERVABILITY_PAIRS
// (default 8) how many times its two gateways are started afresh (observability-pair.ts).

import { cpus } from 'node:os';
import type { KeyType } from '../src/core/tls/issue-certificate.js';
import { findOpenssl, handshakePreflight, runHandshakes, stopHandshakes } from './handshakes.js';
import { pickTool, runLoad, stopLoad, type LoadOptions, type LoadTool } from './load.js';
import { findNginx, NGINX_HTTP, startNginx } from './nginx.js';
import { findHaproxy, HAPROXY, startHaproxy } from './haproxy.js';
import { startMesh } from './mesh.js';
import { findRedis, startRedis } from './redis.js';
import { anchorTable, meshRatios, meshTable, type MeshReport, type MeshRow } from './mesh-report.js';
import { runPaced } from './paced-load.js';
import { measureObservability } from './observability-pair.js';
import { measureHttpsRounds, measurePlainRounds } from './rounds.js';
import { cpuSeconds, rssBytes, sampleMax, tempDir } from './processes.js';
import { handshakeRatio, handshakeTable, loadRatio, loadTable, type HandshakeRow, type LoadRow } from './report.js';
import { BARE_PROXY, TLS_FLOOR, preflight, rateLimitCounts, startMeshgate, startTlsFloor, startUpstream, stopAll, type RateLimitStore, type Target, type TlsTarget } from './targets.js';
import { KEY_LABEL, writeBenchCerts, type BenchCerts } from './tls-certs.js';
import { runScale, scaleSizes, scaleTable } from './scale.js';
import { servedScale } from './scale-served.js';
import { pushTable, runPush } from './xds-push.js';
import { CADDY, findCaddy, startCaddy } from './caddy.js';

interface Settings {
  readonly tool: LoadTool;
  readonly openssl: string | undefined;
  readonly seconds: number;
  readonly warmup: number;
  readonly connections: number;
  readonly clients: number;
  readonly meshRate: number;
}

/**
 * The sidecar's idle memory: the most VmRSS it holds IDLE_FROM_MS to IDLE_TO_MS after ready, before
 * any load, its steady state. One reading 2 s after ready fell on either side of V8's memory reducer
 * giving back start-up's young generation, 1.4 MB apart between runs of one build (docs/benchmarks.md,
 * ninth round); the most held before IDLE_FROM_MS is printed beside it.
 */
const IDLE_FROM_MS = 10_000;
const IDLE_TO_MS = 20_000;

const BASELINE = 'meshgate';
const TWO_WORKERS = 'meshgate --workers 2';
const rateLimited = (store: RateLimitStore) => `meshgate + RateLimitPolicy (${store})`;

function envInt(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}=${v} is not a whole number`);
  return n;
}

/** Runs `work` and returns its value with the cores each of `pids` kept busy meanwhile. */
async function withCpu<T>(pids: readonly (number | undefined)[], work: () => Promise<T>): Promise<{ value: T; cores: (number | undefined)[] }> {
  const cpu0 = pids.map(cpuSeconds);
  const t0 = performance.now();
  const value = await work();
  const cpu1 = pids.map(cpuSeconds);
  const wall = (performance.now() - t0) / 1000;
  const cores = pids.map((_, i) => (cpu0[i] === undefined || cpu1[i] === undefined ? undefined : (cpu1[i]! - cpu0[i]!) / wall));
  return { value, cores };
}

/** Warm-up requests before a load row is measured (up to five warm-up runs). */
const WARM_REQUESTS = 50_000;

/**
 * Warms a target by requests, not seconds. A fresh gateway's request path is much more JavaScript
 * than a bare proxy's, and V8 optimizes it only as it runs: over HTTPS, meshgate's CPU per request
 * settled after about 30,000 requests, when some 370 functions had been optimized; after 6 s of load
 * it still spent 14.6 µs per request compiling (the Node floor 3.0), after 25 s 1.0
 * (docs/benchmarks.md, "HTTPS kept-alive"). A row measured after seconds of warm-up measures the compiler.
 */
async function warmUp(s: Settings, opts: Omit<LoadOptions, 'seconds'>): Promise<void> {
  for (let n = 0, i = 0; s.warmup > 0 && n < WARM_REQUESTS && i < 5; i++) n += (await runLoad(s.tool, { ...opts, seconds: s.warmup })).requests;
}

/** `helper`: a process the target depends on (redis-server), whose CPU is reported beside it. */
async function measureLoad(s: Settings, t: Target, label: string, kind: LoadRow['kind'], helper?: { name: string; pid: number | undefined }): Promise<LoadRow> {
  await preflight(t);
  process.stdout.write(`  ${label}: warm-up ${s.warmup}s, then ${s.seconds}s ... `);
  const opts = { url: t.url, host: t.host, connections: s.connections };
  // The warm-up lets the JIT settle and pools fill; its figures are thrown away.
  await warmUp(s, opts);
  const { value: result, cores: [cores, helperCores] } = await withCpu([t.pid, helper?.pid], () => runLoad(s.tool, { ...opts, seconds: s.seconds }));
  console.log(`${Math.round(result.rps)} req/s${helper ? `, ${helper.name} ${helperCores?.toFixed(2) ?? 'n/a'} cores` : ''}`);
  return { kind, target: label, result, cores, ...(helper ? { helper: { name: helper.name, cores: helperCores } } : {}) };
}

/**
 * meshgate as in the baseline row but for one thing each: two workers; a RateLimitPolicy with store
 * memory; and (with redis-server) one with store redis. Returns what went wrong: a row whose limits
 * refused requests, or whose Redis checks were decided locally, did not measure what it says; and
 * the observability pair's ratios (observability-pair.ts).
 */
async function measureVariants(s: Settings, upstreamPort: number, redisBin: string | undefined, loads: LoadRow[]): Promise<{ problems: string[]; observability: string }> {
  const two = await startMeshgate(upstreamPort, { workers: 2 });
  loads.push(await measureLoad(s, two.http, TWO_WORKERS, 'http'));
  await two.stop();
  const pair = await measureObservability({ ...s, warmRequests: WARM_REQUESTS }, upstreamPort);
  loads.push(...pair.rows);
  const { problems, ratio: observability } = pair;
  for (const store of redisBin ? (['memory', 'redis'] as const) : (['memory'] as const)) {
    const redis = store === 'redis' ? await startRedis(redisBin!) : undefined;
    const gw = await startMeshgate(upstreamPort, { rateLimit: store, ...(redis ? { redisUrl: redis.url } : {}) });
    loads.push(await measureLoad(s, gw.http, rateLimited(store), 'http', redis ? { name: 'redis-server', pid: redis.pid } : undefined));
    const c = await rateLimitCounts(gw.adminPort);
    if (c.allowed === 0 || c.limited > 0 || c.errors > 0) problems.push(`${rateLimited(store)}: ${c.allowed} checks allowed, ${c.limited} limited, ${c.errors} failed`);
    if (store === 'redis' && (!c.redis || c.redis.localDecisions > 0)) problems.push(`${rateLimited(store)}: ${c.redis?.localDecisions ?? 'all'} checks decided without Redis`);
    await gw.stop();
    await redis?.stop();
  }
  return { problems, observability };
}

/** `BENCH_ONLY=observability`: the observability pair alone, its two rows and their ratio. */
async function observabilityOnly(s: Settings, upstreamPort: number): Promise<number> {
  const { problems, rows: loads, ratio } = await measureObservability({ ...s, warmRequests: WARM_REQUESTS }, upstreamPort);
  return printOnly(loads, [['metrics + tracing 1 % / both off', ratio]], problems);
}

/** `BENCH_ONLY=plain`: meshgate, @fastify/http-proxy and the bare proxy in turns, their rows and ratios. */
async function plainOnly(s: Settings, upstreamPort: number): Promise<number> {
  const { rows: loads, p99, rps } = await measurePlainRounds({ ...s, warmRequests: WARM_REQUESTS }, upstreamPort, BASELINE);
  const [meshgate, fastify, bare] = loads;
  return printOnly(loads, [
    ['meshgate / @fastify/http-proxy', loadRatio(meshgate, fastify)],
    ['meshgate / node:http + undici Pool', loadRatio(meshgate, bare)],
    ['plain HTTP p99 per round', p99],
    ['plain HTTP req/s per round', rps],
  ], []);
}

/** `BENCH_ONLY=https`: meshgate, the Node floor and nginx over HTTPS kept-alive in turns, their rows and ratios. */
async function httpsOnly(s: Settings, upstreamPort: number, certs: BenchCerts, nginx: string | undefined): Promise<number> {
  const { rows: loads, perCore } = await measureHttpsRounds({ ...s, warmRequests: WARM_REQUESTS }, upstreamPort, certs, nginx);
  const [meshgate, floor, ng] = loads;
  return printOnly(loads, [
    ...(ng ? ([['meshgate / nginx, HTTPS kept-alive', loadRatio(meshgate, ng)], [`${TLS_FLOOR} / nginx, HTTPS kept-alive`, loadRatio(floor, ng)]] as const) : []),
    [`meshgate / ${TLS_FLOOR}, HTTPS kept-alive`, loadRatio(meshgate, floor)],
    [HTTPS_PER_ROUND, perCore],
  ], []);
}

const HTTPS_PER_ROUND = 'HTTPS kept-alive per core per round';

/** What a `BENCH_ONLY` run prints: its rows, its ratios, and what failed (the exit code). */
function printOnly(loads: readonly LoadRow[], ratios: readonly (readonly [string, string])[], problems: readonly string[]): number {
  console.log('');
  console.log(loadTable(loads));
  for (const [label, value] of ratios) console.log(`${label}: ${value}`);
  const failed = [...problems, ...loads.filter((r) => r.result.errors > 0).map((r) => `${r.target}: ${r.result.errors} failed requests (${r.result.errorDetail})`)];
  for (const f of failed) console.error(f);
  return failed.length > 0 ? 1 : 0;
}

/**
 * Warm-up handshakes before a handshake row is measured (up to five warm-up runs), by count as the
 * load rows are warmed: a connection runs code a kept-alive request does not (the TLS socket, the
 * HTTP server's per-connection setup, the close), and a fresh process's CPU per handshake settled
 * only after some 4,000 to 7,000 of them (docs/benchmarks.md, "New handshakes: the bound").
 */
const WARM_HANDSHAKES = 8_000;

/** `resume`: every connection offers one session (`s_time -reuse`): the resumption rate. */
async function measureHandshakes(s: Settings, openssl: string, t: TlsTarget, resume = false): Promise<HandshakeRow> {
  const { negotiated, answerBytes } = await handshakePreflight(t);
  process.stdout.write(`  ${t.name} ${resume ? 'resumed' : 'new'} handshakes (${KEY_LABEL[t.keyType]}, ${negotiated}): warm-up up to ${WARM_HANDSHAKES} handshakes in runs of ${s.warmup}s, then ${s.seconds}s ... `);
  const opts = { clients: s.clients, seconds: s.seconds, resume };
  for (let n = 0, i = 0; s.warmup > 0 && n < WARM_HANDSHAKES && i < 5; i++) n += (await runHandshakes(openssl, t, { ...opts, seconds: s.warmup }, answerBytes)).handshakes;
  const { value: result, cores: [cores] } = await withCpu([t.pid], () => runHandshakes(openssl, t, opts, answerBytes));
  console.log(`${Math.round(result.rate)} handshakes/s${result.resumed !== undefined ? `, ${result.resumed} of ${result.handshakes} resumed` : ''}`);
  return { target: t.name, keyType: t.keyType, result, cores, ...(resume ? { resumption: true } : {}) };
}

/** A TLS-terminating proxy's handshakes: new with each certificate, then resumed with the RSA one (its kept-alive row is taken in turns, rounds.ts). */
async function measureHandshakesOf(openssl: string, s: Settings, targets: readonly TlsTarget[], handshakes: HandshakeRow[]): Promise<void> {
  for (const t of targets) handshakes.push(await measureHandshakes(s, openssl, t));
  handshakes.push(await measureHandshakes(s, openssl, targets.find((t) => t.keyType === 'rsa')!, true));
}

/** One mesh measurement: the gateway's CPU and, on the mTLS path, the sidecar's CPU and peak memory. */
async function measureMeshLoad(s: Settings, t: Target, path: MeshRow['path'], mode: MeshRow['mode'], sidecarPid?: number): Promise<MeshRow> {
  await preflight(t);
  const label = mode === 'saturated' ? t.name : `${t.name}, ${s.meshRate} req/s`;
  process.stdout.write(`  ${label}: warm-up ${s.warmup}s, then ${s.seconds}s ... `);
  const opts = { url: t.url, host: t.host, connections: s.connections };
  const run = (seconds: number) => (mode === 'saturated' ? runLoad(s.tool, { ...opts, seconds }) : runPaced({ ...opts, seconds, rate: s.meshRate }));
  if (s.warmup > 0) await run(s.warmup);
  const rss = sampleMax(() => rssBytes(sidecarPid));
  const { value: result, cores: [gatewayCores, sidecarCores] } = await withCpu([t.pid, sidecarPid], () => run(s.seconds));
  const sidecarRssMaxBytes = rss.stop();
  console.log(`${Math.round(result.rps)} req/s, p90 ${result.p90Ms.toFixed(2)} ms`);
  return { path, mode, label, result, gatewayCores, sidecarCores, sidecarRssMaxBytes };
}

/** gateway → app, then gateway → sidecar → app over mTLS, each saturated and (unless 0) at BENCH_MESH_RATE. */
async function measureMesh(s: Settings, appPort: number): Promise<MeshReport> {
  const rows: MeshRow[] = [];
  const modes = s.meshRate > 0 ? (['saturated', 'paced'] as const) : (['saturated'] as const);
  const plain = await startMeshgate(appPort);
  for (const mode of modes) rows.push(await measureMeshLoad(s, { ...plain.http, name: 'mesh, plain' }, 'plain', mode));
  await plain.stop();

  const mesh = await startMesh(appPort);
  process.stdout.write(`  sidecar idle: the most held ${IDLE_FROM_MS / 1000}–${IDLE_TO_MS / 1000} s after ready ... `);
  const mostFor = async (ms: number) => {
    const rss = sampleMax(() => rssBytes(mesh.sidecarPid), 250);
    await new Promise((r) => setTimeout(r, ms));
    return rss.stop();
  };
  const sidecarStartRssBytes = await mostFor(IDLE_FROM_MS);
  const sidecarIdleRssBytes = await mostFor(IDLE_TO_MS - IDLE_FROM_MS);
  console.log(`${((sidecarIdleRssBytes ?? NaN) / 2 ** 20).toFixed(1)} MB`);
  for (const mode of modes) rows.push(await measureMeshLoad(s, mesh.gateway, 'mtls', mode, mesh.sidecarPid));
  await mesh.stop();
  return { rows, sidecarIdleRssBytes, sidecarStartRssBytes, idleWindowS: [IDLE_FROM_MS / 1000, IDLE_TO_MS / 1000] };
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
    meshRate: envInt('BENCH_MESH_RATE', 1000),
  };
  const nginx = findNginx();
  const redisBin = findRedis();
  const caddyBin = findCaddy();
  const haproxyBin = findHaproxy();
  console.log(`meshgate bench: ${tool}, ${s.connections} connections, ${s.seconds}s per target, node ${process.version} (OpenSSL ${process.versions.openssl}), ${cpus().length} cpu(s)`);
  if (tool === 'autocannon') console.log('  wrk not found on PATH: using autocannon, which takes more CPU from the targets (apt-get install wrk)');
  if (!nginx) console.log('  nginx not found: the HTTPS comparisons meshgate / nginx are skipped; meshgate\'s HTTPS figures still run (apt-get install nginx)');
  if (!caddyBin) console.log('  caddy not found: the plain-HTTP row for caddy is skipped (apt-get install caddy)');
  if (!haproxyBin) console.log('  haproxy not found: the plain-HTTP row for haproxy is skipped (apt-get install haproxy)');
  if (!s.openssl) console.log('  openssl not found: new-handshake figures are skipped (apt-get install openssl)');
  else console.log(`  new handshakes: ${s.clients} × \`openssl s_time -new\`, each connection a full TLS handshake and one request; resumed: \`s_time -reuse\`, each connection offering one session`);
  console.log(`  HTTPS: kept-alive rows use the ${KEY_LABEL.rsa} certificate; handshakes run with ${KEY_LABEL.rsa} and ${KEY_LABEL.ec}, the same files for every target`);
  console.log(`  plain HTTP: meshgate, @fastify/http-proxy and the bare proxy take turns in rounds; their rows are the medians over the rounds`);
  console.log(`  HTTPS kept-alive: meshgate, the Node floor${nginx ? ' and nginx' : ''} take turns in rounds in the same way; handshakes run one target at a time`);
  console.log(`  workers: meshgate --workers 2 against one worker; on ${cpus().length} cpu(s) shared with the load generator and the upstream, a second worker gains only what they leave`);
  console.log(`  rate limits: a RateLimitPolicy counting every request (one client, one key) with store memory${redisBin ? ' and store redis (redis-server, a process of its own)' : '; redis-server not found, so the store redis row is skipped (apt-get install redis-server)'}`);
  console.log(`  mesh: control plane, one sidecar and the gateway, each its own process; saturated with ${tool}${s.meshRate > 0 ? `, then ${s.meshRate} req/s spread evenly (the bench's own client, timed from when each request was due)` : ''}`);

  if (process.env.BENCH_ONLY === 'sidecar') return sidecarOnly(s);

  const loads: LoadRow[] = [];
  const handshakes: HandshakeRow[] = [];
  const certs = await writeBenchCerts(await tempDir('meshgate-bench-certs-'));
  const upstream = await startUpstream();
  if (process.env.BENCH_ONLY === 'observability') return observabilityOnly(s, upstream.port);
  if (process.env.BENCH_ONLY === 'plain') return plainOnly(s, upstream.port);
  if (process.env.BENCH_ONLY === 'https') return httpsOnly(s, upstream.port, certs, nginx);

  // One proxy at a time, so an idle proxy never takes CPU from the one being measured. The
  // variants of meshgate follow its baseline at once, so their ratios span the least time.
  // meshgate, @fastify/http-proxy and the bare proxy in turns (rounds.ts): the p99 target's rows.
  const plain = await measurePlainRounds({ ...s, warmRequests: WARM_REQUESTS }, upstream.port, BASELINE);
  const [meshgateRow, fastifyRow, bareRow] = plain.rows as [LoadRow, LoadRow, LoadRow];
  loads.push(meshgateRow);
  const { problems: variantProblems, observability } = await measureVariants(s, upstream.port, redisBin, loads);

  // meshgate, the Node floor for TLS (what meshgate's HTTPS could reach with no routing at all) and
  // nginx over HTTPS kept-alive in turns (rounds.ts): the kept-alive TLS target's rows.
  const https = await measureHttpsRounds({ ...s, warmRequests: WARM_REQUESTS }, upstream.port, certs, nginx);
  const [meshgateHttps, floorHttps, nginxHttps] = https.rows;
  loads.push(meshgateHttps!, floorHttps!);

  if (s.openssl) {
    const mesh = await startMeshgate(upstream.port, { certs });
    await measureHandshakesOf(s.openssl, s, mesh.https, handshakes);
    await mesh.stop();
    const tlsFloor = await startTlsFloor(upstream.port, certs);
    await measureHandshakesOf(s.openssl, s, tlsFloor, handshakes);
    await Promise.all(tlsFloor.map((t) => t.stop()));
  }

  loads.push(fastifyRow, bareRow);

  if (caddyBin) {
    const caddy = await startCaddy(caddyBin, upstream.port);
    loads.push(await measureLoad(s, caddy, caddy.name, 'http'));
    await caddy.stop();
  }

  if (haproxyBin) {
    const haproxy = await startHaproxy(haproxyBin, upstream.port);
    loads.push(await measureLoad(s, haproxy, haproxy.name, 'http'));
    await haproxy.stop();
  }

  if (nginx) {
    const ng = await startNginx(nginx, upstream.port, certs);
    loads.push(await measureLoad(s, ng.http, ng.http.name, 'http'), nginxHttps!);
    if (s.openssl) await measureHandshakesOf(s.openssl, s, ng.https, handshakes);
    await ng.http.stop();
  }

  const meshReport = await measureMesh(s, upstream.port);

  loads.push(await measureLoad(s, upstream, upstream.name, 'http'));

  console.log('');
  console.log(loadTable(loads));
  if (handshakes.length > 0) {
    console.log('');
    console.log(handshakeTable(handshakes));
  }
  console.log('');
  const load = (target: string, kind: LoadRow['kind']) => loads.find((r) => r.kind === kind && r.target.startsWith(target));
  const hs = (target: string, k: KeyType, resumption = false) => handshakes.find((r) => r.target === target && r.keyType === k && (r.resumption ?? false) === resumption);
  const row = (target: string) => loads.find((r) => r.target === target);
  const ratios: [string, string][] = [
    ['meshgate / @fastify/http-proxy', loadRatio(row(BASELINE), load('@fastify', 'http'))],
    ['meshgate / node:http + undici Pool', loadRatio(row(BASELINE), row(BARE_PROXY))],
    ['plain HTTP p99 per round', plain.p99],
    ['plain HTTP req/s per round', plain.rps],
    ['meshgate / caddy', loadRatio(row(BASELINE), row(CADDY))],
    ['meshgate / haproxy', loadRatio(row(BASELINE), row(HAPROXY))],
    ['meshgate / nginx, HTTP', loadRatio(row(BASELINE), row(NGINX_HTTP))],
    ['meshgate / direct', loadRatio(row(BASELINE), load('upstream', 'http'))],
    ['meshgate --workers 2 / 1 worker', loadRatio(row(TWO_WORKERS), row(BASELINE))],
    ['metrics + tracing 1 % / both off', observability],
  ];
  for (const store of ['memory', 'redis'] as const) {
    const limited = row(rateLimited(store));
    if (!limited) continue;
    const helper = limited.helper ? `; ${limited.helper.name} ${limited.helper.cores?.toFixed(2) ?? 'n/a'} cores` : '';
    ratios.push([`RateLimitPolicy ${store} / none`, `${loadRatio(limited, row(BASELINE))}${helper}`]);
  }
  if (nginx) {
    ratios.push(['meshgate / nginx, HTTPS kept-alive', loadRatio(load('meshgate', 'https'), load('nginx', 'https'))]);
    for (const k of handshakes.length > 0 ? (['rsa', 'ec'] as const) : []) {
      ratios.push([`meshgate / nginx, handshakes ${KEY_LABEL[k]}`, handshakeRatio(hs('meshgate', k), hs('nginx', k))]);
    }
    if (handshakes.length > 0) ratios.push([`meshgate / nginx, resumed handshakes`, handshakeRatio(hs('meshgate', 'rsa', true), hs('nginx', 'rsa', true))]);
    // How far the Node floor itself is from nginx: the most meshgate's TLS rows could reach in Node.
    ratios.push([`${TLS_FLOOR} / nginx, HTTPS kept-alive`, loadRatio(load(TLS_FLOOR, 'https'), load('nginx', 'https'))]);
    for (const k of handshakes.length > 0 ? (['rsa', 'ec'] as const) : []) {
      ratios.push([`${TLS_FLOOR} / nginx, handshakes ${KEY_LABEL[k]}`, handshakeRatio(hs(TLS_FLOOR, k), hs('nginx', k))]);
    }
  }
  ratios.push([`meshgate / ${TLS_FLOOR}, HTTPS kept-alive`, loadRatio(load('meshgate', 'https'), load(TLS_FLOOR, 'https'))]);
  ratios.push([HTTPS_PER_ROUND, https.perCore]);
  for (const k of handshakes.length > 0 ? (['rsa', 'ec'] as const) : []) {
    ratios.push([`meshgate / ${TLS_FLOOR}, handshakes ${KEY_LABEL[k]}`, handshakeRatio(hs('meshgate', k), hs(TLS_FLOOR, k))]);
  }
  ratios.push(...meshRatios(meshReport));
  const width = Math.max(...ratios.map(([label]) => label.length)) + 1;
  for (const [label, value] of ratios) console.log(`${`${label}:`.padEnd(width)} ${value}`);
  console.log('cpu: cores the measured process kept busy (nginx: master and its one worker); per core = rate / cpu.');
  console.log('');
  console.log(meshTable(meshReport));
  console.log('');
  console.log(anchorTable(meshReport));

  const sizes = scaleSizes();
  let servedProblems: string[] = [];
  if (sizes.length > 0) {
    const table = scaleTable(await runScale(sizes));
    const served = await servedScale({ ...s, warmRequests: WARM_REQUESTS }, upstream, sizes);
    servedProblems = served.problems;
    console.log('');
    console.log(table);
    for (const line of served.lines) console.log(line);
    console.log('');
    console.log(pushTable(await runPush(sizes)));
  }

  const failed = [
    ...variantProblems,
    ...servedProblems,
    ...loads.filter((r) => r.result.errors > 0).map((r) => `${r.target}: ${r.result.errors} failed requests (${r.result.errorDetail})`),
    ...meshReport.rows.filter((r) => r.result.errors > 0).map((r) => `${r.label}: ${r.result.errors} failed requests (${r.result.errorDetail})`),
    ...handshakes.filter((r) => r.result.errors > 0).map((r) => `${r.target} handshakes ${KEY_LABEL[r.keyType]}: ${r.result.errorDetail}`),
    // A resumption row where sessions did not resume measured full handshakes under another name.
    ...handshakes.filter((r) => r.resumption && (r.result.resumed ?? 0) < r.result.handshakes * 0.9).map((r) => `${r.target} resumed handshakes: only ${r.result.resumed} of ${r.result.handshakes} resumed`),
  ];
  for (const f of failed) console.error(f);
  return failed.length > 0 ? 1 : 0;
}

/** BENCH_ONLY=sidecar: the mesh rows alone, plain against mTLS, and the sidecar beside Istio's figures. */
async function sidecarOnly(s: Settings): Promise<number> {
  const upstream = await startUpstream();
  const report = await measureMesh(s, upstream.port);
  await upstream.stop();
  console.log('');
  for (const [label, value] of meshRatios(report)) console.log(`${label}: ${value}`);
  console.log('');
  console.log(meshTable(report));
  console.log('');
  console.log(anchorTable(report));
  const failed = report.rows.filter((r) => r.result.errors > 0).map((r) => `${r.label}: ${r.result.errors} failed requests (${r.result.errorDetail})`);
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
