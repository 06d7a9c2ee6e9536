// Whole-set passes of a build kept across reloads: the registry and the DestinationRule index are each
// a function of the resources of a few kinds (and the cluster domain), so a reload that keeps every one
// of those resources as the very same object, in the same order, gets the previous snapshot's result
// back instead of a full pass over 10,000 services. An edit of a route (the common edit) keeps them
// all. Everything built from them per entry (clusters, routes) was already kept by identity; keeping
// the registry itself also makes every lookup a route was compiled against give the same object.

import type { Problem } from '../config/problem.js';
import type { Resource } from '../model/resource.js';
import type { DestinationRuleIndex } from '../policy/destination-rules.js';
import { sameItems } from '../registry/kube-services.js';
import type { Registry } from '../registry/types.js';
import type { Snapshot } from './snapshot.js';

/** What buildRegistry() reads: Services and their endpoints, Pods, ServiceEntries and WorkloadEntries. */
const REGISTRY_KINDS = new Set(['Service', 'EndpointSlice', 'Endpoints', 'Pod', 'ServiceEntry', 'WorkloadEntry']);

interface Kept<T> {
  readonly inputs: readonly Resource[];
  readonly domain: string;
  readonly result: T;
}

export interface KeptPasses {
  readonly registry: Kept<{ registry: Registry; problems: readonly Problem[] }>;
  readonly rules: Kept<DestinationRuleIndex>;
  /** What else a cluster is built from: the proxy's namespace (rule lookup) and the cluster deps (cluster-reuse.ts). */
  readonly namespace: string;
  readonly clusterDeps: readonly unknown[];
}

/** By the snapshot they were built for: weak, so they go with it. */
const passes = new WeakMap<Snapshot, KeptPasses>();

/** `build()`, unless `previous` kept a result from the very same resources of these kinds and domain. */
function reuse<T>(kept: Kept<T> | undefined, inputs: readonly Resource[], domain: string, build: () => T): Kept<T> {
  if (kept && kept.domain === domain && sameItems(kept.inputs, inputs)) return kept;
  return { inputs, domain, result: build() };
}

export function registryPass(previous: Snapshot | undefined, resources: readonly Resource[], domain: string, build: () => KeptPasses['registry']['result']): KeptPasses['registry'] {
  const inputs = resources.filter((r) => REGISTRY_KINDS.has(r.kind));
  return reuse(previous && passes.get(previous)?.registry, inputs, domain, build);
}

export function destinationRulePass(previous: Snapshot | undefined, resources: readonly Resource[], domain: string, build: () => DestinationRuleIndex): KeptPasses['rules'] {
  const inputs = resources.filter((r) => r.kind === 'DestinationRule');
  return reuse(previous && passes.get(previous)?.rules, inputs, domain, build);
}

/** Whether clusters are built now from exactly what `previous`'s were: then its clusters hold, by name. */
export function sameClusterInputs(previous: Snapshot, registry: KeptPasses['registry'], rules: KeptPasses['rules'], namespace: string, clusterDeps: readonly unknown[]): boolean {
  const kept = passes.get(previous);
  return kept !== undefined && kept.registry === registry && kept.rules === rules && kept.namespace === namespace && sameItems(kept.clusterDeps, clusterDeps);
}

/** Remembers what `snapshot` was built with, for the build after it. */
export function keepPasses(snapshot: Snapshot, kept: KeptPasses): void {
  passes.set(snapshot, kept);
}
