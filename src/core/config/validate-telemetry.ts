// Istio's telemetry configuration: the `telemetry.istio.io` `Telemetry` kind (tracing providers and
// sampling, access logging on/off, metric overrides), and the mesh config in the root namespace's
// `istio` ConfigMap (`data.mesh`, itself YAML: defaultConfig.tracing.sampling, extensionProviders,
// defaultProviders). Problems inside `data.mesh` point at the `mesh` key's line, since the mesh
// config is one string to the ConfigMap.

import { parse as parseYaml } from 'yaml';
import { asBool, asList, asNumber, asObj, asString, checkPercent, checkPort, checkWorkloadSelector, eachObj, isObj, knownFields, type Checker, type Obj } from './validate-common.js';
import { isStandardLabel, METRIC_SELECTORS, validLabelName, WORKLOAD_MODES } from '../telemetry/metrics-overrides.js';
import { compileExpression } from '../telemetry/metric-expression.js';

const TELEMETRY_FIELDS = ['selector', 'targetRef', 'targetRefs', 'tracing', 'metrics', 'accessLogging'];

export function validateTelemetry(c: Checker, spec: Obj): void {
  knownFields(c, spec, ['spec'], TELEMETRY_FIELDS);
  if (spec['selector'] !== undefined) checkWorkloadSelector(c, spec['selector'], ['spec', 'selector'], 'matchLabels');
  eachObj(c, spec['tracing'], ['spec', 'tracing'], (t, at) => {
    knownFields(c, t, at, ['match', 'providers', 'randomSamplingPercentage', 'disableSpanReporting', 'customTags', 'useRequestIdForTraceSampling', 'enableIstioTags']);
    eachObj(c, t['providers'], [...at, 'providers'], (p, pat) => asString(c, p['name'], [...pat, 'name']));
    if (t['randomSamplingPercentage'] !== undefined) checkPercent(c, t['randomSamplingPercentage'], [...at, 'randomSamplingPercentage']);
    asBool(c, t['disableSpanReporting'], [...at, 'disableSpanReporting']);
  });
  eachObj(c, spec['accessLogging'], ['spec', 'accessLogging'], (a, at) => {
    knownFields(c, a, at, ['match', 'providers', 'disabled', 'filter']);
    asBool(c, a['disabled'], [...at, 'disabled']);
  });
  eachObj(c, spec['metrics'], ['spec', 'metrics'], (m, at) => {
    knownFields(c, m, at, ['providers', 'overrides', 'reportingInterval']);
    eachObj(c, m['overrides'], [...at, 'overrides'], (o, oat) => {
      knownFields(c, o, oat, ['match', 'disabled', 'tagOverrides']);
      const match = asObj(c, o['match'], [...oat, 'match']);
      const metric = match ? asString(c, match['metric'], [...oat, 'match', 'metric']) : undefined;
      if (metric !== undefined && !(metric in METRIC_SELECTORS)) c.error([...oat, 'match', 'metric'], `unknown metric '${metric}'; expected one of ${Object.keys(METRIC_SELECTORS).join(', ')}`);
      if (match?.['customMetric'] !== undefined) c.warn([...oat, 'match', 'customMetric'], 'custom metrics are not supported; this override is ignored');
      asBool(c, o['disabled'], [...oat, 'disabled']);
      const tags = asObj(c, o['tagOverrides'], [...oat, 'tagOverrides']);
      const mode = match ? asString(c, match['mode'], [...oat, 'match', 'mode']) : undefined;
      if (mode !== undefined && !(WORKLOAD_MODES as readonly string[]).includes(mode)) c.error([...oat, 'match', 'mode'], `mode must be one of ${WORKLOAD_MODES.join(', ')}, not ${mode}`);
      for (const [tag, op] of Object.entries(tags ?? {})) checkTagOverride(c, tag, op, [...oat, 'tagOverrides', tag]);
    });
  });
}

