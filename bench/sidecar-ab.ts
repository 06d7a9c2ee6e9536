// The sidecar's CPU per request and memory, builds or V8 flags against each other, taking turns: on a
// loaded machine a run's CPU per request moves by a fifth from one minute to the next, so only
// variants measured alternately, round after round, and compared by their medians say anything.
// Run after `npm run build`:
//
//   SIDECAR_AB_VARIANTS='[{"name":"before","root":"/path/to/another/checkout"},{"name":"after"},
//                         {"name":"no --liftoff-only","drop":"--liftoff-only"},
//                         {"name":"other flags","flags":"--liftoff-only","nodeOptions":"--max-semi-space-size=2"}]' node dist/bench/sidecar-ab.js
//
// Each variant is a mesh of its own as the bench starts it (mesh.ts: control plane, sidecar, gateway),
// from the package root `root` (a built checkout; this one when left out), its sidecar setting on
// itself the V8 flags `flags` instead of the command's own (space-separated), without those named in
// `drop` (sidecar-v8-flags-preload.ts), and with `nodeOptions` instead of the injected NODE_OPTIONS.
// All are started first; then each round paces 1000 req/s (paced-load.ts, 50 connections) through
// each gateway in turn, the order reversed every other round: 2 s of warm-up, then
// SIDECAR_AB_SECONDS (8) measured, SIDECAR_AB_ROUNDS (6) rounds. SIDECAR_AB_TARGET=inbound paces
// straight to each sidecar's inbound port instead, with a client certificate for the gateway's
// identity (no gateway, so none of the headers it adds). Printed per variant: the sidecar's CPU per
// request (utime + stime of all its threads, from /proc), its main thread's share, its RSS 2 s after
// start and the most it held while measured. SIDECAR_AB_PERF=DIR records each sidecar with Linux perf
// while it is measured (files in DIR; its NODE_OPTIONS then name JavaScript for perf) and prints the
// median µs per request by where the CPU went, the kernel and V8's compilers among it (perf-breakdown.ts).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gatewayClientTls, type MeshTargets } from './mesh.js';
import { runPaced, type PacedOptions } from './paced-load.js';
import { findPerf, perfBreakdown, printMedianBreakdown, recordPerf } from './perf-breakdown.js';
import { preciseCpuSeconds, rssBytes, sampleMax, stopAll, tempDir } from './processes.js';
import { BENCH_HOST, startUpstream } from './targets.js';
import { SIDECAR_NODE_OPTIONS } from '../src/core/inject/sidecar-node-options.js';

// dist/bench/ → the package root.
const HERE = fileURLToPath(new URL('../..', import.meta.url));
const PRELOAD = fileURLToPath(new URL('./sidecar-v8-flags-preload.js', import.meta.url));
const ROUNDS = Number(process.env.SIDECAR_AB_ROUNDS ?? 6);
const SECONDS = Number(process.env.SIDECAR_AB_SECONDS ?? 8);
const INBOUND = process.env.SIDECAR_AB_TARGET === 'inbound';
const PERF_DIR = process.env.SIDECAR_AB_PERF;

interface Variant {
  readonly name: string;
  readonly root?: string;
  readonly drop?: string;
  readonly flags?: string;
  readonly nodeOptions?: string;
}

interface Running {
  readonly variant: Variant;
  readonly mesh: MeshTargets;
  /** Where the paced client goes: the gateway, or the sidecar's inbound port over mutual TLS. */
  readonly target: PacedOptions;
  readonly idleMb: number;
  readonly us: number[];
  readonly mainUs: number[];
  readonly rssMaxMb: number[];
  readonly perf: [string, number][][];
}

