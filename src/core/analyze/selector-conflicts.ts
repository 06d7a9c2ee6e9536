// Resources of one kind where at most one may apply to a workload (Sidecar, Telemetry): Istio reports
// two of one namespace without a selector, and two whose selectors pick the same workload, since
// which one applies is then undefined. Shared by the Sidecar and Telemetry analyzers.

import type { Problem } from '../config/problem.js';
import type { Labels } from '../model/istio.js';
import type { FieldPath, Resource } from '../model/resource.js';
import { selectorMatches } from '../registry/labels.js';
import type { AnalysisContext } from './context.js';
import { finding, type MessageType } from './finding.js';

export interface SelectorConflictKind {
  /** `Sidecars`, `Telemetries`: the plural the messages use. */
  readonly plural: string;
  /** The selector's labels (undefined or empty: none), and where it is written. */
  selector(r: Resource): Labels | undefined;
  readonly selectorPath: FieldPath;
  /** Resources that apply by other means than a selector (targetRefs) take no part. */
  readonly skip?: (r: Resource) => boolean;
  readonly withoutSelectors: MessageType;
  readonly conflictingSelectors: MessageType;
}

export function selectorConflicts(ctx: AnalysisContext, resources: readonly Resource[], kind: SelectorConflictKind): Problem[] {
  const out: Problem[] = [];
  const selectorOf = (r: Resource): Labels | undefined => {
    const s = kind.selector(r);
    return s && Object.keys(s).length > 0 ? s : undefined;
  };
  const byNamespace = new Map<string, Resource[]>();
  for (const r of resources) if (!kind.skip?.(r)) byNamespace.set(r.metadata.namespace, [...(byNamespace.get(r.metadata.namespace) ?? []), r]);
  for (const [ns, inNamespace] of byNamespace) {
    const unselected = inNamespace.filter((r) => !selectorOf(r));
    if (unselected.length > 1) {
      const shown = unselected.map((r) => r.metadata.name).join(', ');
      for (const r of unselected) out.push(finding(kind.withoutSelectors, r, ['metadata', 'name'], `the ${kind.plural} ${shown} in namespace ${ns} have no workload selector; which one applies is undefined`, 'merge them into one, or give all but one a selector'));
    }
    let selected = inNamespace.filter((r) => selectorOf(r));
    for (const w of ctx.workloads) {
      if (w.namespace !== ns) continue;
      const matching = selected.filter((r) => selectorMatches(selectorOf(r)!, w.labels));
      if (matching.length < 2) continue;
      const shown = matching.map((r) => r.metadata.name).join(', ');
      const label = Object.entries(w.labels).map(([k, v]) => `${k}=${v}`).join(',');
      for (const r of matching) out.push(finding(kind.conflictingSelectors, r, kind.selectorPath, `the ${kind.plural} ${shown} in namespace ${ns} select the same workload (${label}); which one applies is undefined`, `make the selectors disjoint, or merge the ${kind.plural}`));
      // One report per conflicting set is enough.
      selected = selected.filter((r) => !matching.includes(r));
    }
  }
  return out;
}
