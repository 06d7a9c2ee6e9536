// The sidecar against the Node floor for its work: how much of its CPU and memory at a fixed rate
// over mutual TLS is Node's (a bare node:https + undici Pool forwarder doing the same hop,
// sidecar-floor-server.ts, and the same with node:http's client to the app) and how much is meshgate's. Run after `npm run build`:
//
//   node dist/bench/sidecar-floor.js
//
// The mesh starts as the bench starts it (mesh.ts); a client certificate for the gateway's identity
// and a server certificate for the app's are signed by the mesh's CA, so the bench's paced client
// (paced-load.ts) speaks mutual TLS straight to the sidecar's inbound port and to the floor, which
// runs with the sidecar's environment (NODE_OPTIONS, MALLOC_ARENA_MAX) and once more with the V8
// flags the sidecar sets on itself, set at run time as the sidecar sets them. SIDECAR_FLOOR_FLAGS, one
// set of V8 flags a line, adds a floor for each (set at run time; on `node`'s command line when the
// line starts with `command line:`). The targets take turns, round after round, so a loaded machine
// weighs on each alike; medians are printed. SIDECAR_FLOOR_ROUNDS (6), SIDECAR_FLOOR_SECONDS (8),
// SIDECAR_FLOOR_RATE (1000 req/s), over 50 connections. SIDECAR_FLOOR_PERF=DIR records each target
// with Linux perf while it is measured (files in DIR) and prints, per target, the median µs per
// request by where the CPU went, the kernel included (perf-breakdown.ts); the sidecar and the floors
// then run with --perf-basic-prof-only-functions, so that their JavaScript is named.

import { fork } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gatewayClientTls, meshCertificate, startMesh } from './mesh.js';
import { runPaced } from './paced-load.js';
import { findPerf, perfBreakdown, printMedianBreakdown, recordPerf } from './perf-breakdown.js';
import { preciseCpuSeconds, rssBytes, sampleMax, stopAll, tempDir, track } from './processes.js';
import { BENCH_HOST, startUpstream } from './targets.js';
import { SIDECAR_ENV, SIDECAR_NODE_OPTIONS, SIDECAR_V8_FLAGS } from '../src/core/inject/sidecar-node-options.js';

const FLOOR_SERVER = fileURLToPath(new URL('./sidecar-floor-server.js', import.meta.url));
const number = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);
const ROUNDS = number('SIDECAR_FLOOR_ROUNDS', 6);
const SECONDS = number('SIDECAR_FLOOR_SECONDS', 8);
const RATE = number('SIDECAR_FLOOR_RATE', 1000);
const CONNECTIONS = 50;
const COMMAND_LINE = 'command line:';
const PERF_DIR = process.env.SIDECAR_FLOOR_PERF;
/** V8 writes /tmp/perf-<pid>.map, which names JavaScript functions in perf's report. */
const PERF_NAMES = '--perf-basic-prof-only-functions';

interface Variant {
  readonly name: string;
  readonly pid: number | undefined;
  readonly port: number;
}

interface Sample {
  readonly usPerRequest: number;
  readonly rssMaxMb: number;
  readonly p90Ms: number;
}

/** v8Flags are set at run time; a line that starts with `command line:` gives them to `node` instead. */
async function startFloor(name: string, certs: { cert: string; key: string }, rootCert: string, appPort: number, v8Flags: string, appClient = 'undici'): Promise<Variant> {
  const onCommandLine = v8Flags.startsWith(COMMAND_LINE);
  const flags = onCommandLine ? v8Flags.slice(COMMAND_LINE.length).trim() : v8Flags;
  const env = { ...process.env, ...SIDECAR_ENV, SIDECAR_FLOOR_V8_FLAGS: onCommandLine ? '' : flags, SIDECAR_FLOOR_APP_CLIENT: appClient };
  const execArgv = [...(onCommandLine ? flags.split(' ').filter(Boolean) : []), ...(PERF_DIR ? [PERF_NAMES] : [])];
  const child = track(
    fork(FLOOR_SERVER, [certs.cert, certs.key, rootCert, `http://127.0.0.1:${appPort}`], { execArgv, env, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] }),
    name,
  );
  return { name, pid: child.pid, port: await child.reportedPort() };
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

