// buildCluster(): one Envoy-style cluster (service port × subset) with the endpoints the subset's
// labels select, the traffic policy that applies after subset and port-level replacement, and the
// load balancer built from it. A subset the DestinationRule does not define yields no cluster, which
// the caller answers with 503 NC.

import type { Service, ServicePort } from '../registry/types.js';
import { selectorMatches } from '../registry/labels.js';
import type { MergedDestinationRule } from './destination-rules.js';
import type { LoadBalancerDeps } from './load-balancer.js';
import { createLoadBalancer } from './load-balancer.js';
import { effectivePolicy } from './traffic-policy.js';
import type { Cluster } from './types.js';
import { clusterName } from './types.js';

export function buildCluster(
  service: Service,
  port: ServicePort,
  subset: string,
  dr: MergedDestinationRule | undefined,
  deps: LoadBalancerDeps,
): Cluster | undefined {
  let selector: Readonly<Record<string, string>> | undefined;
  if (subset !== '') {
    const spec = dr?.subsets.find((s) => s.name === subset);
    if (!spec) return undefined;
    selector = spec.labels;
  }
  const endpoints = service.endpoints.filter((e) => e.ready && selectorMatches(selector, e.labels));
  const policy = effectivePolicy(dr, subset, port.number);
  return Object.freeze({
    name: clusterName(port.number, subset, service.hostname),
    service,
    port,
    subset,
    endpoints,
    policy,
    lb: createLoadBalancer(endpoints, port, policy.loadBalancer, deps),
  });
}
