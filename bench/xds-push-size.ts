// One size of the control-plane push rows, in a process of its own so that its memory is the control
// plane's: the generated configuration of bench/scale-config.ts plus a Sidecar that narrows every
// sidecar to ten services, a control plane on it (in this process, fed from memory so that the
// folder's read time stays in the scale rows), N proxies in a few child processes (bench/xds-push-clients.ts),
// then one resource changed (a mesh VirtualService every sidecar imports) and the time until every
// proxy acknowledged it. Prints one JSON line.
// Run by bench/xds-push.ts as `node --expose-gc dist/bench/xds-push-size.js SERVICES PROXIES`.

import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { loadConfigDir, type LoadResult } from '../src/core/config/load.js';
import type { Resource } from '../src/core/model/resource.js';
import { loadOrCreateAuthority } from '../src/core/pki/authority.js';
import type { ConfigSource, ConfigUpdate } from '../src/core/sources/source.js';
import { startControlPlane } from '../src/control/main.js';
import type { Authenticator } from '../src/control/token-authenticator.js';
import { writeScaleConfig } from './scale-config.js';

export interface PushSample {
  readonly services: number;
  readonly resources: number;
  readonly proxies: number;
  /** From the first subscription to every proxy holding its whole subset. */
  readonly initialSyncMs: number;
  /** From the one-resource change entering the control plane to every proxy's acknowledgement. */
  readonly pushMs: number;
  readonly heapPerProxyKB: number;
  readonly rssPerProxyKB: number;
  readonly heapMB: number;
}

const CLIENTS = fileURLToPath(new URL('./xds-push-clients.js', import.meta.url));
const TOKEN = 'bench-token';

/** A source that hands over what the bench gives it: the control plane's input without a folder's read. */
class MemorySource implements ConfigSource {
  readonly description = 'bench memory';
  #emit: ((u: ConfigUpdate) => void) | undefined;
  constructor(private first: LoadResult) {}
  async start(onUpdate: (u: ConfigUpdate) => void): Promise<void> {
    this.#emit = onUpdate;
    onUpdate(this.first);
  }
  emit(u: LoadResult): void {
    this.#emit?.(u);
  }
  async close(): Promise<void> {}
  destroy(): void {}
}

const authenticator: Authenticator = {
  description: 'bench',
  authenticate: async (t) => (t === TOKEN ? { ok: true, caller: { namespace: 'default', serviceAccount: 'bench' } } : { ok: false, message: 'unknown token' }),
};

function memory(): { heap: number; rss: number } {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, rss: m.rss };
}

const route = (prefix: string): string => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: svc-0-mesh, namespace: default}
spec:
  hosts: [svc-0]
  http: [{match: [{uri: {prefix: /${prefix}}}], route: [{destination: {host: svc-0}}]}]
`;

const SIDECAR = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  egress: [{hosts: [${Array.from({ length: 10 }, (_, i) => `./svc-${i}.default.svc.cluster.local`).join(', ')}]}]
`;

const services = Number(process.argv[2]);
const proxies = Number(process.argv[3]);
const dir = await mkdtemp(join(tmpdir(), 'meshgate-push-'));
try {
  await writeScaleConfig(dir, services);
  await writeFile(join(dir, 'sidecar.yaml'), SIDECAR);
  await writeFile(join(dir, 'mesh-route.yaml'), route('v0'));
  const loaded = await loadConfigDir(dir);
  const source = new MemorySource(loaded);
  const auth = loadOrCreateAuthority(join(dir, 'ca'));
  if (!auth.ok) throw new Error(auth.message);
  const cp = await startControlPlane({ source, ca: auth.ca, authenticator, port: 0, statusPort: 0, listenHost: '127.0.0.1', debounceMs: 0, logger: pino({ level: 'silent' }) });
  const rootFile = join(dir, 'root.pem');
  await writeFile(rootFile, auth.ca.rootCertPem);
  const before = memory();

  const t0 = performance.now();
  // The proxies in a few processes (BENCH_XDS_CLIENT_PROCESSES, default 4), as a host runs several pods.
  const processes = Math.max(1, Math.min(proxies, Number(process.env.BENCH_XDS_CLIENT_PROCESSES ?? '4')));
  const children = Array.from({ length: processes }, (_, k) => {
    const first = Math.floor((k * proxies) / processes);
    const end = Math.floor(((k + 1) * proxies) / processes);
    return spawn(process.execPath, [...(process.env.BENCH_XDS_CLIENT_NODE_ARGS ?? '').split(' ').filter(Boolean), CLIENTS, `https://127.0.0.1:${cp.port}`, rootFile, TOKEN, String(first), String(end)], { stdio: ['ignore', 'pipe', 'inherit'] });
  });
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve, reject) => {
          child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
          child.on('exit', (code) => reject(new Error(`a proxies' process ended (${code})`)));
        }),
    ),
  );
  const converged = async (): Promise<void> => {
    for (;;) {
      const list = cp.registry.list();
      if (list.length === proxies && list.every((p) => p.acknowledgedVersion !== null && p.acknowledgedVersion === p.sentVersion)) return;
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  await converged();
  const initialSyncMs = performance.now() - t0;
  const after = memory();

  // One resource changed: a new object for it, every other resource the same object as before.
  const changed = (await loadConfigDir(dir)).resources.find((r) => r.metadata.name === 'svc-0-mesh');
  const edited = await (async () => {
    await writeFile(join(dir, 'mesh-route.yaml'), route('v1'));
    const again = await loadConfigDir(dir);
    return again.resources.find((r) => r.metadata.name === 'svc-0-mesh')!;
  })();
  const next: Resource[] = loaded.resources.map((r) => (r.metadata.name === changed?.metadata.name && r.kind === 'VirtualService' ? edited : r));
  const sentBefore = new Set(cp.registry.list().map((p) => p.sentVersion));
  const t1 = performance.now();
  source.emit({ resources: next, problems: [] });
  let sentMs = 0;
  for (;;) {
    const list = cp.registry.list();
    if (!sentMs && list.every((p) => !sentBefore.has(p.sentVersion))) sentMs = performance.now() - t1;
    if (list.every((p) => !sentBefore.has(p.sentVersion) && p.acknowledgedVersion === p.sentVersion)) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  if (process.env.BENCH_DEBUG) console.error(`sent to all after ${Math.round(sentMs)} ms`);
  const pushMs = performance.now() - t1;
  const stats = cp.registry.list().length;
  for (const child of children) child.kill();
  await cp.destroy();
  const sample: PushSample = {
    services,
    resources: loaded.resources.length,
    proxies: stats,
    initialSyncMs: Math.round(initialSyncMs),
    pushMs: Math.round(pushMs),
    heapPerProxyKB: Math.round((after.heap - before.heap) / proxies / 1024),
    rssPerProxyKB: Math.round((after.rss - before.rss) / proxies / 1024),
    heapMB: Math.round(after.heap / 1e6),
  };
  console.log(JSON.stringify(sample));
} finally {
  await rm(dir, { recursive: true, force: true });
}
