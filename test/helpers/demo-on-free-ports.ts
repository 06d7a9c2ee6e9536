// The demo mesh as `npm start` runs it, on ephemeral ports, in the shape the docs test wants it: the
// one demo helper (demo-mesh.ts) does the work, without metrics or debug ports.

import { dirname } from 'node:path';
import type { RunningDemoMesh } from '../../src/demo/mesh.js';
import type { DemoWorkload } from '../../src/demo/topology.js';
import { startTestDemoMesh } from './demo-mesh.js';

export interface DemoOnFreePorts {
  readonly mesh: RunningDemoMesh;
  /** The temporary folder: `config/` and `certs/` are in it. */
  readonly dir: string;
  /** DEMO_WORKLOADS, in order, with the ports they got. */
  readonly workloads: readonly DemoWorkload[];
  close(): Promise<void>;
}

export async function startDemoOnFreePorts(): Promise<DemoOnFreePorts> {
  const demo = await startTestDemoMesh({ metricsPort: undefined, debugPort: undefined });
  return { mesh: demo.mesh, dir: dirname(demo.configDir), workloads: [...demo.workloads], close: () => demo.close() };
}
