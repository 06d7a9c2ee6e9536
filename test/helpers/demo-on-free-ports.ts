// The demo mesh as `npm start` runs it, on ephemeral ports: a copy of gateway-config/ whose
// services.yaml names free ports for the workloads, and a fresh certs folder, so tests that run it
// never collide with each other or with a demo someone is running.

import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { startDemoMesh, type RunningDemoMesh } from '../../src/demo/mesh.js';
import { DEMO_WORKLOADS, type DemoWorkload } from '../../src/demo/topology.js';
import { freePort } from './ports.js';

const CONFIG_DIR = fileURLToPath(new URL('../../../gateway-config/', import.meta.url));

export interface DemoOnFreePorts {
  readonly mesh: RunningDemoMesh;
  /** The temporary folder: `config/` and `certs/` are in it. */
  readonly dir: string;
  /** DEMO_WORKLOADS, in order, with the ports they got. */
  readonly workloads: readonly DemoWorkload[];
  close(): Promise<void>;
}

export async function startDemoOnFreePorts(prefix: string): Promise<DemoOnFreePorts> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const config = join(dir, 'config');
  await cp(CONFIG_DIR, config, { recursive: true });
  let services = await readFile(join(config, 'services.yaml'), 'utf8');
  const workloads: DemoWorkload[] = [];
  for (const w of DEMO_WORKLOADS) {
    const moved = { ...w, port: await freePort(), appPort: await freePort(), outboundPort: await freePort() };
    services = services.replace(new RegExp(`\\b${w.port}\\b`, 'g'), String(moved.port));
    workloads.push(moved);
  }
  await writeFile(join(config, 'services.yaml'), services);
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
    accessLog: 'off',
    workloads,
    controlPort: 0,
    logger: pino({ level: 'silent' }),
  });
  return {
    mesh,
    dir,
    workloads,
    close: async () => {
      await mesh.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
