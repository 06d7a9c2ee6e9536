// The demo mesh on ephemeral ports for tests that look at it from outside (metrics, traces, the
// dashboard): a copy of gateway-config/ with the workloads moved to free ports, and a fresh certs folder.

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
  close(): Promise<void>;
}

export async function startTestDemoMesh(extra: Partial<DemoMeshOptions> = {}, addConfig?: (dir: string) => Promise<void>): Promise<TestDemoMesh> {
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
  const mesh = await startDemoMesh({
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
  return {
    mesh,
    port: mesh.gateway.listenPorts.get(80)!,
    configDir: config,
    close: async () => {
      await mesh.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
