// MG0008 SidecarIngressTlsIgnored: a Sidecar ingress listener's `tls` on a port where
// PeerAuthentication does not leave the workload DISABLE. Istio terminates a listener's own TLS only
// on a DISABLE port (elsewhere mesh mutual TLS keeps the port, and the tls block does nothing), which
// is why its "Ingress Sidecar TLS Termination" task pairs the Sidecar with a portLevelMtls DISABLE.
// The workloads checked are those the Sidecar applies to (or, with none known, its selector's labels).

import type { Problem } from '../config/problem.js';
import type { Labels } from '../model/istio.js';
import { compilePeerAuthentication } from '../policy/peer-authentication.js';
import { SidecarIndex } from '../policy/sidecar-scope.js';
import { DEFAULT_ROOT_NAMESPACE } from '../telemetry/telemetry-policy.js';
import type { AnalysisContext } from './context.js';
import { finding, MESSAGES } from './finding.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export function sidecarIngressTls(ctx: AnalysisContext): Problem[] {
  const sidecars = ctx.resources.filter((r) => r.kind === 'Sidecar');
  const index = new SidecarIndex(sidecars, DEFAULT_ROOT_NAMESPACE);
  const out: Problem[] = [];
  for (const sidecar of sidecars) {
    const spec = isObj(sidecar.spec) ? sidecar.spec : {};
    const listeners = Array.isArray(spec.ingress) ? spec.ingress : [];
    if (!listeners.some((l) => isObj(l) && isObj(l.tls))) continue;
    const selector = isObj(spec.workloadSelector) && isObj(spec.workloadSelector.labels) ? (spec.workloadSelector.labels as Labels) : {};
    const governed = ctx.workloads.filter((w) => index.applicable(w.namespace, w.labels) === sidecar);
    const workloads = governed.length > 0 ? governed : [{ namespace: sidecar.metadata.namespace, labels: selector }];
    listeners.forEach((l, i) => {
      if (!isObj(l) || !isObj(l.tls) || !isObj(l.port) || typeof l.port.number !== 'number') return;
      const port = l.port.number;
      for (const w of workloads) {
        const policy = compilePeerAuthentication(ctx.resources, w, DEFAULT_ROOT_NAMESPACE);
        const mode = policy.modeFor(port);
        if (mode === 'DISABLE') continue;
        const decided = policy.sourceFor(port);
        const who = Object.entries(w.labels).map(([k, v]) => `${k}=${v}`).join(',') || 'every workload';
        out.push(finding(MESSAGES.SidecarIngressTlsIgnored, sidecar, ['spec', 'ingress', i, 'tls'],
          `this tls is not used for ${w.namespace} ${who}: ${decided ?? 'with no PeerAuthentication, the default'} leaves port ${port} ${mode}, so mesh mutual TLS keeps the port`,
          `add portLevelMtls {${port}: {mode: DISABLE}} to a PeerAuthentication that selects the workload`));
        break;
      }
    });
  }
  return out;
}
