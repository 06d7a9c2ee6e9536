// What `Telemetry` resources decide for a proxy's Istio metrics (docs/reference/metrics.md): the
// `metrics` entries that apply to the workload, least specific first, merged the way istiod merges
// them: per provider in scope (Prometheus: the built-in `prometheus` provider or an extensionProvider
// of that kind), per mode (CLIENT is the gateway and a sidecar's outbound side, SERVER a sidecar's
// inbound side), per metric; later entries win per metric and per tag. An override disables a metric
// or all of them, removes a standard label (REMOVE), or sets a label from an expression (UPSERT):
// a standard label gets a new value, any other name becomes a new label.

import { ISTIO_LABELS, MAX_REQUEST_LABEL_VALUE } from './istio-labels.js';
import { compileExpression, type CompiledExpression } from './metric-expression.js';

export const HTTP_METRICS = ['istio_requests_total', 'istio_request_duration_milliseconds', 'istio_request_bytes', 'istio_response_bytes'] as const;
export const GRPC_METRICS = ['istio_request_messages_total', 'istio_response_messages_total'] as const;
export const TCP_METRICS = ['istio_tcp_sent_bytes_total', 'istio_tcp_received_bytes_total', 'istio_tcp_connections_opened_total', 'istio_tcp_connections_closed_total'] as const;
export type IstioMetricName = (typeof HTTP_METRICS)[number] | (typeof GRPC_METRICS)[number] | (typeof TCP_METRICS)[number];
export const ALL_METRIC_NAMES: readonly IstioMetricName[] = [...HTTP_METRICS, ...GRPC_METRICS, ...TCP_METRICS];

/** Istio's metric selector names → the Prometheus series they stand for. */
export const METRIC_SELECTORS: Readonly<Record<string, readonly IstioMetricName[]>> = {
  ALL_METRICS: ALL_METRIC_NAMES,
  REQUEST_COUNT: ['istio_requests_total'],
  REQUEST_DURATION: ['istio_request_duration_milliseconds'],
  REQUEST_SIZE: ['istio_request_bytes'],
  RESPONSE_SIZE: ['istio_response_bytes'],
  TCP_OPENED_CONNECTIONS: ['istio_tcp_connections_opened_total'],
  TCP_CLOSED_CONNECTIONS: ['istio_tcp_connections_closed_total'],
  TCP_SENT_BYTES: ['istio_tcp_sent_bytes_total'],
  TCP_RECEIVED_BYTES: ['istio_tcp_received_bytes_total'],
  GRPC_REQUEST_MESSAGES: ['istio_request_messages_total'],
  GRPC_RESPONSE_MESSAGES: ['istio_response_messages_total'],
};

export const WORKLOAD_MODES = ['CLIENT', 'SERVER', 'CLIENT_AND_SERVER'] as const;

/** A label name Prometheus accepts and that is not one of its own (`le`, `__…`). */
export function validLabelName(name: string): boolean {
  return /^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name) && name !== 'le' && !name.startsWith('__');
}

const STANDARD = new Set<string>(ISTIO_LABELS);
export const isStandardLabel = (name: string): boolean => STANDARD.has(name);

export interface TagRules {
  /** Standard labels left out of the series. */
  readonly removed: ReadonlySet<string>;
  /** Label → index of its expression in the mode's `expressions`. */
  readonly upserts: ReadonlyMap<string, number>;
}

export interface ModeMetricsPolicy {
  readonly disabled: ReadonlySet<IstioMetricName>;
  readonly tags: ReadonlyMap<IstioMetricName, TagRules>;
  /** Every expression this mode's UPSERTs use, evaluated once per request. */
  readonly expressions: readonly CompiledExpression[];
}

/** `client`: reporter source (gateway, sidecar outbound); `server`: reporter destination. */
export interface MetricsPolicy {
  readonly client: ModeMetricsPolicy;
  readonly server: ModeMetricsPolicy;
}

const EMPTY_MODE: ModeMetricsPolicy = Object.freeze({ disabled: new Set<IstioMetricName>(), tags: new Map(), expressions: [] });
export const DEFAULT_METRICS_POLICY: MetricsPolicy = Object.freeze({ client: EMPTY_MODE, server: EMPTY_MODE });

/** The labels a policy adds beyond Istio's, sorted: they become label names of every series. */
export function addedLabels(p: MetricsPolicy): string[] {
  const out = new Set<string>();
  for (const mode of [p.client, p.server]) for (const rules of mode.tags.values()) for (const t of rules.upserts.keys()) if (!STANDARD.has(t)) out.add(t);
  return [...out].sort();
}

/** Longest label value an expression may produce; longer values are cut (a bound on series size). */
export const MAX_EXPRESSION_VALUE = MAX_REQUEST_LABEL_VALUE;

