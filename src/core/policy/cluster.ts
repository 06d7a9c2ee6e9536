// buildCluster(): one Envoy-style cluster (service port × subset) with the endpoints the subset's
// labels select, the traffic policy that applies after subset and port-level replacement, and the
// load balancer built from it — health- and locality-aware when outlier detection or locality
// weights call for it — plus its circuit-breaker limits and live state, and which of its sidecar
// endpoints take plaintext (PeerAuthentication DISABLE on their port). A subset the DestinationRule
// does not define yields no cluster, which the caller answers with 503 NC.

import type { Endpoint, Service, ServicePort } from '../registry/types.js';
import { endpointPort } from '../registry/types.js';
import { selectorMatches } from '../registry/labels.js';
import { connectionLimits } from './connection-limits.js';
import type { MergedDestinationRule } from './destination-rules.js';
import { endpointKey } from './lb-endpoints.js';
import { LiveClusters } from './live-clusters.js';
import type { LoadBalancerDeps } from './load-balancer.js';
import { createLoadBalancer } from './load-balancer.js';
import { localityPlan, NOWHERE, type ProxyPlacement } from './locality.js';
import { outlierSettings } from './outlier-detection.js';
import { priorityBalancer } from './priority-lb.js';
import type { PeerAuthenticationPolicy, WorkloadRef } from './peer-authentication.js';
import { effectivePolicy } from './traffic-policy.js';
import type { Cluster, ClusterTraffic } from './types.js';
import { clusterName } from './types.js';

export interface ClusterDeps extends LoadBalancerDeps {
  /** Live per-cluster state shared across snapshots; without it each build starts afresh. */
  readonly live?: LiveClusters;
  /** The proxy's locality and labels, for locality-aware balancing. */
  readonly proxy?: ProxyPlacement;
  /** Each workload's effective PeerAuthentication; absent: none exists, every sidecar takes mTLS. */
  readonly peerAuthentication?: (workload: WorkloadRef) => PeerAuthenticationPolicy;
  /** The mesh config's connectTimeout, which a DestinationRule without its own keeps (default 10 s). */
  readonly meshConnectTimeoutMs?: number;
  /** The mesh config's trustDomain and trustDomainAliases: more domains an endpoint's identity may be in. */
  readonly trustDomainAliases?: readonly string[];
}

export function buildCluster(
  service: Service,
  port: ServicePort,
  subset: string,
  dr: MergedDestinationRule | undefined,
  deps: ClusterDeps,
): Cluster | undefined {
  let selector: Readonly<Record<string, string>> | undefined;
  if (subset !== '') {
    const spec = dr?.subsets.find((s) => s.name === subset);
    if (!spec) return undefined;
    selector = spec.labels;
  }
  const endpoints = service.endpoints.filter((e) => e.ready && selectorMatches(selector, e.labels));
  const policy = effectivePolicy(dr, subset, port.number);
  const name = clusterName(port.number, subset, service.hostname);
  const live = deps.live ?? new LiveClusters();
  const outlier = outlierSettings(policy.outlierDetection);
  const detector = outlier ? live.detector(name) : undefined;
  const traffic: ClusterTraffic = Object.freeze({
    limits: connectionLimits(policy.connectionPool, deps.meshConnectTimeoutMs),
    breaker: live.breaker(name),
    ...(outlier && detector ? { outlier: Object.freeze({ settings: outlier, detector }) } : {}),
    hostKeys: endpoints.map((e) => endpointKey(e, port)),
  });
  const plan = localityPlan(endpoints, policy.loadBalancer?.localityLbSetting, outlier !== undefined, deps.proxy ?? NOWHERE);
  const algorithm = (members: typeof endpoints) => createLoadBalancer(members, port, policy.loadBalancer, deps);
  // Without health or locality to weigh, the algorithm alone does the picking.
  const trivial = !detector && !plan.weighted && plan.priorities.length === 1 && plan.priorities[0]!.length === 1;
  const lb = trivial
    ? algorithm(endpoints)
    : priorityBalancer({
        endpoints,
        keys: traffic.hostKeys,
        plan,
        ...(detector ? { health: detector } : {}),
        panicThreshold: outlier?.minHealthPercent ?? 0,
        algorithm: algorithm([]).algorithm,
        random: deps.random,
        build: algorithm,
      });
  const plaintext = plaintextSidecars(endpoints, port, deps.peerAuthentication);
  const aliases = deps.trustDomainAliases?.length ? { trustDomainAliases: deps.trustDomainAliases } : {};
  return Object.freeze({ name, service, port, subset, endpoints, policy, lb, traffic, ...(plaintext ? { plaintextSidecars: plaintext } : {}), ...aliases });
}

/** Sidecar endpoints whose PeerAuthentication is DISABLE on the port they serve this cluster on. */
function plaintextSidecars(endpoints: readonly Endpoint[], port: ServicePort, modes: ClusterDeps['peerAuthentication']): ReadonlySet<Endpoint> | undefined {
  if (!modes) return undefined;
  const disabled = endpoints.filter((e) => e.meshTls && modes(e).modeFor(endpointPort(e, port)) === 'DISABLE');
  return disabled.length > 0 ? new Set(disabled) : undefined;
}
