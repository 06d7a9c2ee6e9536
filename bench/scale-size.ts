// One size of the scale rows, in a process of its own so that its memory is its own: generate the
// configuration, load and build the gateway's snapshot, edit one service and read and build again
// (as the file source does after an edit), look routes up, and print one JSON line.
// Run by bench/scale.ts as `node --expose-gc dist/bench/scale-size.js N`.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSnapshot } from '../src/core/snapshot/build.js';
import { findRoute } from '../src/core/routing/lookup.js';
import type { RequestFacts } from '../src/core/routing/types.js';
import type { ProxyRole } from '../src/core/snapshot/snapshot.js';
import { ConfigFolder } from '../src/core/sources/config-folder.js';
import { editService, fileOf, scaleHost, writeScaleConfig, SCALE_GATEWAY_PORT } from './scale-config.js';

export interface ScaleSample {
  readonly services: number;
  readonly resources: number;
  readonly loadMs: number;
  readonly buildMs: number;
  readonly heapMB: number;
  readonly rssMB: number;
  readonly editReadMs: number;
  readonly editBuildMs: number;
  readonly heapAfterReloadsMB: number;
  readonly lookupsPerSecond: number;
}

const ROLE: ProxyRole = { kind: 'gateway', labels: { istio: 'ingressgateway' }, namespace: 'istio-system' };
const DEPS = { random: Math.random, load: { active: () => 0 } };
const RELOADS = 5;

function heapMB(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return Math.round(process.memoryUsage().heapUsed / 1e6);
}

const services = Number(process.argv[2]);
const dir = await mkdtemp(join(tmpdir(), 'meshgate-scale-'));
try {
  await writeScaleConfig(dir, services);
  const folder = new ConfigFolder(dir);
  let t = performance.now();
  const first = await folder.read();
  const loadMs = performance.now() - t;
  t = performance.now();
  let snapshot = buildSnapshot(first.result, ROLE, DEPS).snapshot;
  const buildMs = performance.now() - t;
  const heap = heapMB();
  const rssMB = Math.round(process.memoryUsage().rss / 1e6);

  let editReadMs = 0;
  let editBuildMs = 0;
  for (let r = 1; r <= RELOADS; r++) {
    const target = Math.floor(services / 2);
    await editService(dir, services, target, r);
    folder.markChanged(fileOf(target));
    t = performance.now();
    const read = await folder.read();
    editReadMs += performance.now() - t;
    t = performance.now();
    snapshot = buildSnapshot(read.result, ROLE, DEPS, snapshot).snapshot;
    editBuildMs += performance.now() - t;
  }

  const config = snapshot.routeConfigs.get(`http.${SCALE_GATEWAY_PORT}`) ?? [...snapshot.routeConfigs.values()][0]!;
  const facts = (i: number): RequestFacts => ({ port: SCALE_GATEWAY_PORT, host: scaleHost(i), authority: scaleHost(i), path: '/api/v0/items', queryString: '', query: new Map(), method: 'GET', scheme: 'http', headers: {} }) as RequestFacts;
  const requests = Array.from({ length: 1000 }, (_, i) => facts((i * 7919) % services));
  let found = 0;
  t = performance.now();
  const until = t + 1000;
  let lookups = 0;
  while (performance.now() < until) {
    for (let i = 0; i < requests.length; i++) if (findRoute(config, requests[i]!).route) found++;
    lookups += requests.length;
  }
  const lookupsPerSecond = Math.round(lookups / ((performance.now() - t) / 1000));
  if (found !== lookups) throw new Error(`only ${found} of ${lookups} lookups found a route`);

  const sample: ScaleSample = {
    services,
    resources: first.result.resources.length,
    loadMs: Math.round(loadMs),
    buildMs: Math.round(buildMs),
    heapMB: heap,
    rssMB,
    editReadMs: Math.round(editReadMs / RELOADS),
    editBuildMs: Math.round(editBuildMs / RELOADS),
    heapAfterReloadsMB: heapMB(),
    lookupsPerSecond,
  };
  process.stdout.write(`${JSON.stringify(sample)}\n`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
