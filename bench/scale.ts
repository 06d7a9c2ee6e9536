// The scale rows of `npm run bench`: the generated configuration of bench/scale-config.ts at each
// size (BENCH_SCALE_SIZES, default 10,100,1000,10000 services; `none` leaves them out), each size in a
// process of its own (bench/scale-size.ts). Printed as a table against size, with the route lookup
// rate at the largest size as a ratio of the smallest's.

import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ScaleSample } from './scale-size.js';

const SIZE_SCRIPT = fileURLToPath(new URL('./scale-size.js', import.meta.url));

export function scaleSizes(): number[] {
  const text = process.env.BENCH_SCALE_SIZES ?? '10,100,1000,10000';
  if (text === 'none' || text === '') return [];
  const sizes = text.split(',').map(Number);
  if (sizes.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`BENCH_SCALE_SIZES=${text} is not a list of service counts`);
  return sizes;
}

function measure(services: number): Promise<ScaleSample> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--expose-gc', SIZE_SCRIPT, String(services)], { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`scale ${services}: ${stderr.trim() || err.message}`));
      resolve(JSON.parse(stdout.trim().split('\n').pop()!) as ScaleSample);
    });
  });
}

export async function runScale(sizes: readonly number[]): Promise<ScaleSample[]> {
  const samples: ScaleSample[] = [];
  for (const n of sizes) {
    process.stdout.write(`scale: ${n} services … `);
    const s = await measure(n);
    console.log(`built in ${s.buildMs} ms`);
    samples.push(s);
  }
  return samples;
}

export function scaleTable(samples: readonly ScaleSample[]): string {
  const head = ['services', 'resources', 'read (ms)', 'build (ms)', 'heap (MB)', 'rss (MB)', 'edit: read (ms)', 'edit: build (ms)', 'heap after 5 edits (MB)', 'lookups/s'];
  const rows = samples.map((s) => [s.services, s.resources, s.loadMs, s.buildMs, s.heapMB, s.rssMB, s.editReadMs, s.editBuildMs, s.heapAfterReloadsMB, s.lookupsPerSecond].map(String));
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padStart(widths[i]!)).join(' | ')} |`;
  const out = [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)];
  if (samples.length >= 2) {
    const small = samples[0]!;
    const large = samples[samples.length - 1]!;
    out.push(`route lookups at ${large.services} services / at ${small.services}: ${(large.lookupsPerSecond / small.lookupsPerSecond).toFixed(2)}× (the lookup alone, in process; HTTP req/s carry it in about a microsecond of a request's cost)`);
  }
  out.push('read: the folder parsed from scratch; edit: one service of a 100-service file changed, that file read again and the whole snapshot built again (averaged over 5 edits).');
  return out.join('\n');
}