/** A series' labels under a metric's rules: removed ones left out, upserted ones set from `values`. */
export function applyTagRules(labels: Readonly<Record<string, string>>, rules: TagRules | undefined, values: readonly string[]): Record<string, string> {
  if (!rules) return labels as Record<string, string>;
  const out: Record<string, string> = { ...labels };
  for (const t of rules.removed) delete out[t];
  for (const [t, i] of rules.upserts) out[t] = values[i] ?? 'unknown';
  return out;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const providerNames = (v: unknown): string[] => list(v).filter(isObj).map((p) => p['name']).filter((n): n is string => typeof n === 'string');

/** The mesh config's Prometheus providers: the built-in `prometheus` and extensionProviders of that kind. */
function prometheusProviders(mesh: Obj | undefined): Set<string> {
  const names = new Set(['prometheus']);
  for (const p of list(mesh?.['extensionProviders'])) if (isObj(p) && typeof p['name'] === 'string' && isObj(p['prometheus'])) names.add(p['name']);
  return names;
}

interface MetricState {
  disabled?: boolean;
  readonly tags: Map<string, { remove: true } | { value: string }>;
}

/**
 * `entries`: the `spec.metrics` items of the Telemetry resources that apply, least specific first.
 * Without a Prometheus provider in scope there are no Istio metrics at all, as with Istio.
 */
export function metricsPolicyFrom(entries: readonly unknown[], mesh: Obj | undefined): MetricsPolicy {
  const prometheus = prometheusProviders(mesh);
  const defaults = isObj(mesh?.['defaultProviders']) && Array.isArray(mesh['defaultProviders']['metrics']) ? (mesh['defaultProviders']['metrics'] as unknown[]).filter((n): n is string => typeof n === 'string') : ['prometheus'];
  let inScope = defaults;
  for (const m of entries) if (isObj(m) && providerNames(m['providers']).length > 0) inScope = providerNames(m['providers']);
  const ours = new Set(inScope.filter((n) => prometheus.has(n)));
  if (ours.size === 0) return ALL_OFF;
  const state = { client: new Map<IstioMetricName, MetricState>(), server: new Map<IstioMetricName, MetricState>() };
  const allOff = { client: false, server: false };
  let parent = defaults;
  for (const m of entries) {
    if (!isObj(m)) continue;
    const names = providerNames(m['providers']).length > 0 ? providerNames(m['providers']) : parent;
    parent = names;
    if (!names.some((n) => ours.has(n))) continue;
    for (const o of list(m['overrides'])) {
      if (!isObj(o)) continue;
      const match = isObj(o['match']) ? o['match'] : {};
      if (match['customMetric'] !== undefined && match['metric'] === undefined) continue;
      const selector = typeof match['metric'] === 'string' ? match['metric'] : 'ALL_METRICS';
      const modes = match['mode'] === 'CLIENT' ? (['client'] as const) : match['mode'] === 'SERVER' ? (['server'] as const) : (['client', 'server'] as const);
      if (selector === 'ALL_METRICS' && o['disabled'] === true) {
        for (const mode of modes) allOff[mode] = true;
        continue;
      }
      for (const mode of modes) {
        // A namespace or workload can turn back on what the root namespace turned off.
        allOff[mode] = false;
        for (const name of METRIC_SELECTORS[selector] ?? []) {
          const st: MetricState = state[mode].get(name) ?? { tags: new Map() };
          if (typeof o['disabled'] === 'boolean') st.disabled = o['disabled'];
          for (const [tag, op] of Object.entries(isObj(o['tagOverrides']) ? o['tagOverrides'] : {})) {
            if (!isObj(op)) continue;
            if (op['operation'] === 'REMOVE') st.tags.set(tag, { remove: true });
            else if (typeof op['value'] === 'string') st.tags.set(tag, { value: op['value'] });
          }
          state[mode].set(name, st);
        }
      }
    }
  }
  const client = compileMode(state.client, allOff.client);
  const server = compileMode(state.server, allOff.server);
  return client === EMPTY_MODE && server === EMPTY_MODE ? DEFAULT_METRICS_POLICY : { client, server };
}

const ALL_OFF: MetricsPolicy = Object.freeze({
  client: Object.freeze({ disabled: new Set(ALL_METRIC_NAMES), tags: new Map(), expressions: [] }),
  server: Object.freeze({ disabled: new Set(ALL_METRIC_NAMES), tags: new Map(), expressions: [] }),
});

function compileMode(state: ReadonlyMap<IstioMetricName, MetricState>, allOff: boolean): ModeMetricsPolicy {
  if (allOff) return ALL_OFF.client;
  const disabled = new Set<IstioMetricName>();
  const tags = new Map<IstioMetricName, TagRules>();
  const expressions: CompiledExpression[] = [];
  const index = new Map<string, number>();
  for (const [name, st] of state) {
    if (st.disabled) disabled.add(name);
    const removed = new Set<string>();
    const upserts = new Map<string, number>();
    for (const [tag, op] of st.tags) {
      if (!validLabelName(tag)) continue;
      // Only Istio's own labels can be removed; an expression that does not compile changes nothing
      // (validation says which and why).
      if ('remove' in op) {
        if (STANDARD.has(tag)) removed.add(tag);
        continue;
      }
      const compiled = compileExpression(op.value);
      if (!compiled.ok) continue;
      let i = index.get(op.value);
      if (i === undefined) {
        i = expressions.push(compiled.expression) - 1;
        index.set(op.value, i);
      }
      upserts.set(tag, i);
    }
    if (removed.size > 0 || upserts.size > 0) tags.set(name, { removed, upserts });
  }
  return disabled.size === 0 && tags.size === 0 ? EMPTY_MODE : { disabled, tags, expressions };
}
