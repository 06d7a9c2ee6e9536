// The idle sidecar's memory over time, by where it is resident: the mesh as the bench starts it
// (mesh.ts), then, with nothing sent, /proc/<pid>/smaps summed by mapping every SIDECAR_IDLE_EVERY
// seconds (10) for SIDECAR_IDLE_SECONDS (120) after ready: the `node` binary's pages, shared
// libraries, the malloc heap, and anonymous memory (V8's heap, thread stacks). This is what the
// bench's idle row samples for 10 s (run.ts); run it longer to see what a sidecar left alone holds.
// Run after `npm run build`:
//
//   SIDECAR_IDLE_SECONDS=600 node dist/bench/sidecar-idle.js

import { readFileSync } from 'node:fs';
import { startMesh } from './mesh.js';
import { runThenStop } from './processes.js';
import { startUpstream } from './targets.js';

const SECONDS = Number(process.env.SIDECAR_IDLE_SECONDS ?? 120);
const EVERY = Number(process.env.SIDECAR_IDLE_EVERY ?? 10);

type Where = 'node' | 'libraries' | 'malloc' | 'anonymous' | 'other';

/** Resident MB of `pid` by kind of mapping. */
function residentByMapping(pid: number): Record<Where, number> {
  const mb: Record<Where, number> = { node: 0, libraries: 0, malloc: 0, anonymous: 0, other: 0 };
  let where: Where = 'other';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const mapping = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (mapping) {
      const name = mapping[1]!;
      where = name.endsWith('/node') ? 'node' : name.includes('.so') ? 'libraries' : name === '[heap]' ? 'malloc' : name === '' ? 'anonymous' : 'other';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) mb[where] += Number(rss[1]) / 1024;
  }
  return mb;
}

runThenStop(async () => {
  const upstream = await startUpstream();
  const mesh = await startMesh(upstream.port);
  const pid = mesh.sidecarPid;
  if (pid === undefined) throw new Error('the sidecar has no pid');
  console.log('s after ready   RSS MB    node  libraries  malloc  anonymous');
  const t0 = performance.now();
  for (let t = 0; t <= SECONDS; t += EVERY) {
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, t * 1000 - (performance.now() - t0))));
    const m = residentByMapping(pid);
    const total = m.node + m.libraries + m.malloc + m.anonymous + m.other;
    console.log(`${String(t).padStart(13)}  ${total.toFixed(2).padStart(7)}  ${m.node.toFixed(2).padStart(6)}  ${m.libraries.toFixed(2).padStart(9)}  ${m.malloc.toFixed(2).padStart(6)}  ${m.anonymous.toFixed(2).padStart(9)}`);
  }
});
