// Clusters kept across reloads: a cluster is built again only when what it is built from changed (its
// registry entry, its DestinationRule, the proxy, the PeerAuthentications). At 10,000 services an
// edit of one touches a cluster or two and the rest are the same objects as before, as Envoy keeps an
// unchanged cluster across an update; the routes compiled against them can then be kept too
// (src/core/routing/route-reuse.ts), because their clusters are identical.

import type { MergedDestinationRule } from '../policy/destination-rules.js';
import type { ClusterDeps } from '../policy/cluster.js';
import type { Cluster } from '../policy/types.js';
import { sameItems } from '../registry/kube-services.js';
import type { Service, ServicePort } from '../registry/types.js';

interface Kept {
  readonly port: ServicePort;
  readonly dr: MergedDestinationRule | undefined;
  readonly deps: readonly unknown[];
  readonly cluster: Cluster | undefined;
}

/**
 * By registry entry (the same object while its Service, slices and Pods are: registry/kube-services.ts),
 * then by `port|subset`. Weak, so an entry dies with the service it was built for.
 */
const kept = new WeakMap<Service, Map<string, Kept>>();

/**
 * `build()` unless a cluster was built for this very service, port and subset from a DestinationRule
 * with the same content and with the same deps; `deps` lists what else it depends on, compared by
 * identity (the proxy's live state, its labels, the PeerAuthentications as resources).
 */
export function reuseCluster(
  service: Service,
  port: ServicePort,
  subset: string,
  dr: MergedDestinationRule | undefined,
  deps: readonly unknown[],
  build: () => Cluster | undefined,
): Cluster | undefined {
  let byKey = kept.get(service);
  if (!byKey) kept.set(service, (byKey = new Map()));
  const key = `${port.number}|${subset}`;
  const known = byKey.get(key);
  if (known && known.port === port && sameRule(known.dr, dr) && sameItems(known.deps, deps)) return known.cluster;
  const cluster = build();
  byKey.set(key, { port, dr, deps, cluster });
  return cluster;
}

/** The deps of buildCluster() other than the service and rule, as a list compared item by item. */
export function clusterDeps(deps: ClusterDeps, peerAuthentications: readonly unknown[]): unknown[] {
  return [deps.random, deps.load, deps.live, deps.proxy?.locality, deps.proxy?.labels, deps.peerAuthentication !== undefined, deps.meshConnectTimeoutMs, deps.trustDomainAliases?.join(','), ...peerAuthentications];
}

/**
 * A merged rule is rebuilt on every reload, but from the rules' own spec objects: the same objects
 * (and the same sources) mean the same rule.
 */
function sameRule(a: MergedDestinationRule | undefined, b: MergedDestinationRule | undefined): boolean {
  if (a === b) return true;
  if (!a || !b) return false;
  return (
    a.host === b.host &&
    a.trafficPolicy === b.trafficPolicy &&
    a.trafficPolicySource === b.trafficPolicySource &&
    a.workloadSelector === b.workloadSelector &&
    sameItems(a.subsets, b.subsets) &&
    sameItems(a.sources, b.sources) &&
    a.subsets.every((s) => a.subsetSources.get(s.name) === b.subsetSources.get(s.name))
  );
}
