// Which of a route's weighted destinations a request (or a piped connection) goes to, picked once
// when the route is selected.

import type { DestinationTarget, ForwardAction } from '../routing/types.js';
import type { RequestRecord } from '../telemetry/access-log.js';

/** A destination by relative weight; used for HTTP routes and for piped (tls/tcp) connections alike. */
export function pickDestination(action: Pick<ForwardAction, 'destinations' | 'totalWeight'>, random: () => number): DestinationTarget | undefined {
  const ds = action.destinations;
  if (ds.length <= 1) return ds[0];
  let r = random() * action.totalWeight;
  for (const d of ds) {
    r -= d.weight;
    if (r < 0) return d;
  }
  return ds[ds.length - 1];
}

/**
 * The route's destination, picked once when the route is selected, as Envoy resolves a route's
 * (weighted) cluster before any filter runs, and named in the record when that cluster exists: a
 * local reply before the upstream (401, 403, 429, a fault) then reports the routed service, as
 * Istio's metrics do. A cluster that does not exist (NC) stays unnamed: Envoy has no cluster for it.
 */
export function routedDestination(action: Pick<ForwardAction, 'destinations' | 'totalWeight'>, random: () => number, record: RequestRecord): DestinationTarget | undefined {
  const dest = pickDestination(action, random);
  if (dest?.cluster) record.upstreamCluster = dest.clusterName;
  return dest;
}
