// Telemetry resources that do nothing or fight each other. IST0157 InvalidTelemetryProvider: a
// provider name that no extensionProvider of the mesh config defines (nor one of Istio's built-in
// `prometheus`, `stackdriver`, `envoy`), or an entry with no providers while the mesh config sets no
// default providers for it: either way that part of the Telemetry is ignored. IST0160
// MultipleTelemetriesWithoutWorkloadSelectors and IST0159 ConflictingTelemetryWorkloadSelectors: two
// Telemetries of one namespace that both apply to the same workloads, where which one wins is undefined.

import type { Problem } from '../config/problem.js';
import type { Resource } from '../model/resource.js';
import { selectorMatches } from '../registry/labels.js';
import { meshConfigOf } from '../telemetry/telemetry-policy.js';
import type { AnalysisContext } from './context.js';
import { finding, MESSAGES } from './finding.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** Providers every Istio mesh config has, whatever extensionProviders it adds. */
const BUILT_IN = ['prometheus', 'stackdriver', 'envoy'];
const PARTS = ['tracing', 'accessLogging', 'metrics'] as const;
const DEFAULTS_KEY: Record<(typeof PARTS)[number], string> = { tracing: 'tracing', accessLogging: 'accessLogging', metrics: 'metrics' };

export function telemetryProviders(ctx: AnalysisContext): Problem[] {
  const out: Problem[] = [];
  const telemetries = ctx.resources.filter((r) => r.kind === 'Telemetry');
  if (telemetries.length === 0) return out;
  const mesh = meshConfigOf(ctx.resources);
  const names = new Set(BUILT_IN);
  for (const p of list(mesh?.['extensionProviders'])) if (isObj(p) && typeof p['name'] === 'string') names.add(p['name']);
  const defaults = isObj(mesh?.['defaultProviders']) ? mesh['defaultProviders'] : {};
  for (const t of telemetries) {
    const spec = isObj(t.spec) ? t.spec : {};
    for (const part of PARTS) {
      list(spec[part]).forEach((entry, i) => {
        if (!isObj(entry)) return;
        const providers = list(entry['providers']);
        if (providers.length === 0) {
          // `disabled`-only and override-only entries need no provider when the mesh has defaults.
          if (list(defaults[DEFAULTS_KEY[part]]).length === 0 && part === 'tracing') {
            out.push(finding(MESSAGES.InvalidTelemetryProvider, t, ['spec', part, i], `this ${part} entry names no provider and the mesh config sets no defaultProviders.${DEFAULTS_KEY[part]}`, 'name a provider (providers: [{name: ...}]) defined in the mesh config\'s extensionProviders, or set defaultProviders'));
          }
          return;
        }
        providers.forEach((p, j) => {
          const name = isObj(p) ? p['name'] : undefined;
          if (typeof name !== 'string' || names.has(name)) return;
          out.push(finding(MESSAGES.InvalidTelemetryProvider, t, ['spec', part, i, 'providers', j, 'name'], `provider "${name}" is not defined in the mesh config's extensionProviders (${[...names].join(', ')}), so this is ignored`, 'add it to extensionProviders in the istio ConfigMap of istio-system (data.mesh), or correct the name'));
        });
      });
    }
  }
  // Conflicts, per namespace.
  const byNamespace = new Map<string, Resource[]>();
  for (const t of telemetries) byNamespace.set(t.metadata.namespace, [...(byNamespace.get(t.metadata.namespace) ?? []), t]);
  for (const [ns, list_] of byNamespace) {
    const selectorOf = (t: Resource): Record<string, string> | undefined => {
      const s = isObj(t.spec) && isObj(t.spec['selector']) && isObj(t.spec['selector']['matchLabels']) ? (t.spec['selector']['matchLabels'] as Record<string, string>) : undefined;
      return s && Object.keys(s).length > 0 ? s : undefined;
    };
    const targeted = (t: Resource): boolean => isObj(t.spec) && (t.spec['targetRef'] !== undefined || t.spec['targetRefs'] !== undefined);
    const unselected = list_.filter((t) => !selectorOf(t) && !targeted(t));
    if (unselected.length > 1) {
      const shown = unselected.map((t) => t.metadata.name).join(', ');
      for (const t of unselected) out.push(finding(MESSAGES.MultipleTelemetriesWithoutWorkloadSelectors, t, ['metadata', 'name'], `the Telemetries ${shown} in namespace ${ns} have no workload selector; which one applies is undefined`, 'merge them into one, or give all but one a selector'));
    }
    const selected = list_.filter((t) => selectorOf(t));
    for (const w of ctx.workloads) {
      if (w.namespace !== ns) continue;
      const matching = selected.filter((t) => selectorMatches(selectorOf(t)!, w.labels));
      if (matching.length < 2) continue;
      const shown = matching.map((t) => t.metadata.name).join(', ');
      const label = Object.entries(w.labels).map(([k, v]) => `${k}=${v}`).join(',');
      for (const t of matching) out.push(finding(MESSAGES.ConflictingTelemetryWorkloadSelectors, t, ['spec', 'selector'], `the Telemetries ${shown} in namespace ${ns} select the same workload (${label}); which one applies is undefined`, 'make the selectors disjoint, or merge the Telemetries'));
      // One report per conflicting set is enough.
      selected.splice(0, selected.length, ...selected.filter((t) => !matching.includes(t)));
    }
  }
  return out;
}
