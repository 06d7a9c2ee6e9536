// The demo mesh on ephemeral ports for tests that look at it from outside (metrics, traces, the
// dashboard, the docs): a copy of gateway-config/ with the workloads moved to free ports, and a fresh
// certs folder. The workloads' ports must be written into services.yaml before anything listens, so a
// port found free can be taken by another test process before the demo binds it: that collision, and
// only that, makes the start try again with other ports.

import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { startDemoMesh, type DemoMeshOptions, type RunningDemoMesh } from '../../src/demo/mesh.js';
import { DEMO_WORKLOADS, type DemoWorkload } from '../../src/demo/topology.js';
import { freePort } from './ports.js';

const CONFIG_DIR = fileURLToPath(new URL('../../../gateway-config/', import.meta.url));

export interface TestDemoMesh {
  readonly mesh: RunningDemoMesh;
  readonly port: number;
  /** The copied config folder (tests may add resources to it). */
  readonly configDir: string;
  /** The demo's workloads as moved to their free ports. */
  readonly workloads: readonly DemoWorkload[];
  close(): Promise<void>;
}

const PORT_COLLISION_ATTEMPTS = 3;

export async function startTestDemoMesh(extra: Partial<DemoMeshOptions> = {}, addConfig?: (dir: string) => Promise<void>): Promise<TestDemoMesh> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(extra, addConfig);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt === PORT_COLLISION_ATTEMPTS) throw err;
    }
  }
}

async function startOnce(extra: Partial<DemoMeshOptions>, addConfig?: (dir: string) => Promise<void>): Promise<TestDemoMesh> {
  const dir = await mkdtemp(join(tmpdir(), 'meshgate-demo-obs-'));
  const config = join(dir, 'config');
  await cp(CONFIG_DIR, config, { recursive: true });
  let services = await readFile(join(config, 'services.yaml'), 'utf8');
  const workloads: DemoWorkload[] = [];
  for (const w of DEMO_WORKLOADS) {
    const moved = { ...w, port: await freePort(), appPort: await freePort(), outboundPort: await freePort(), metricsPort: 0 };
    services = services.replace(new RegExp(`\\b${w.port}\\b`, 'g'), String(moved.port));
    workloads.push(moved);
  }
  await writeFile(join(config, 'services.yaml'), services);
  await addConfig?.(config);
  let mesh: RunningDemoMesh;
  try {
    mesh = await startDemoMesh({
    configDir: config,
    certsDir: join(dir, 'certs'),
    gatewayPorts: new Map([
      [80, 0],
      [443, 0],
    ]),
    listenHost: '127.0.0.1',
    statusPort: 0,
    adminPort: 0,
    metricsPort: 0,
    accessLog: 'off',
    workloads,
    controlPort: 0,
    debugPort: 0,
    logger: pino({ level: 'silent' }),
    ...extra,
    });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    mesh,
    workloads,
    port: mesh.gateway.listenPorts.get(80)!,
    configDir: config,
    close: async () => {
      await mesh.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
