// What Istio's telemetry configuration decides for one proxy: the mesh config (the `istio` ConfigMap
// in the root namespace, `data.mesh`: defaultConfig.tracing.sampling, enableTracing,
// extensionProviders, defaultProviders) overlaid by `Telemetry` resources, mesh-wide (root
// namespace, no selector), then the proxy's namespace, then those whose selector matches its labels
// — the more specific one wins for each thing it sets. Computed once per snapshot.

import { parseEmbeddedYaml } from '../config/embedded-yaml.js';
import type { Resource } from '../model/resource.js';
import { parseDuration } from '../config/duration.js';
import { DEFAULT_METRICS_POLICY, metricsPolicyFrom, type MetricsPolicy } from './metrics-overrides.js';
import { accessLogPolicyFrom, DEFAULT_ACCESS_LOG_POLICY, type AccessLogPolicy } from './access-log-policy.js';
import { collectorUrl, extensionProvider } from './extension-providers.js';
import { customTagsFrom, type TraceCustomTags } from './trace-custom-tags.js';

export const DEFAULT_ROOT_NAMESPACE = 'istio-system';
/** PILOT_TRACE_SAMPLING's default: 1 %. */
export const DEFAULT_SAMPLING_PERCENT = 1;

export interface TraceProvider {
  readonly name: string;
  readonly kind: 'opentelemetry' | 'zipkin';
  /**
   * How spans travel: OTLP over gRPC for an `opentelemetry` provider without `http` (Istio's meaning
   * of that provider, as its tracing tasks write it), HTTP for one with `http` and for Zipkin.
   */
  readonly protocol: 'http' | 'grpc';
  /** Where spans go: OTLP/HTTP `…/v1/traces`, Zipkin's `…/api/v2/spans`, or the gRPC collector's `http://host:port` (plaintext). */
  readonly url: string;
  /** HTTP headers (`http.headers`), or gRPC metadata (`grpc.initialMetadata`). */
  readonly headers: Readonly<Record<string, string>>;
  /** `http.timeout` or `grpc.timeout`: how long one export may take (the exporter's own default when absent). */
  readonly timeoutMs?: number;
}

export interface TelemetryPolicy {
  readonly samplingPercent: number;
  /** Undefined: spans are not exported (no provider, or tracing disabled). */
  readonly traceProvider?: TraceProvider;
  /** `tracing[].customTags` of the most specific Telemetry that names some: added to every span. */
  readonly traceCustomTags?: TraceCustomTags;
  readonly accessLog: AccessLogPolicy;
  readonly metrics: MetricsPolicy;
  /** `metrics[].reportingInterval` of the most specific Telemetry that sets it: how often open connections and streams report. */
  readonly reportingIntervalMs?: number;
}

export const DEFAULT_TELEMETRY_POLICY: TelemetryPolicy = Object.freeze({ samplingPercent: DEFAULT_SAMPLING_PERCENT, accessLog: DEFAULT_ACCESS_LOG_POLICY, metrics: DEFAULT_METRICS_POLICY });

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** `data.mesh` of the root namespace's `istio` ConfigMap, parsed (undefined when absent or not YAML). */
export function meshConfigOf(resources: readonly Resource[]): Obj | undefined {
  for (const r of resources) {
    if (r.kind !== 'ConfigMap' || r.metadata.name !== 'istio' || r.metadata.namespace !== DEFAULT_ROOT_NAMESPACE) continue;
    const data = isObj(r.raw) && isObj(r.raw['data']) ? r.raw['data'] : undefined;
    const text = data?.['mesh'];
    if (typeof text !== 'string') return undefined;
    const parsed = parseEmbeddedYaml(text);
    return parsed.ok && isObj(parsed.value) ? parsed.value : undefined;
  }
  return undefined;
}

function providerOf(mesh: Obj | undefined, name: string): TraceProvider | undefined {
  const p = extensionProvider(mesh, name);
  const otel = p?.['opentelemetry'];
  const zipkin = p?.['zipkin'];
  const spec = isObj(otel) ? otel : isObj(zipkin) ? zipkin : undefined;
  const base = spec ? collectorUrl(spec) : undefined;
  if (!spec || !base) return undefined;
  const http = isObj(spec['http']) ? spec['http'] : undefined;
  const grpc = isObj(otel) && !http;
  const service = grpc ? (isObj(spec['grpc']) ? spec['grpc'] : undefined) : http;
  const headers: Record<string, string> = {};
  for (const h of list(grpc ? service?.['initialMetadata'] : http?.['headers'])) {
    if (isObj(h) && typeof h['name'] === 'string' && typeof h['value'] === 'string') headers[grpc ? h['name'].toLowerCase() : h['name']] = h['value'];
  }
  const timeoutMs = typeof service?.['timeout'] === 'string' ? parseDuration(service['timeout']) : undefined;
  const path = grpc ? '' : isObj(otel) ? (typeof http?.['path'] === 'string' ? http['path'] : '/v1/traces') : typeof spec['path'] === 'string' ? spec['path'] : '/api/v2/spans';
  return {
    name,
    kind: isObj(otel) ? 'opentelemetry' : 'zipkin',
    protocol: grpc ? 'grpc' : 'http',
    url: `${base}${path === '' || path.startsWith('/') ? path : `/${path}`}`,
    headers,
    ...(timeoutMs !== undefined && timeoutMs > 0 ? { timeoutMs } : {}),
  };
}