/** CPU seconds of a process's main thread alone (its task whose id is the pid). */
function mainThreadSeconds(pid: number | undefined): number {
  const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

async function startVariant(v: Variant, appPort: number): Promise<MeshTargets> {
  const { startMesh } = (await import(join(v.root ?? HERE, 'dist/bench/mesh.js'))) as typeof import('./mesh.js');
  // mesh.ts reads these when it starts the sidecar.
  process.env.BENCH_SIDECAR_NODE_OPTIONS = `${v.nodeOptions ?? SIDECAR_NODE_OPTIONS} --import=${PRELOAD}${PERF_DIR ? ' --perf-basic-prof-only-functions' : ''}`;
  process.env.SIDECAR_AB_DROP_FLAGS = v.drop ?? '';
  if (v.flags === undefined) delete process.env.SIDECAR_AB_V8_FLAGS;
  else process.env.SIDECAR_AB_V8_FLAGS = v.flags;
  // On a machine this loaded a process can miss its start-up deadline: one more try before giving up.
  return startMesh(appPort).catch(() => startMesh(appPort));
}

async function main(): Promise<void> {
  const variants = JSON.parse(process.env.SIDECAR_AB_VARIANTS ?? '[{"name":"this build"}]') as Variant[];
  const perf = PERF_DIR ? findPerf() : undefined;
  if (PERF_DIR && !perf) throw new Error('SIDECAR_AB_PERF is set but perf is not installed');
  const upstream = await startUpstream();
  const running: Running[] = [];
  try {
    for (const v of variants) {
      const mesh = await startVariant(v, upstream.port);
      const common = { host: BENCH_HOST, connections: 50, rate: 1000, seconds: SECONDS };
      const target = INBOUND
        ? { ...common, url: `https://127.0.0.1:${mesh.sidecarInbound}/`, tls: await gatewayClientTls(mesh.caDir, await tempDir('meshgate-bench-ab-')) }
        : { ...common, url: mesh.gateway.url };
      running.push({ variant: v, mesh, target, idleMb: 0, us: [], mainUs: [], rssMaxMb: [], perf: [] });
    }
    await new Promise((r) => setTimeout(r, 2000));
    for (const [i, r] of running.entries()) running[i] = { ...r, idleMb: (rssBytes(r.mesh.sidecarPid) ?? 0) / 2 ** 20 };
    for (let round = 0; round < ROUNDS; round++) {
      for (const r of round % 2 === 0 ? running : [...running].reverse()) {
        await runPaced({ ...r.target, seconds: 2 });
        const pid = r.mesh.sidecarPid;
        const file = PERF_DIR ? join(PERF_DIR, `${r.variant.name.replace(/[^a-z0-9]+/gi, '-')}-${round + 1}.data`) : '';
        const recording = perf && pid ? await recordPerf(perf, pid, file) : undefined;
        const rss = sampleMax(() => rssBytes(pid), 100);
        const cpu0 = preciseCpuSeconds(pid) ?? 0;
        const main0 = mainThreadSeconds(pid);
        const result = await runPaced(r.target);
        if (recording) {
          await recording.stop();
          r.perf.push(perfBreakdown(perf!, file, result.requests));
        }
        if (result.errors > 0) throw new Error(`${r.variant.name}: ${result.errorDetail}`);
        r.us.push((((preciseCpuSeconds(pid) ?? 0) - cpu0) / result.requests) * 1e6);
        r.mainUs.push(((mainThreadSeconds(pid) - main0) / result.requests) * 1e6);
        r.rssMaxMb.push((rss.stop() ?? 0) / 2 ** 20);
        console.log(`round ${round + 1} ${r.variant.name}: ${r.us.at(-1)!.toFixed(0)} µs CPU per request (main thread ${r.mainUs.at(-1)!.toFixed(0)}), RSS max ${r.rssMaxMb.at(-1)!.toFixed(1)} MB`);
      }
    }
    console.log(`\nmedians of ${ROUNDS} rounds of ${SECONDS} s at 1000 req/s ${INBOUND ? 'straight to the sidecar\'s inbound port' : 'through the gateway'}, over mutual TLS to the sidecar`);
    console.log('variant                         µs CPU/request  main thread  RSS idle MB  RSS max MB');
    for (const r of running) {
      console.log(`${r.variant.name.padEnd(30)} ${median(r.us).toFixed(0).padStart(15)}  ${median(r.mainUs).toFixed(0).padStart(11)}  ${r.idleMb.toFixed(1).padStart(11)}  ${median(r.rssMaxMb).toFixed(1).padStart(10)}`);
    }
    for (const r of running) if (r.perf.length > 0) printMedianBreakdown(r.variant.name, r.perf);
    const [first, ...rest] = running;
    for (const r of rest) console.log(`${r.variant.name} / ${first!.variant.name}, round by round: ${r.us.map((u, i) => (u / first!.us[i]!).toFixed(2)).join(' ')}`);
  } finally {
    for (const r of running) await r.mesh.stop();
    await upstream.stop();
  }
}

main()
  .catch((err: unknown) => {
    console.error(`sidecar-ab failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
