// How many proxies in front of a gateway append to x-forwarded-for (Envoy's xff_num_trusted_hops),
// which decides the client address `remoteIpBlocks` and rate-limit keys see (client-address.ts). As
// in Istio: the proxy's own setting first (`--trusted-proxies`, where Istio reads the gateway pod's
// `proxy.istio.io/config` annotation), else the mesh config's
// `defaultConfig.gatewayTopology.numTrustedProxies`, else 0 (the connection's peer). Sidecars never
// trust x-forwarded-for from the mesh config: Istio sets gatewayTopology on gateways only.
// Worked out once per snapshot.

import type { Snapshot } from '../snapshot/snapshot.js';
import { isRecord } from '../config/load.js';
import { meshConfigOf } from '../telemetry/telemetry-policy.js';

const fromMesh = new WeakMap<Snapshot, number>();

/** The trusted hop count for a request served under `snapshot`; `own` is the proxy's own setting, if given. */
export function trustedHopsFor(snapshot: Snapshot | undefined, own: number | undefined): number {
  if (own !== undefined) return own;
  if (!snapshot || snapshot.role.kind !== 'gateway') return 0;
  let hops = fromMesh.get(snapshot);
  if (hops === undefined) {
    const dc = meshConfigOf(snapshot.resources)?.['defaultConfig'];
    const topology = isRecord(dc) ? dc['gatewayTopology'] : undefined;
    const n = isRecord(topology) ? topology['numTrustedProxies'] : undefined;
    hops = typeof n === 'number' && Number.isInteger(n) && n > 0 ? n : 0;
    fromMesh.set(snapshot, hops);
  }
  return hops;
}
