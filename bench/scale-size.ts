// One size of the scale rows, in a process of its own so that its memory is its own: generate the
// configuration, read the folder and build the gateway's snapshot (then its analysis, which the
// gateway runs after the swap), then serve it as the gateway does (a FileSource watching the folder,
// a Reloader swapping snapshots): edit one service's route 10 times and time each edit from the write
// until a snapshot that routes by the new text is swapped in, take the heap and RSS after those
// reloads, the CPU spent while nothing changes, the heap and RSS after that idle period, and the
// route lookup rate. Prints one JSON line.
// Run by bench/scale.ts as `node --expose-gc dist/bench/scale-size.js N [IDLE_SECONDS]`, with the
// gateway's NODE_OPTIONS; it sets the V8 flags the gateway command sets on itself.

import { mkdtemp, rm } from 'node:fs/promises';
import { setFlagsFromString } from 'node:v8';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { LiveClusters } from '../src/core/policy/live-clusters.js';
import { findRoute } from '../src/core/routing/lookup.js';
import type { RequestFacts, RouteConfig } from '../src/core/routing/types.js';
import { buildSnapshot } from '../src/core/snapshot/build.js';
import { SnapshotHolder } from '../src/core/snapshot/holder.js';
import { Reloader } from '../src/core/snapshot/reloader.js';
import type { ProxyRole, Snapshot } from '../src/core/snapshot/snapshot.js';
import { ConfigFolder } from '../src/core/sources/config-folder.js';
import { FileSource } from '../src/core/sources/file-source.js';
import { GATEWAY_V8_FLAGS } from '../src/gateway/node-options.js';
import { editService, scaleHost, writeScaleConfig, SCALE_GATEWAY_PORT } from './scale-config.js';

// The V8 flags `meshgate gateway` sets on itself, before anything is read.
setFlagsFromString(GATEWAY_V8_FLAGS);

export interface ScaleSample {
  readonly services: number;
  readonly resources: number;
  /** The folder read and parsed from scratch. */
  readonly loadMs: number;
  /** The first snapshot built from it. */
  readonly buildMs: number;
  /** CPU time (user + system) of the read and of the build: what a shared machine does not inflate as much as wall time. */
  readonly loadCpuMs: number;
  readonly buildCpuMs: number;
  /** The analyzers' run on the first snapshot, after it is swapped in (not part of the build): wall and CPU. */
  readonly analysisMs: number;
  readonly analysisCpuMs: number;
  readonly heapMB: number;
  readonly rssMB: number;
  /** Write of one edited file → the snapshot that routes by it is swapped in (file events, debounce included): median and most of the edits. */
  readonly editServedMs: number;
  readonly editServedMaxMs: number;
  /** Of that, the rebuild alone (the Reloader given the update → swapped), median. */
  readonly editBuildMs: number;
  /** CPU time of that rebuild, median. */
  readonly editBuildCpuMs: number;
  readonly reloads: number;
  readonly heapAfterReloadsMB: number;
  readonly rssAfterReloadsMB: number;
  /** The same after the idle period that follows the edits. */
  readonly heapAfterIdleMB: number;
  readonly rssAfterIdleMB: number;
  /** CPU the process spent while nothing changed, as a share of one core, over idleSeconds. */
  readonly idleCpuPercent: number;
  readonly idleSeconds: number;
  /** Route lookups per CPU-second, requests to 10 hosts spread over the configuration. */
  readonly lookupsPerSecond: number;
  /** The same in a 10-service configuration, measured in turn with it in the same process. */
  readonly smallLookupsPerSecond: number;
  /** Requests to 1,000 hosts (or every host when fewer). */
  readonly spreadLookupsPerSecond: number;
}

const ROLE: ProxyRole = { kind: 'gateway', labels: { istio: 'ingressgateway' }, namespace: 'istio-system' };
// As the runtime builds: live cluster state that outlives reloads.
const DEPS = { random: Math.random, load: { active: () => 0 }, live: new LiveClusters() };
const RELOADS = 10;

function memory(): { heapMB: number; rssMB: number } {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  return { heapMB: Math.round(m.heapUsed / 1e6), rssMB: Math.round(m.rss / 1e6) };
}

