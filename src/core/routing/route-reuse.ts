// Compiled routes kept across reloads, by VirtualService. A VirtualService's routes for one gateway
// server depend on the VirtualService itself (the same frozen object while its file is unchanged),
// the server's gateway and port, and what compiling looked up: registry entries and clusters. Each
// lookup is recorded; the routes are reused when every one of them gives the same object again, so
// an edit of one service at 10,000 recompiles that service's routes and probes the others'.

import type { Resource } from '../model/resource.js';
import type { Cluster } from '../policy/types.js';
import type { Registry, Service } from '../registry/types.js';
import type { CompiledRoute } from './types.js';

/** What compiling a VirtualService's routes may look up (compileAction's registry and cluster). */
export interface RouteLookups {
  readonly registry: Registry;
  cluster(host: string, port: number, subset: string): Cluster | undefined;
}

interface Kept {
  readonly services: ReadonlyArray<readonly [string, Service | undefined]>;
  readonly clusters: ReadonlyArray<readonly [string, number, string, Cluster | undefined]>;
  readonly routes: CompiledRoute[];
}

/** By VirtualService, then by what else the routes were compiled for (gateway, port, domain). Weak: dies with the resource. */
const kept = new WeakMap<Resource, Map<string, Kept>>();

/**
 * The routes `compile` makes of `vs` for `key`, reused from the last build when every registry
 * lookup and cluster it made still gives the same object. Checking calls `lookups.cluster` again,
 * which is what puts the clusters of kept routes in the new snapshot.
 */
export function reuseRoutes<L extends RouteLookups>(vs: Resource, key: string, lookups: L, compile: (recording: L) => CompiledRoute[]): CompiledRoute[] {
  let byKey = kept.get(vs);
  const known = byKey?.get(key);
  if (known && stillHolds(known, lookups)) return known.routes;
  // Each distinct lookup once: a VirtualService's routes mostly ask for the same host again.
  const services = new Map<string, readonly [string, Service | undefined]>();
  const clusters = new Map<string, readonly [string, number, string, Cluster | undefined]>();
  const registry: Registry = {
    // Only lookup() is recorded: compiling a route must not read `services` (it would not be seen here).
    services: lookups.registry.services,
    lookup: (host) => {
      const s = lookups.registry.lookup(host);
      services.set(host, [host, s]);
      return s;
    },
  };
  const recording: L = {
    ...lookups,
    registry,
    cluster: (host: string, port: number, subset: string) => {
      const c = lookups.cluster(host, port, subset);
      clusters.set(`${port}|${subset}|${host}`, [host, port, subset, c]);
      return c;
    },
  };
  // Kept as long as the VirtualService: copied to exactly its length (filled by push, it had room for 17).
  const routes = compile(recording).slice();
  if (!byKey) kept.set(vs, (byKey = new Map()));
  byKey.set(key, { services: [...services.values()], clusters: [...clusters.values()], routes });
  return routes;
}

function stillHolds(known: Kept, lookups: RouteLookups): boolean {
  for (const [host, s] of known.services) if (lookups.registry.lookup(host) !== s) return false;
  let same = true;
  // Every cluster is asked for even after a difference, as compiling would have asked for it.
  for (const [host, port, subset, c] of known.clusters) if (lookups.cluster(host, port, subset) !== c) same = false;
  return same;
}