/** One `tagOverrides` entry: a label Prometheus accepts, REMOVE of one of Istio's, UPSERT of an expression meshgate evaluates. */
function checkTagOverride(c: Checker, tag: string, op: unknown, at: (string | number)[]): void {
  const opObj = asObj(c, op, at);
  if (!opObj) return;
  knownFields(c, opObj, at, ['operation', 'value']);
  if (!validLabelName(tag)) return c.error(at, `'${tag}' is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, not le or __…)`);
  const operation = opObj['operation'] ?? 'UPSERT';
  if (operation === 'REMOVE') {
    if (!isStandardLabel(tag)) c.warn(at, `'${tag}' is not one of Istio's labels; REMOVE changes nothing`);
    return;
  }
  if (operation !== 'UPSERT') return c.error([...at, 'operation'], `operation must be UPSERT or REMOVE, not ${String(operation)}`);
  const value = asString(c, opObj['value'], [...at, 'value']);
  if (value === undefined) return c.error([...at, 'value'], 'UPSERT needs a value (an expression such as request.host)');
  const compiled = compileExpression(value);
  if (!compiled.ok) c.warn([...at, 'value'], `expression not supported (${compiled.reason}); this override is ignored`);
}

/** A ConfigMap: only the mesh config (`istio` in istio-system) means anything to meshgate. */
export function validateConfigMap(c: Checker, raw: Obj): void {
  const r = c.resource;
  if (r.metadata.name !== 'istio' || r.metadata.namespace !== 'istio-system') return;
  const data = isObj(raw['data']) ? raw['data'] : undefined;
  const text = data?.['mesh'];
  if (text === undefined) return;
  const at = ['data', 'mesh'];
  if (typeof text !== 'string') return c.error(at, 'mesh must be a string holding the mesh config as YAML');
  let mesh: unknown;
  try {
    mesh = parseYaml(text);
  } catch (err) {
    return c.error(at, `mesh is not YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (mesh === null || mesh === undefined) return;
  const m = asObj(c, mesh, at);
  if (!m) return;
  const dc = asObj(c, m['defaultConfig'], [...at, 'defaultConfig']);
  const tracing = dc ? asObj(c, dc['tracing'], [...at, 'defaultConfig', 'tracing']) : undefined;
  if (tracing?.['sampling'] !== undefined) {
    const s = asNumber(c, tracing['sampling'], [...at, 'defaultConfig', 'tracing', 'sampling']);
    if (s !== undefined && (s < 0 || s > 100)) c.error([...at, 'defaultConfig', 'tracing', 'sampling'], `sampling is a percentage, 0 to 100, not ${s}`);
  }
  asBool(c, m['enableTracing'], [...at, 'enableTracing']);
  const names = new Set<string>();
  eachObj(c, m['extensionProviders'], [...at, 'extensionProviders'], (p, pat) => {
    const name = asString(c, p['name'], [...pat, 'name']);
    if (name) names.add(name);
    const otel = asObj(c, p['opentelemetry'], [...pat, 'opentelemetry']);
    const zipkin = asObj(c, p['zipkin'], [...pat, 'zipkin']);
    const spec = otel ?? zipkin;
    if (!spec) return;
    const kind = otel ? 'opentelemetry' : 'zipkin';
    if (asString(c, spec['service'], [...pat, kind, 'service']) === undefined) c.error([...pat, kind, 'service'], 'service is required');
    if (spec['port'] === undefined) c.error([...pat, kind, 'port'], 'port is required');
    else checkPort(c, spec['port'], [...pat, kind, 'port']);
    if (otel && otel['http'] === undefined) c.warn([...pat, kind], 'spans are exported over OTLP/HTTP only: set opentelemetry.http (path /v1/traces) and point port at the collector\'s HTTP port (4318)');
  });
  const defaults = asObj(c, m['defaultProviders'], [...at, 'defaultProviders']);
  for (const [i, n] of (asList(c, defaults?.['tracing'], [...at, 'defaultProviders', 'tracing']) ?? []).entries()) {
    if (typeof n === 'string' && !names.has(n)) c.error([...at, 'defaultProviders', 'tracing', i], `no extensionProvider is named '${n}'`);
  }
}
