// createLoadBalancer(): the DestinationRule's loadBalancer settings → the algorithm that picks an
// endpoint per request. LEAST_REQUEST is the default (UNSPECIFIED and the deprecated LEAST_CONN mean
// it too); PASSTHROUGH (original destination) has no meaning at a gateway and falls back to it.
// Randomness comes only from deps.random, so that tests are exact.

import type { LoadBalancerSettings } from '../model/istio.js';
import type { Endpoint, ServicePort } from '../registry/types.js';
import { hashKeyFor } from './hash-key.js';
import { lbTargets } from './lb-endpoints.js';
import { leastRequest } from './least-request.js';
import { maglev } from './maglev.js';
import { randomBalancer } from './random-lb.js';
import { ringHash } from './ring-hash.js';
import { roundRobin } from './round-robin.js';
import type { EndpointLoad, LoadBalancer } from './types.js';

export interface LoadBalancerDeps {
  readonly random: () => number;
  readonly load: EndpointLoad;
}

export function createLoadBalancer(
  endpoints: readonly Endpoint[],
  port: ServicePort,
  settings: LoadBalancerSettings | undefined,
  deps: LoadBalancerDeps,
): LoadBalancer {
  const targets = lbTargets(endpoints, port);
  const hash = settings?.consistentHash;
  if (hash && typeof hash === 'object') {
    const keyOf = hashKeyFor(hash, deps.random);
    if (hash.maglev && typeof hash.maglev === 'object') return maglev(targets, keyOf, deps.random, hash.maglev.tableSize);
    // `minimumRingSize` directly under consistentHash is the deprecated spelling of ringHash.minimumRingSize.
    const minimum = hash.ringHash?.minimumRingSize ?? hash.minimumRingSize;
    return ringHash(targets, keyOf, deps.random, typeof minimum === 'number' && minimum > 0 ? minimum : undefined);
  }
  switch (settings?.simple) {
    case 'ROUND_ROBIN':
      return roundRobin(targets, deps.random);
    case 'RANDOM':
      return randomBalancer(targets, deps.random);
    default:
      return leastRequest(targets, deps);
  }
}