function cpuMs(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return Math.round((used.user + used.system) / 1000);
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function facts(i: number, path = '/api/v0/items'): RequestFacts {
  return { port: SCALE_GATEWAY_PORT, host: scaleHost(i), authority: scaleHost(i), path, queryString: '', query: new Map(), method: 'GET', scheme: 'http', headers: {} } as unknown as RequestFacts;
}

function gatewayRoutes(s: Snapshot): RouteConfig {
  return s.routeConfigs.get(`http.${SCALE_GATEWAY_PORT}`) ?? [...s.routeConfigs.values()][0]!;
}

/**
 * Requests to `hosts` hosts spread over a configuration of `services` services, each matching its
 * host's first route (the edited service's route says `/api/v<edits>` by now), so that every lookup
 * does the same work at every size.
 */
function requestsTo(services: number, hosts: number, edited = -1): RequestFacts[] {
  const step = Math.max(1, Math.floor(services / hosts));
  return Array.from({ length: 1000 }, (_, i) => {
    const host = ((i % hosts) * step) % services;
    return facts(host, host === edited ? `/api/v${RELOADS}/items` : undefined);
  });
}

/** Lookups per CPU-second of this process over one round of 200 ms. */
function lookupRound(config: RouteConfig, requests: readonly RequestFacts[]): number {
  let found = 0;
  let lookups = 0;
  const until = performance.now() + 200;
  const cpu = process.cpuUsage();
  while (performance.now() < until) {
    for (let i = 0; i < requests.length; i++) if (findRoute(config, requests[i]!).route) found++;
    lookups += requests.length;
  }
  const used = process.cpuUsage(cpu);
  if (found !== lookups) throw new Error(`only ${found} of ${lookups} lookups found a route`);
  return lookups / ((used.user + used.system) / 1e6);
}

const LOOKUP_ROUNDS = 11;

/**
 * Route lookups per CPU-second in this configuration and in one of 10 services built in this same
 * process, rounds taken in turn and the median of 11 kept for each, so that both see the same
 * machine (a shared machine moves figures taken apart by more than the difference; CPU time, not
 * wall time, since another process's turn on the core is not the lookup's cost). Requests go to 10
 * hosts in both: what the ratio shows is the lookup's own cost against size (an index stays flat, a
 * scan would be 1,000 times slower at 10,000). What is left of the ratio below 1 is where the
 * objects lie, not the index: the lookup walks the same dozen objects for a host at either size,
 * but at 10,000 services they lie apart in a 230 MB heap (docs/benchmarks.md, "Route lookup at
 * 10,000 services"). `spread`: the large configuration with requests to 1,000 hosts, which also pays
 * the memory cache misses of touching another virtual host each time.
 */
async function lookupRates(config: RouteConfig, services: number, edited: number): Promise<{ rate: number; small: number; spread: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'meshgate-scale-small-'));
  try {
    await writeScaleConfig(dir, 10);
    const small = gatewayRoutes(buildSnapshot((await new ConfigFolder(dir).read()).result, ROLE, DEPS).snapshot);
    const here = requestsTo(services, 10, edited);
    const there = requestsTo(10, 10);
    const wide = requestsTo(services, 1000, edited);
    const rates = { rate: [] as number[], small: [] as number[], spread: [] as number[] };
    for (let round = 0; round < LOOKUP_ROUNDS; round++) {
      rates.rate.push(lookupRound(config, here));
      rates.small.push(lookupRound(small, there));
      rates.spread.push(lookupRound(config, wide));
    }
    return { rate: Math.round(median(rates.rate)), small: Math.round(median(rates.small)), spread: Math.round(median(rates.spread)) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const services = Number(process.argv[2]);
const idleSeconds = Number(process.argv[3] ?? 10);
const dir = await mkdtemp(join(tmpdir(), 'meshgate-scale-'));
let reloader: Reloader | undefined;
try {
  await writeScaleConfig(dir, services);
  const folder = new ConfigFolder(dir);
  let t = performance.now();
  let cpu = process.cpuUsage();
  let first: Awaited<ReturnType<ConfigFolder['read']>> | undefined = await folder.read();
  const resources = first.result.resources.length;
  const loadMs = performance.now() - t;
  const loadCpuMs = cpuMs(cpu);
  t = performance.now();
  cpu = process.cpuUsage();
  const holder = new SnapshotHolder();
  holder.swap(buildSnapshot(first.result, ROLE, DEPS, undefined, holder.nextVersion()).snapshot);
  // Let the first read go, as the gateway does: held here, the resources it gave (and all that is
  // cached by them) would outlive an edit that replaces them, and count as growth across reloads.
  first = undefined;
  const buildMs = performance.now() - t;
  const buildCpuMs = cpuMs(cpu);
  // The analyzers, which run once the snapshot is swapped in (the Reloader reads its problems then).
  t = performance.now();
  cpu = process.cpuUsage();
  void holder.current()!.problems;
  const analysisMs = performance.now() - t;
  const analysisCpuMs = cpuMs(cpu);
  const built = memory();

  // Serve it as the gateway does: the folder watched, each change built and swapped in.
  const source = new FileSource({ dir, folder });
  reloader = new Reloader(source, holder, ROLE, DEPS, pino({ level: 'silent' }));
  let applyStart = 0;
  const rebuiltCpu: number[] = [];
  const apply = reloader.apply.bind(reloader);
  reloader.apply = (u) => {
    applyStart = performance.now();
    const before = process.cpuUsage();
    apply(u); // builds and swaps synchronously
    rebuiltCpu.push(cpuMs(before));
  };
  await reloader.start();

  const target = Math.floor(services / 2);
  const served: number[] = [];
  const rebuilt: number[] = [];
  for (let r = 1; r <= RELOADS; r++) {
    const probe = facts(target, `/api/v${r}/items`);
    const swapped = new Promise<void>((resolve) => {
      const off = holder.onSwap((s) => {
        if (findRoute(gatewayRoutes(s), probe).route?.name !== 'api') return;
        rebuilt.push(performance.now() - applyStart);
        off();
        resolve();
      });
    });
    const written = performance.now();
    await editService(dir, services, target, r);
    await swapped;
    served.push(performance.now() - written);
  }
  const after = memory();

  // Nothing changes now: what does watching the folder cost?
  cpu = process.cpuUsage();
  const idleStart = performance.now();
  await new Promise((resolve) => setTimeout(resolve, idleSeconds * 1000));
  const used = process.cpuUsage(cpu);
  const idleCpuPercent = ((used.user + used.system) / 1000 / (performance.now() - idleStart)) * 100;
  // Steady memory: by now V8's memory reducer has given back what the edits' collections left
  // committed (the young generation grown to its most, emptied old-generation pages).
  const settled = memory();

  const lookups = await lookupRates(gatewayRoutes(holder.current()!), services, target);
  const sample: ScaleSample = {
    services,
    resources,
    loadMs: Math.round(loadMs),
    buildMs: Math.round(buildMs),
    loadCpuMs,
    buildCpuMs,
    analysisMs: Math.round(analysisMs),
    analysisCpuMs,
    heapMB: built.heapMB,
    rssMB: built.rssMB,
    editServedMs: Math.round(median(served)),
    editServedMaxMs: Math.round(Math.max(...served)),
    editBuildMs: Math.round(median(rebuilt)),
    // The first apply is the start's own delivery of the folder; the edits' rebuilds follow.
    editBuildCpuMs: median(rebuiltCpu.slice(-RELOADS)),
    reloads: RELOADS,
    heapAfterReloadsMB: after.heapMB,
    rssAfterReloadsMB: after.rssMB,
    heapAfterIdleMB: settled.heapMB,
    rssAfterIdleMB: settled.rssMB,
    idleCpuPercent: Math.round(idleCpuPercent * 100) / 100,
    idleSeconds,
    lookupsPerSecond: lookups.rate,
    smallLookupsPerSecond: lookups.small,
    spreadLookupsPerSecond: lookups.spread,
  };
  process.stdout.write(`${JSON.stringify(sample)}\n`);
} finally {
  await reloader?.close();
  await rm(dir, { recursive: true, force: true });
}
