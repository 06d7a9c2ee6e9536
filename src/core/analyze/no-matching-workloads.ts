// A selector whose labels no workload carries: the resource applies to nothing, which is usually a
// typo in a label rather than the intent. IST0127 NoMatchingWorkloadsFound for an AuthorizationPolicy,
// PeerAuthentication, RequestAuthentication or DestinationRule workloadSelector; for a Sidecar or
// Telemetry, Istio's analyzers say IST0101 ReferencedResourceNotFound ("selector"), and so does meshgate.

import type { Labels } from '../model/istio.js';
import type { FieldPath } from '../model/resource.js';
import type { Problem } from '../config/problem.js';
import { selectorMatches } from '../registry/labels.js';
import type { AnalysisContext } from './context.js';
import { finding, MESSAGES } from './finding.js';

const ROOT_NAMESPACE = 'istio-system';

export function noMatchingWorkloads(ctx: AnalysisContext): Problem[] {
  const out: Problem[] = [];
  for (const r of ctx.resources) {
    let labels: Labels | undefined;
    let at: FieldPath = [];
    const spec = (r.spec ?? {}) as { selector?: { matchLabels?: Labels }; workloadSelector?: { matchLabels?: Labels; labels?: Labels } };
    if (r.kind === 'AuthorizationPolicy' || r.kind === 'PeerAuthentication' || r.kind === 'RequestAuthentication' || r.kind === 'Telemetry') [labels, at] = [spec.selector?.matchLabels, ['spec', 'selector', 'matchLabels']];
    else if (r.kind === 'DestinationRule') [labels, at] = [spec.workloadSelector?.matchLabels, ['spec', 'workloadSelector', 'matchLabels']];
    else if (r.kind === 'Sidecar') [labels, at] = [spec.workloadSelector?.labels, ['spec', 'workloadSelector', 'labels']];
    if (!labels || Object.keys(labels).length === 0) continue;
    const ns = r.metadata.namespace;
    // A policy in the root namespace applies in every namespace.
    const found = ctx.workloads.some((w) => (ns === ROOT_NAMESPACE || w.namespace === ns || w.namespace === '*') && selectorMatches(labels, w.labels));
    if (found) continue;
    const shown = Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',');
    const notFound = r.kind === 'Sidecar' || r.kind === 'Telemetry';
    out.push(finding(notFound ? MESSAGES.ReferencedResourceNotFound : MESSAGES.NoMatchingWorkloadsFound, r, at, `${notFound ? 'referenced selector not found: ' : ''}no workload in namespace ${ns} carries the labels ${shown}, so this ${r.kind} applies to nothing`, 'correct the labels, or remove the resource if it is no longer needed'));
  }
  return out;
}
