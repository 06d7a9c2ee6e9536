// Envoy's ORIGINAL_DST cluster, as Istio gives it to a headless Service and to a ServiceEntry with
// `resolution: NONE`: a connection or request the app sent to an address goes to that address, not
// to an endpoint a load balancer picks. Captured TCP (tcp-forward.ts) and captured HTTP (forward.ts)
// both ask here which endpoint that is.

import type { Cluster } from './types.js';
import type { Endpoint, Service } from '../registry/types.js';
import { endpointPort } from '../registry/types.js';
import { makeEndpoint } from '../registry/endpoint-set.js';

/** Where the app sent it: the original destination capture found. */
export interface Dialled {
  readonly address: string;
  readonly port: number;
}

/** A headless Service, or a ServiceEntry with `resolution: NONE` (its addresses are where traffic goes). */
export function keepsOriginalDestination(s: Service): boolean {
  return s.headless === true || (s.kind === 'ServiceEntry' && s.resolution === 'NONE');
}

/**
 * The cluster's endpoint the app dialled: the one at that address listening on that port, else (the
 * app dialled the service port, as it does a pod of a headless Service) the only one at that address.
 * A ServiceEntry with `resolution: NONE` has no endpoints: the dialled address is the endpoint.
 * Undefined when the address is none of the cluster's endpoints.
 */
export function originalEndpoint(cluster: Cluster, at: Dialled): Endpoint | undefined {
  const service = cluster.service;
  if (service.kind === 'ServiceEntry' && service.resolution === 'NONE') {
    return makeEndpoint({ address: at.address, ports: new Map([[cluster.port.number, at.port]]), labels: {}, locality: '', namespace: service.namespace, meshTls: false, ready: true });
  }
  // A headless Service's pod is dialled whether it is ready or in a routed subset (StatefulSet peers
  // dial each other before they are ready); others keep to the cluster's ready endpoints.
  const there = (service.headless ? service.endpoints : cluster.endpoints).filter((e) => e.address === at.address);
  const exact = there.find((e) => endpointPort(e, cluster.port) === at.port);
  return exact ?? (there.length === 1 && at.port === cluster.port.number ? there[0] : undefined);
}
