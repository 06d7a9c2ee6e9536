// The CPU time per request that Istio metrics plus 1 % tracing cost the gateway, measured where
// req/s cannot be: on a machine others are loading. Both gateways (metrics + tracing 1 % to a
// loopback OTLP sink, and both off) run side by side; one at a time takes a short slice of load at
// a fixed rate, in alternating order, and each slice's CPU (utime + stime from /proc) is charged to
// it. Over many slices the other load falls on both alike, so the ratio of their CPU per request
// is what observability costs (req/s at equal CPU is its inverse).
//
//   npx tsc -p . && node dist/bench/observability-cost.js
//   OBSERVABILITY_SLICES=40 OBSERVABILITY_RATE=500 OBSERVABILITY_SLICE_SECONDS=2 node dist/bench/observability-cost.js

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { runPaced } from './paced-load.js';
import { cpuSeconds } from './processes.js';
import { startMeshgate, startUpstream, stopAll, type MeshgateTargets } from './targets.js';

const slices = Number(process.env.OBSERVABILITY_SLICES ?? 30);
const rate = Number(process.env.OBSERVABILITY_RATE ?? 500);
const seconds = Number(process.env.OBSERVABILITY_SLICE_SECONDS ?? 2);

async function main(): Promise<void> {
  // The sink only answers: what exporting costs is the gateway's.
  const sink = createServer((req, res) => req.resume().on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}')));
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  const otlpPort = (sink.address() as AddressInfo).port;
  const upstream = await startUpstream();
  const gateways: { label: string; gw: MeshgateTargets; cpu: number; requests: number }[] = [];
  try {
    for (const [label, mode] of [['metrics + tracing 1 %', 'on'], ['both off', 'off']] as const) {
      gateways.push({ label, gw: await startMeshgate(upstream.port, { observability: { mode, otlpPort } }), cpu: 0, requests: 0 });
    }
    // Warm-up: the JIT settles, pools fill, a sampled request has loaded the tracing SDK.
    for (const g of gateways) await runPaced({ url: g.gw.http.url, host: g.gw.http.host, connections: 8, seconds: 3, rate });
    for (let i = 0; i < slices; i++) {
      for (let j = 0; j < gateways.length; j++) {
        const g = gateways[(i + j) % gateways.length]!;
        const before = cpuSeconds(g.gw.http.pid);
        const r = await runPaced({ url: g.gw.http.url, host: g.gw.http.host, connections: 8, seconds, rate });
        const after = cpuSeconds(g.gw.http.pid);
        if (before === undefined || after === undefined) throw new Error('no /proc here: CPU time cannot be read');
        if (r.errors > 0) throw new Error(`${g.label}: ${r.errors} failed requests (${r.errorDetail})`);
        g.cpu += after - before;
        g.requests += r.requests;
      }
    }
    for (const g of gateways) console.log(`${g.label.padEnd(22)} ${g.requests} requests, ${g.cpu.toFixed(2)} s CPU, ${((g.cpu * 1e6) / g.requests).toFixed(1)} µs per request`);
    const [on, off] = gateways as [(typeof gateways)[0], (typeof gateways)[0]];
    const ratio = on.cpu / on.requests / (off.cpu / off.requests);
    console.log(`metrics + tracing 1 % / both off: ${ratio.toFixed(3)}× CPU per request, ${(1 / ratio).toFixed(3)}× req/s at equal CPU`);
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
