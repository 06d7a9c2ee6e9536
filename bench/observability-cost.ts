// The CPU time per request that Istio metrics plus 1 % tracing cost the gateway, measured where
// req/s cannot be: on a machine others are loading. Two gateways (metrics + tracing 1 % to a
// loopback OTLP sink, and both off) run side by side; one at a time takes a short slice of load at
// a fixed rate, in alternating order (on off, off on, …), and each slice's CPU (its threads' running
// time from /proc, to the nanosecond) is charged to it. Each round (one slice of each) gives a
// ratio of their CPU per request. Two processes of the same build can differ by a tenth in CPU per
// request for their whole life, so the pair is started afresh several times; the figure is the
// median over all rounds of all pairs (each pair's own median and the totals are printed beside it).
// req/s at equal CPU is its inverse.
//
//   npx tsc -p . && node dist/bench/observability-cost.js
//   OBSERVABILITY_PAIRS=4 OBSERVABILITY_SLICES=8 OBSERVABILITY_RATE=500 OBSERVABILITY_SLICE_SECONDS=2 node dist/bench/observability-cost.js
//   OBSERVABILITY_PROFILE=DIR: the gateways run under --cpu-prof, their profiles written into DIR when they stop.

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { runPaced } from './paced-load.js';
import { preciseCpuSeconds } from './processes.js';
import { median } from './report.js';
import { startMeshgate, startUpstream, stopAll } from './targets.js';

const pairs = Number(process.env.OBSERVABILITY_PAIRS ?? 4);
const slices = Number(process.env.OBSERVABILITY_SLICES ?? 8);
const rate = Number(process.env.OBSERVABILITY_RATE ?? 500);
const seconds = Number(process.env.OBSERVABILITY_SLICE_SECONDS ?? 2);
const profile = process.env.OBSERVABILITY_PROFILE;

const WARM_REQUESTS = 20_000;
const MODES = [['on', 'metrics + tracing 1 %'], ['off', 'both off']] as const;

interface Side {
  cpu: number;
  requests: number;
  /** CPU seconds per request of each slice, by round. */
  readonly perSlice: number[];
}

async function main(): Promise<void> {
  // The sink only answers: what exporting costs is the gateway's.
  const sink = createServer((req, res) => req.resume().on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}')));
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  const otlpPort = (sink.address() as AddressInfo).port;
  const upstream = await startUpstream();
  const sides: Record<'on' | 'off', Side> = { on: { cpu: 0, requests: 0, perSlice: [] }, off: { cpu: 0, requests: 0, perSlice: [] } };
  const ratioOf = (from: number): number[] => sides.on.perSlice.slice(from).map((c, i) => c / sides.off.perSlice[from + i]!);
  try {
    for (let pair = 0; pair < pairs; pair++) {
      const gateways = [];
      for (const [mode] of MODES) {
        const nodeArgs = profile ? ['--cpu-prof', '--cpu-prof-dir', profile, '--cpu-prof-name', `observability-${mode}-${pair}.cpuprofile`] : [];
        gateways.push({ mode, gw: await startMeshgate(upstream.port, { observability: { mode, otlpPort }, nodeArgs }) });
      }
      // Warm-up, by requests rather than seconds (a loaded machine serves few in a given time): the
      // JIT settles, pools fill, a sampled request has loaded the tracing SDK.
      for (const g of gateways) await runPaced({ url: g.gw.http.url, host: g.gw.http.host, connections: 8, seconds: WARM_REQUESTS / 2000, rate: 2000 });
      const from = sides.on.perSlice.length;
      for (let i = 0; i < slices; i++) {
        for (let j = 0; j < gateways.length; j++) {
          const { mode, gw } = gateways[(i + j) % gateways.length]!;
          const before = preciseCpuSeconds(gw.http.pid);
          const r = await runPaced({ url: gw.http.url, host: gw.http.host, connections: 8, seconds, rate });
          const after = preciseCpuSeconds(gw.http.pid);
          if (before === undefined || after === undefined) throw new Error('no /proc here: CPU time cannot be read');
          if (r.errors > 0) throw new Error(`${mode}: ${r.errors} failed requests (${r.errorDetail})`);
          const side = sides[mode];
          side.cpu += after - before;
          side.requests += r.requests;
          side.perSlice.push((after - before) / r.requests);
        }
      }
      console.log(`pair ${pair + 1}: ${median(ratioOf(from)).toFixed(3)}× CPU per request (median of its ${slices} rounds)`);
      for (const g of gateways) await g.gw.stop();
    }
    for (const [mode, label] of MODES) {
      const s = sides[mode];
      console.log(`${label.padEnd(22)} ${s.requests} requests, ${s.cpu.toFixed(2)} s CPU, ${((s.cpu * 1e6) / s.requests).toFixed(1)} µs per request (median slice ${(median(s.perSlice) * 1e6).toFixed(1)} µs)`);
    }
    const ratio = median(ratioOf(0));
    const overall = sides.on.cpu / sides.on.requests / (sides.off.cpu / sides.off.requests);
    console.log(`metrics + tracing 1 % / both off: ${ratio.toFixed(3)}× CPU per request (median of ${pairs * slices} rounds over ${pairs} pairs; all slices together ${overall.toFixed(3)}×), ${(1 / ratio).toFixed(3)}× req/s at equal CPU`);
  } finally {
    sink.close();
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
