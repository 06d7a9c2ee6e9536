// The control-plane push rows of `npm run bench`: at each size of the scale rows (BENCH_SCALE_SIZES),
// BENCH_XDS_PROXIES (default 200) proxies subscribed over TLS, then one resource changed; the time
// until every proxy acknowledged it, the first sync, and the control plane's memory per connected
// proxy. Each size runs in a process of its own (bench/xds-push-size.ts).

import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { PushSample } from './xds-push-size.js';

const SIZE_SCRIPT = fileURLToPath(new URL('./xds-push-size.js', import.meta.url));

export function pushProxies(): number {
  const n = Number(process.env.BENCH_XDS_PROXIES ?? '200');
  if (!Number.isInteger(n) || n < 1) throw new Error(`BENCH_XDS_PROXIES=${process.env.BENCH_XDS_PROXIES} is not a number of proxies`);
  return n;
}

function measure(services: number, proxies: number): Promise<PushSample> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--expose-gc', SIZE_SCRIPT, String(services), String(proxies)], { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`push ${services}: ${stderr.trim() || err.message}`));
      resolve(JSON.parse(stdout.trim().split('\n').pop()!) as PushSample);
    });
  });
}

export async function runPush(sizes: readonly number[], proxies = pushProxies()): Promise<PushSample[]> {
  const samples: PushSample[] = [];
  for (const n of sizes) {
    process.stdout.write(`push: ${n} services, ${proxies} proxies … `);
    const s = await measure(n, proxies);
    console.log(`one change reached all in ${s.pushMs} ms`);
    samples.push(s);
  }
  return samples;
}

export function pushTable(samples: readonly PushSample[]): string {
  const head = ['services', 'resources', 'proxies', 'first sync (ms)', 'one change → all acked (ms)', 'control heap (MB)', 'heap per proxy (KB)', 'rss per proxy (KB)'];
  const rows = samples.map((s) => [s.services, s.resources, s.proxies, s.initialSyncMs, s.pushMs, s.heapMB, s.heapPerProxyKB, s.rssPerProxyKB].map(String));
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padStart(widths[i]!)).join(' | ')} |`;
  return [
    line(head),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...rows.map(line),
    'push: one mesh VirtualService changed in the control plane (fed from memory: the folder read is in the scale rows), until every proxy (each its own TLS stream; 4 processes of proxies) acknowledged the delta; a Sidecar narrows each proxy to ten services.',
  ].join('\n');
}

// `node dist/bench/xds-push.js [SIZES]`: these rows alone.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const sizes = (process.argv[2] ?? process.env.BENCH_SCALE_SIZES ?? '10,100,1000,10000').split(',').map(Number);
  console.log(pushTable(await runPush(sizes)));
}
