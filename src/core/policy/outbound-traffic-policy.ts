// What a sidecar does with a host the mesh does not know (Istio's outboundTrafficPolicy): ALLOW_ANY
// passes it through as asked (PassthroughCluster), REGISTRY_ONLY refuses it (BlackHoleCluster). As in
// Istio, the Sidecar resource that applies to the workload decides first, then the mesh config
// (`outboundTrafficPolicy.mode` in `data.mesh` of the `istio` ConfigMap), then the sidecar's own
// default (`meshgate sidecar --outbound-traffic-policy`, ALLOW_ANY). Worked out once per snapshot.

import type { Snapshot } from '../snapshot/snapshot.js';
import { isRecord } from '../config/load.js';
import { meshConfigOf } from '../telemetry/telemetry-policy.js';
import { applicableSidecar } from './applicable-sidecar.js';
import { outboundModeIn, type OutboundTrafficMode } from './sidecar-scope.js';

/** Envoy's cluster for traffic to destinations the mesh does not know, as Istio names it in metrics and logs. */
export const PASSTHROUGH_CLUSTER = 'PassthroughCluster';
/** Envoy's cluster with no endpoints that REGISTRY_ONLY sends such TCP to: the connection is closed with UH. */
export const BLACKHOLE_CLUSTER = 'BlackHoleCluster';

const modes = new WeakMap<Snapshot, OutboundTrafficMode>();

/** The outboundTrafficPolicy mode for the proxy a snapshot was built for (a gateway: its default, ALLOW_ANY). */
export function outboundTrafficModeOf(snapshot: Snapshot): OutboundTrafficMode {
  let mode = modes.get(snapshot);
  if (mode === undefined) {
    mode = decide(snapshot);
    modes.set(snapshot, mode);
  }
  return mode;
}

function decide(snapshot: Snapshot): OutboundTrafficMode {
  const role = snapshot.role;
  if (role.kind !== 'sidecar') return 'ALLOW_ANY';
  const mesh = meshConfigOf(snapshot.resources);
  const sidecar = applicableSidecar(snapshot);
  const own = sidecar && isRecord(sidecar.spec) ? outboundModeIn(sidecar.spec.outboundTrafficPolicy) : undefined;
  return own ?? outboundModeIn(mesh?.['outboundTrafficPolicy']) ?? role.outboundTrafficPolicy;
}
