// What tracing at 1 % costs one gateway, with the process held constant: one gateway, its mesh config
// rewritten between short slices of load to tracing at 1 % to the span sink (the pair's "on" mesh
// config) or tracing disabled (its "off" one), each slice charged its CPU per request. Two gateways of
// one build differ by up to a tenth in CPU per request for their whole life (observability-cost.ts),
// more than the pair measures; one process taking both turns leaves only the machine's drift between
// slices, which alternating the order cancels. What it cannot show is what a process that never saw a
// sampled span compiles differently: both modes run the same JIT'd code here. Metrics are not
// toggled (the metrics port is a flag, not configuration).
//
//   npx tsc -p . && node dist/bench/observability-toggle.js
//   TOGGLE_ROUNDS=12 TOGGLE_SECONDS=3 node dist/bench/observability-toggle.js

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pickTool, runLoad } from './load.js';
import { preciseCpuSeconds, tempDir } from './processes.js';
import { median, quantile } from './report.js';
import { meshConfigMap, meshgateConfig, startMeshgate, startSpanSink, startUpstream, stopAll, type MeshgateTargets } from './targets.js';

const rounds = Number(process.env.TOGGLE_ROUNDS ?? 10);
const seconds = Number(process.env.TOGGLE_SECONDS ?? 3);
const MODES = ['tracing', 'off'] as const;
type Mode = (typeof MODES)[number];

/** Waits until the gateway serves the mesh config just written (its admin /config_dump shows it). */
async function untilServed(gw: MeshgateTargets, mesh: string): Promise<void> {
  const wanted = /mesh: \|\n {4}([\s\S]*)$/.exec(mesh)![1]!.replace(/\n {4}/g, '\n').trim();
  for (let i = 0; i < 200; i++) {
    const dump = (await (await fetch(`http://127.0.0.1:${gw.adminPort}/config_dump`)).json()) as { resources: { kind: string; data?: { mesh?: string } }[] };
    if (dump.resources.some((r) => r.kind === 'ConfigMap' && r.data?.mesh?.trim() === wanted)) return;
    await sleep(50);
  }
  throw new Error('the gateway did not take the new mesh config within 10 s');
}

async function main(): Promise<void> {
  const sink = await startSpanSink();
  const upstream = await startUpstream();
  const dir = await tempDir('meshgate-toggle-');
  writeFileSync(join(dir, 'bench.yaml'), meshgateConfig(upstream.port));
  const meshOf = (mode: Mode): string => meshConfigMap({ mode, otlpPort: sink.port });
  const gw = await startMeshgate(upstream.port, { observability: { mode: 'tracing', otlpPort: sink.port }, config: { dir, readyMs: 20_000 } });
  const cpuUs = (): number => (preciseCpuSeconds(gw.http.pid) ?? NaN) * 1e6;
  const tool = pickTool();
  const load = (secs: number) => runLoad(tool, { url: gw.http.url, host: gw.http.host, connections: 50, seconds: secs });
  const use = async (mode: Mode): Promise<void> => {
    writeFileSync(join(dir, 'mesh-config.yaml'), meshOf(mode));
    await untilServed(gw, meshOf(mode));
  };
  try {
    // Warm-up in both modes, so that neither runs code the other compiled alone.
    for (let i = 0; i < 8; i++) {
      await use(MODES[i % 2]!);
      await load(2);
    }
    const us: Record<Mode, number[]> = { tracing: [], off: [] };
    const ratios: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const got = {} as Record<Mode, number>;
      for (const mode of r % 2 === 0 ? MODES : [...MODES].reverse()) {
        await use(mode);
        await load(1);
        const batches = sink.batches();
        const before = cpuUs();
        const l = await load(seconds);
        if (l.errors > 0) throw new Error(`${l.errors} failed requests (${l.errorDetail})`);
        us[mode].push((got[mode] = (cpuUs() - before) / l.requests));
        if (mode === 'tracing' && sink.batches() === batches) throw new Error('tracing on, but no span batch reached the sink');
      }
      ratios.push(got.tracing / got.off);
      console.log(`round ${r + 1}: tracing 1 % ${got.tracing.toFixed(1)} µs, off ${got.off.toFixed(1)} µs a request, ${ratios[r]!.toFixed(3)}×`);
    }
    console.log(`\none gateway, ${rounds} rounds of ${seconds} s slices each way (${tool}, 50 connections): tracing 1 % / off ${median(ratios).toFixed(3)}× CPU per request (rounds' quartiles ${quantile(ratios, 0.25).toFixed(3)}–${quantile(ratios, 0.75).toFixed(3)}), ${median(us.tracing).toFixed(1)} against ${median(us.off).toFixed(1)} µs; ${sink.batches()} span batches`);
  } finally {
    await gw.stop();
    await sink.close();
    await stopAll();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