async function main(): Promise<void> {
  const perf = PERF_DIR ? findPerf() : undefined;
  if (PERF_DIR && !perf) throw new Error('SIDECAR_FLOOR_PERF is set but perf is not installed');
  // mesh.ts starts the sidecar with these.
  if (PERF_DIR) process.env.BENCH_SIDECAR_NODE_OPTIONS ??= `${SIDECAR_NODE_OPTIONS} ${PERF_NAMES}`;
  const breakdowns = new Map<string, [string, number][][]>();
  const upstream = await startUpstream();
  const mesh = await startMesh(upstream.port);
  const dir = await tempDir('meshgate-bench-floor-');
  const rootCert = join(mesh.caDir, 'root-cert.pem');
  const server = await meshCertificate(mesh.caDir, dir, 'server', 'default', 'bench-upstream');
  const tls = await gatewayClientTls(mesh.caDir, dir);
  const variants: Variant[] = [
    { name: 'meshgate sidecar', pid: mesh.sidecarPid, port: mesh.sidecarInbound },
    await startFloor('node:https mTLS + undici Pool', server, rootCert, upstream.port, ''),
    await startFloor('the same + the sidecar\'s V8 flags', server, rootCert, upstream.port, SIDECAR_V8_FLAGS),
    await startFloor('the same, node:http client to the app', server, rootCert, upstream.port, SIDECAR_V8_FLAGS, 'node:http'),
    // SIDECAR_FLOOR_FLAGS: more floors, each with the V8 flags of one line (run-time flags).
    ...(await Promise.all(
      (process.env.SIDECAR_FLOOR_FLAGS ?? '').split('\n').filter(Boolean).map((flags) => startFloor(`floor: ${flags}`, server, rootCert, upstream.port, flags)),
    )),
  ];
  // One request through each first, as the mesh's start sent one through the sidecar: idle is then
  // a process that has served, its client to the app set up (undici's parser compiled).
  for (const v of variants) await runPaced({ url: `https://127.0.0.1:${v.port}/`, host: BENCH_HOST, connections: 1, rate: 10, seconds: 0.2, tls });
  await new Promise((r) => setTimeout(r, 2000));
  const idle = new Map(variants.map((v) => [v.name, (rssBytes(v.pid) ?? 0) / 2 ** 20]));
  const samples = new Map<string, Sample[]>(variants.map((v) => [v.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const v of round % 2 === 0 ? variants : [...variants].reverse()) {
      const opts = { url: `https://127.0.0.1:${v.port}/`, host: BENCH_HOST, connections: CONNECTIONS, rate: RATE, tls };
      await runPaced({ ...opts, seconds: 2 });
      const file = PERF_DIR ? join(PERF_DIR, `${v.name.replace(/[^a-z0-9]+/gi, '-')}-${round + 1}.data`) : '';
      const recording = perf && v.pid ? await recordPerf(perf, v.pid, file) : undefined;
      const rss = sampleMax(() => rssBytes(v.pid), 100);
      const cpu0 = preciseCpuSeconds(v.pid) ?? 0;
      const result = await runPaced({ ...opts, seconds: SECONDS });
      const cpu = (preciseCpuSeconds(v.pid) ?? 0) - cpu0;
      if (recording) {
        await recording.stop();
        breakdowns.set(v.name, [...(breakdowns.get(v.name) ?? []), perfBreakdown(perf!, file, result.requests)]);
      }
      const sample = { usPerRequest: (cpu / result.requests) * 1e6, rssMaxMb: (rss.stop() ?? 0) / 2 ** 20, p90Ms: result.p90Ms };
      if (result.errors > 0) throw new Error(`${v.name}: ${result.errorDetail}`);
      samples.get(v.name)!.push(sample);
      console.log(`round ${round + 1} ${v.name}: ${sample.usPerRequest.toFixed(0)} µs CPU per request, RSS max ${sample.rssMaxMb.toFixed(1)} MB, p90 ${sample.p90Ms.toFixed(2)} ms`);
    }
  }
  console.log(`\nmedians of ${ROUNDS} rounds at ${RATE} req/s over mutual TLS (${CONNECTIONS} connections)`);
  console.log('target                                   µs CPU/request  vCPU per 1000 req/s  RSS idle MB  RSS max MB');
  for (const v of variants) {
    const s = samples.get(v.name)!;
    const us = median(s.map((x) => x.usPerRequest));
    console.log(`${v.name.padEnd(40)} ${us.toFixed(0).padStart(14)}  ${(us / 1000).toFixed(3).padStart(19)}  ${idle.get(v.name)!.toFixed(1).padStart(11)}  ${median(s.map((x) => x.rssMaxMb)).toFixed(1).padStart(10)}`);
  }
  for (const [name, runs] of breakdowns) printMedianBreakdown(name, runs);
  await mesh.stop();
  await upstream.stop();
}

main()
  .catch((err: unknown) => {
    console.error(`sidecar-floor failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
