// Telemetry resources that do nothing or fight each other. IST0157 InvalidTelemetryProvider: a
// provider name that no extensionProvider of the mesh config defines (nor one of Istio's built-in
// `prometheus`, `stackdriver`, `envoy`), or an entry with no providers while the mesh config sets no
// default providers for it: either way that part of the Telemetry is ignored. IST0160
// MultipleTelemetriesWithoutWorkloadSelectors and IST0159 ConflictingTelemetryWorkloadSelectors: two
// Telemetries of one namespace that both apply to the same workloads, where which one wins is undefined.

import type { Problem } from '../config/problem.js';
import type { Labels } from '../model/istio.js';
import { meshConfigOf } from '../telemetry/telemetry-policy.js';
import type { AnalysisContext } from './context.js';
import { finding, MESSAGES } from './finding.js';
import { selectorConflicts } from './selector-conflicts.js';

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
  out.push(...selectorConflicts(ctx, telemetries, {
    plural: 'Telemetries',
    selector: (t) => (isObj(t.spec) && isObj(t.spec['selector']) && isObj(t.spec['selector']['matchLabels']) ? (t.spec['selector']['matchLabels'] as Labels) : undefined),
    selectorPath: ['spec', 'selector'],
    skip: (t) => isObj(t.spec) && (t.spec['targetRef'] !== undefined || t.spec['targetRefs'] !== undefined),
    withoutSelectors: MESSAGES.MultipleTelemetriesWithoutWorkloadSelectors,
    conflictingSelectors: MESSAGES.ConflictingTelemetryWorkloadSelectors,
  }));
  return out;
}
