// The demo mesh on ephemeral ports for tests that look at it from outside (metrics, traces, the
// dashboard, the docs): a copy of gateway-config/ and a fresh certs folder, every app and sidecar on
// a port the OS chose. The sidecars' inbound ports are what the EndpointSlices name, so once they
// listen their ports are written into the copied services.yaml, and the gateway starts once every
// sidecar serves that: no port is found free and handed on for another process to take first.

import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import type { Snapshot } from '../../src/core/snapshot/snapshot.js';
import { startDemoMesh, type DemoMeshOptions, type RunningDemoMesh } from '../../src/demo/mesh.js';
import { DEMO_NAMESPACE, DEMO_WORKLOADS, type DemoWorkload } from '../../src/demo/topology.js';
import type { RunningSidecar } from '../../src/sidecar/main.js';
import { endpointPort } from '../../src/core/registry/types.js';
import { untilSnapshot } from './mesh.js';

const CONFIG_DIR = fileURLToPath(new URL('../../../gateway-config/', import.meta.url));

export interface TestDemoMesh {
  readonly mesh: RunningDemoMesh;
  readonly port: number;
  /** The copied config folder (tests may add resources to it). */
  readonly configDir: string;
  /** The demo's workloads on the ports they listen on. */
  readonly workloads: readonly DemoWorkload[];
  close(): Promise<void>;
}

export async function startTestDemoMesh(extra: Partial<DemoMeshOptions> = {}, addConfig?: (dir: string) => Promise<void>): Promise<TestDemoMesh> {
  const dir = await mkdtemp(join(tmpdir(), 'meshgate-demo-obs-'));
  const config = join(dir, 'config');
  await cp(CONFIG_DIR, config, { recursive: true });
  const servicesFile = join(config, 'services.yaml');
  const fixed = await readFile(servicesFile, 'utf8');
  const placeEndpoints = async (bound: readonly DemoWorkload[], sidecars: readonly RunningSidecar[]): Promise<void> => {
    let services = fixed;
    bound.forEach((w, i) => (services = services.replace(new RegExp(`\\b${DEMO_WORKLOADS[i]!.port}\\b`, 'g'), String(w.port))));
    await writeFile(servicesFile, services);
    // Every service a sidecar is shown (its scope may leave some out) names the ports just written.
    const placed = (snap: Snapshot): boolean =>
      bound.every((w) => {
        const svc = snap.registry.lookup(`${w.service}.${DEMO_NAMESPACE}.svc.cluster.local`);
        return svc === undefined || svc.endpoints.some((e) => svc.ports.some((p) => endpointPort(e, p) === w.port));
      });
    await Promise.all(sidecars.map((s) => untilSnapshot(s.holder, placed)));
  };
  const ephemeral = DEMO_WORKLOADS.map((w) => ({ ...w, port: 0, appPort: 0, outboundPort: 0, metricsPort: 0 }));
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
    workloads: ephemeral,
    placeEndpoints,
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
    workloads: mesh.workloads,
    port: mesh.gateway.listenPorts.get(80)!,
    configDir: config,
    close: async () => {
      await mesh.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
