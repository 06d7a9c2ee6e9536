// IST0111 MultipleSidecarsWithoutWorkloadSelectors and IST0110 ConflictingSidecarWorkloadSelectors:
// two Sidecar resources of one namespace that both apply to a workload, where which one the
// workload's sidecar gets is undefined. (A selector that matches nothing: no-matching-workloads.ts.)

import type { Problem } from '../config/problem.js';
import type { Labels } from '../model/istio.js';
import type { AnalysisContext } from './context.js';
import { MESSAGES } from './finding.js';
import { selectorConflicts } from './selector-conflicts.js';

export function sidecarSelectors(ctx: AnalysisContext): Problem[] {
  return selectorConflicts(ctx, ctx.resources.filter((r) => r.kind === 'Sidecar'), {
    plural: 'Sidecars',
    selector: (r) => (r.spec as { workloadSelector?: { labels?: Labels } } | null)?.workloadSelector?.labels,
    selectorPath: ['spec', 'workloadSelector'],
    withoutSelectors: MESSAGES.MultipleSidecarsWithoutWorkloadSelectors,
    conflictingSelectors: MESSAGES.ConflictingSidecarWorkloadSelectors,
  });
}