/** The Telemetry resources that apply to a workload, least specific first. */
function applicable(resources: readonly Resource[], root: string, namespace: string, labels: Readonly<Record<string, string>>): Resource[] {
  const byScope: Resource[][] = [[], [], []];
  for (const r of resources) {
    if (r.kind !== 'Telemetry' || !isObj(r.spec)) continue;
    const selector = isObj(r.spec['selector']) && isObj(r.spec['selector']['matchLabels']) ? (r.spec['selector']['matchLabels'] as Obj) : undefined;
    if (selector) {
      if (r.metadata.namespace === namespace && Object.entries(selector).every(([k, v]) => labels[k] === v)) byScope[2]!.push(r);
    } else if (r.metadata.namespace === namespace && namespace !== root) byScope[1]!.push(r);
    else if (r.metadata.namespace === root) byScope[0]!.push(r);
  }
  return byScope.flat();
}

export function telemetryPolicyFor(resources: readonly Resource[], workload: { namespace: string; labels: Readonly<Record<string, string>> }, env: NodeJS.ProcessEnv = process.env): TelemetryPolicy {
  const mesh = meshConfigOf(resources);
  const root = typeof mesh?.['rootNamespace'] === 'string' ? mesh['rootNamespace'] : DEFAULT_ROOT_NAMESPACE;
  const defaultConfig = isObj(mesh?.['defaultConfig']) ? mesh['defaultConfig'] : undefined;
  const tracing = isObj(defaultConfig?.['tracing']) ? defaultConfig['tracing'] : undefined;
  let samplingPercent = typeof tracing?.['sampling'] === 'number' ? tracing['sampling'] : DEFAULT_SAMPLING_PERCENT;
  const enableTracing = mesh?.['enableTracing'] !== false;
  const defaults = isObj(mesh?.['defaultProviders']) ? mesh['defaultProviders'] : undefined;
  let providerName = typeof list(defaults?.['tracing'])[0] === 'string' ? (list(defaults?.['tracing'])[0] as string) : undefined;
  let spansOff = !enableTracing;
  let traceCustomTags: TraceCustomTags | undefined;
  const accessLogEntries: unknown[] = [];
  const metricsEntries: unknown[] = [];

  for (const t of applicable(resources, root, workload.namespace, workload.labels)) {
    const spec = t.spec as Obj;
    for (const tr of list(spec['tracing'])) {
      if (!isObj(tr)) continue;
      const providers = list(tr['providers']).filter(isObj);
      if (providers.length > 0 && typeof providers[0]!['name'] === 'string') providerName = providers[0]!['name'];
      if (typeof tr['randomSamplingPercentage'] === 'number') samplingPercent = tr['randomSamplingPercentage'];
      if (typeof tr['disableSpanReporting'] === 'boolean') spansOff = tr['disableSpanReporting'];
      // Istio replaces the tags of a less specific Telemetry rather than merging them.
      traceCustomTags = customTagsFrom(tr['customTags'], env) ?? traceCustomTags;
    }
    accessLogEntries.push(...list(spec['accessLogging']));
    metricsEntries.push(...list(spec['metrics']));
  }
  let reportingIntervalMs: number | undefined;
  for (const m of metricsEntries) {
    const ms = isObj(m) && typeof m['reportingInterval'] === 'string' ? parseDuration(m['reportingInterval']) : undefined;
    // Validation refuses less than 1 ms; 0 would be a timer spinning.
    if (ms !== undefined && ms >= 1) reportingIntervalMs = ms;
  }
  const provider = providerName && !spansOff ? providerOf(mesh, providerName) : undefined;
  return {
    samplingPercent: Math.min(100, Math.max(0, samplingPercent)),
    ...(provider ? { traceProvider: provider } : {}),
    ...(provider && traceCustomTags ? { traceCustomTags } : {}),
    accessLog: accessLogPolicyFrom(accessLogEntries, mesh),
    metrics: metricsEntries.length === 0 && !mesh ? DEFAULT_METRICS_POLICY : metricsPolicyFrom(metricsEntries, mesh),
    ...(reportingIntervalMs !== undefined ? { reportingIntervalMs } : {}),
  };
}
