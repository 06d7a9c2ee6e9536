// Istio's telemetry configuration: the `telemetry.istio.io` `Telemetry` kind (tracing providers and
// sampling, access logging on/off, metric overrides), and the mesh config in the root namespace's
// `istio` ConfigMap (`data.mesh`, itself YAML: defaultConfig.tracing.sampling, extensionProviders —
// tracing ones here; access-log ones and accessLogFile/Encoding/Format in validate-access-log.ts;
// external authorizers in validate-ext-authz.ts —,
// defaultProviders, outboundTrafficPolicy.mode, pathNormalization.normalization, connectTimeout,
// trustDomain and trustDomainAliases in validate-trust-domain.ts). A problem inside `data.mesh`
// names its field's own line in the block (config/embedded-yaml.ts).

import { parseEmbeddedYaml } from './embedded-yaml.js';
import type { FieldPath } from '../model/resource.js';
import { checkPolicyScope } from './validate-authorization-policy.js';
import { asBool, asEnum, asList, asNumber, asObj, asString, atMostOne, checkDuration, checkPort, eachObj, isObj, isSet, knownFields, type Checker, type Obj } from './validate-common.js';
import { isStandardLabel, METRIC_SELECTORS, validLabelName, WORKLOAD_MODES } from '../telemetry/metrics-overrides.js';
import { compileExpression } from '../telemetry/metric-expression.js';
import { checkExtAuthzProvider } from './validate-ext-authz.js';
import { checkTrustDomains } from './validate-trust-domain.js';
import { PATH_NORMALIZATIONS } from '../proxy/path-normalize.js';
import { checkFileLogProvider, checkFilterExpression, checkMeshAccessLog, checkOtelLogProvider } from './validate-access-log.js';

const TELEMETRY_FIELDS = ['selector', 'targetRef', 'targetRefs', 'tracing', 'metrics', 'accessLogging'];

/** Every field of Istio's Telemetry, with the checks its schema makes (docs/reference/fields.md). */
export function validateTelemetry(c: Checker, spec: Obj): void {
  knownFields(c, spec, ['spec'], TELEMETRY_FIELDS);
  checkPolicyScope(c, spec);
  eachObj(c, spec['tracing'], ['spec', 'tracing'], (t, at) => {
    knownFields(c, t, at, ['match', 'providers', 'randomSamplingPercentage', 'disableSpanReporting', 'customTags', 'useRequestIdForTraceSampling', 'enableIstioTags', 'disableContextPropagation']);
    checkMatch(c, t['match'], [...at, 'match']);
    checkProviders(c, t['providers'], [...at, 'providers']);
    // A plain number (a DoubleValue), not Istio's Percent mapping.
    const pct = asNumber(c, t['randomSamplingPercentage'], [...at, 'randomSamplingPercentage']);
    if (pct !== undefined && (pct < 0 || pct > 100)) c.error([...at, 'randomSamplingPercentage'], `must be between 0 and 100, not ${pct}`);
    for (const f of ['disableSpanReporting', 'useRequestIdForTraceSampling', 'enableIstioTags', 'disableContextPropagation']) asBool(c, t[f], [...at, f]);
    const tags = asObj(c, t['customTags'], [...at, 'customTags']);
    for (const [name, tag] of Object.entries(tags ?? {})) {
      const tAt = [...at, 'customTags', name];
      const o = asObj(c, tag, tAt);
      if (!o) continue;
      knownFields(c, o, tAt, ['literal', 'environment', 'header', 'formatter']);
      atMostOne(c, o, tAt, ['literal', 'environment', 'header', 'formatter']);
      const need = (kind: string, field: string, extra: string[]): void => {
        const v = asObj(c, o[kind], [...tAt, kind]);
        if (!v) return;
        knownFields(c, v, [...tAt, kind], [field, ...extra]);
        if (!asString(c, v[field], [...tAt, kind, field])) c.error([...tAt, kind, field], `${field} is required`);
        for (const e of extra) asString(c, v[e], [...tAt, kind, e]);
      };
      need('literal', 'value', []);
      need('environment', 'name', ['defaultValue']);
      need('header', 'name', ['defaultValue']);
      need('formatter', 'value', []);
      if (isSet(o['formatter'])) c.warn([...tAt, 'formatter'], 'formatter tags are not evaluated by meshgate; this tag is left off spans');
    }
  });
  eachObj(c, spec['accessLogging'], ['spec', 'accessLogging'], (a, at) => {
    knownFields(c, a, at, ['match', 'providers', 'disabled', 'filter']);
    checkMatch(c, a['match'], [...at, 'match']);
    checkProviders(c, a['providers'], [...at, 'providers']);
    asBool(c, a['disabled'], [...at, 'disabled']);
    const filter = asObj(c, a['filter'], [...at, 'filter']);
    if (filter) {
      knownFields(c, filter, [...at, 'filter'], ['expression']);
      const expression = asString(c, filter['expression'], [...at, 'filter', 'expression']);
      if (expression !== undefined) checkFilterExpression(c, expression, [...at, 'filter', 'expression']);
    }
  });
  eachObj(c, spec['metrics'], ['spec', 'metrics'], (m, at) => {
    knownFields(c, m, at, ['providers', 'overrides', 'reportingInterval']);
    checkProviders(c, m['providers'], [...at, 'providers']);
    checkDuration(c, m['reportingInterval'], [...at, 'reportingInterval']);
    eachObj(c, m['overrides'], [...at, 'overrides'], (o, oat) => {
      knownFields(c, o, oat, ['match', 'disabled', 'tagOverrides']);
      const match = asObj(c, o['match'], [...oat, 'match']);
      if (match) {
        knownFields(c, match, [...oat, 'match'], ['metric', 'customMetric', 'mode']);
        atMostOne(c, match, [...oat, 'match'], ['metric', 'customMetric']);
        const metric = asString(c, match['metric'], [...oat, 'match', 'metric']);
        if (metric !== undefined && !(metric in METRIC_SELECTORS)) c.error([...oat, 'match', 'metric'], `unknown metric '${metric}'; expected one of ${Object.keys(METRIC_SELECTORS).join(', ')}`);
        const custom = asString(c, match['customMetric'], [...oat, 'match', 'customMetric']);
        if (custom === '') c.error([...oat, 'match', 'customMetric'], 'must not be empty');
        else if (custom !== undefined) c.warn([...oat, 'match', 'customMetric'], 'custom metrics are not supported (Istio declares them in its stats filter\'s definitions, which only an EnvoyFilter sets); this override is ignored');
        asEnum(c, match['mode'], [...oat, 'match', 'mode'], WORKLOAD_MODES);
      }
      asBool(c, o['disabled'], [...oat, 'disabled']);
      const tags = asObj(c, o['tagOverrides'], [...oat, 'tagOverrides']);
      for (const [tag, op] of Object.entries(tags ?? {})) checkTagOverride(c, tag, op, [...oat, 'tagOverrides', tag]);
    });
  });
}

function checkMatch(c: Checker, v: unknown, at: FieldPath): void {
  const m = asObj(c, v, at);
  if (!m) return;
  knownFields(c, m, at, ['mode']);
  asEnum(c, m['mode'], [...at, 'mode'], WORKLOAD_MODES);
}

function checkProviders(c: Checker, v: unknown, at: FieldPath): void {
  eachObj(c, v, at, (p, pat) => {
    knownFields(c, p, pat, ['name']);
    if (!asString(c, p['name'], [...pat, 'name'])) c.error([...pat, 'name'], 'name is required (an extensionProvider of the mesh config)');
  });
}

/** One `tagOverrides` entry: a label Prometheus accepts, REMOVE of one of Istio's, UPSERT of an expression meshgate evaluates. */
function checkTagOverride(c: Checker, tag: string, op: unknown, at: FieldPath): void {
  const opObj = asObj(c, op, at);
  if (!opObj) return;
  knownFields(c, opObj, at, ['operation', 'value']);
  if (!validLabelName(tag)) return c.error(at, `'${tag}' is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, not le or __…)`);
  // UPSERT is the default operation.
  const operation = opObj['operation'] ?? 'UPSERT';
  if (operation === 'REMOVE') {
    if (isSet(opObj['value'])) c.error([...at, 'value'], 'must not be set when operation is REMOVE');
    if (!isStandardLabel(tag)) c.warn(at, `'${tag}' is not one of Istio's labels; REMOVE changes nothing`);
    return;
  }
  if (operation !== 'UPSERT') return c.error([...at, 'operation'], `operation must be UPSERT or REMOVE, not ${String(operation)}`);
  const value = asString(c, opObj['value'], [...at, 'value']);
  if (value === undefined) return c.error([...at, 'value'], 'value must be set when operation is UPSERT (an expression such as request.host)');
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
  const parsed = parseEmbeddedYaml(text);
  if (!parsed.ok) return c.errorInText(at, parsed.line, parsed.column, `mesh is not YAML: ${parsed.message}`);
  const mesh = parsed.value;
  if (mesh === null || mesh === undefined) return;
  const m = asObj(c, mesh, at);
  if (!m) return;
  const dc = asObj(c, m['defaultConfig'], [...at, 'defaultConfig']);
  const tracing = dc ? asObj(c, dc['tracing'], [...at, 'defaultConfig', 'tracing']) : undefined;
  if (tracing?.['sampling'] !== undefined) {
    const s = asNumber(c, tracing['sampling'], [...at, 'defaultConfig', 'tracing', 'sampling']);
    if (s !== undefined && (s < 0 || s > 100)) c.error([...at, 'defaultConfig', 'tracing', 'sampling'], `sampling is a percentage, 0 to 100, not ${s}`);
  }
  const topology = dc ? asObj(c, dc['gatewayTopology'], [...at, 'defaultConfig', 'gatewayTopology']) : undefined;
  if (topology?.['numTrustedProxies'] !== undefined) {
    const n = asNumber(c, topology['numTrustedProxies'], [...at, 'defaultConfig', 'gatewayTopology', 'numTrustedProxies']);
    if (n !== undefined && (!Number.isInteger(n) || n < 0)) c.error([...at, 'defaultConfig', 'gatewayTopology', 'numTrustedProxies'], `numTrustedProxies is a number of proxies (0, 1, 2 …), not ${n}`);
  }
  // What injection reads of every pod's ProxyConfig (core/inject/proxy-config.ts).
  if (dc) {
    asBool(c, dc['holdApplicationUntilProxyStarts'], [...at, 'defaultConfig', 'holdApplicationUntilProxyStarts']);
    checkDuration(c, dc['terminationDrainDuration'], [...at, 'defaultConfig', 'terminationDrainDuration']);
  }
  checkTrustDomains(c, m, at);
  checkMeshAccessLog(c, m, at);
  asBool(c, m['enableTracing'], [...at, 'enableTracing']);
  asBool(c, m['enablePrometheusMerge'], [...at, 'enablePrometheusMerge']);
  checkDuration(c, m['connectTimeout'], [...at, 'connectTimeout']);
  const outbound = asObj(c, m['outboundTrafficPolicy'], [...at, 'outboundTrafficPolicy']);
  if (outbound) asEnum(c, outbound['mode'], [...at, 'outboundTrafficPolicy', 'mode'], ['REGISTRY_ONLY', 'ALLOW_ANY'] as const);
  const normalization = asObj(c, m['pathNormalization'], [...at, 'pathNormalization']);
  if (normalization) {
    knownFields(c, normalization, [...at, 'pathNormalization'], ['normalization']);
    asEnum(c, normalization['normalization'], [...at, 'pathNormalization', 'normalization'], PATH_NORMALIZATIONS);
  }
  const names = new Set<string>();
  eachObj(c, m['extensionProviders'], [...at, 'extensionProviders'], (p, pat) => {
    const name = asString(c, p['name'], [...pat, 'name']);
    if (name) names.add(name);
    checkExtAuthzProvider(c, p, pat);
    const file = asObj(c, p['envoyFileAccessLog'], [...pat, 'envoyFileAccessLog']);
    if (file) checkFileLogProvider(c, file, [...pat, 'envoyFileAccessLog']);
    const otel = asObj(c, p['opentelemetry'], [...pat, 'opentelemetry']);
    const zipkin = asObj(c, p['zipkin'], [...pat, 'zipkin']);
    const als = asObj(c, p['envoyOtelAls'], [...pat, 'envoyOtelAls']);
    const spec = otel ?? zipkin ?? als;
    if (!spec) return;
    const kind = otel ? 'opentelemetry' : zipkin ? 'zipkin' : 'envoyOtelAls';
    if (asString(c, spec['service'], [...pat, kind, 'service']) === undefined) c.error([...pat, kind, 'service'], 'service is required');
    if (spec['port'] === undefined) c.error([...pat, kind, 'port'], 'port is required');
    else checkPort(c, spec['port'], [...pat, kind, 'port']);
    // Without `http` an opentelemetry provider is OTLP over gRPC (the collector's 4317), as in Istio.
    for (const transport of ['http', 'grpc'] as const) {
      const t = otel ? asObj(c, otel[transport], [...pat, kind, transport]) : undefined;
      if (t) checkDuration(c, t['timeout'], [...pat, kind, transport, 'timeout']);
    }
    if (als) checkOtelLogProvider(c, als, [...pat, kind]);
  });
  const defaults = asObj(c, m['defaultProviders'], [...at, 'defaultProviders']);
  for (const [i, n] of (asList(c, defaults?.['tracing'], [...at, 'defaultProviders', 'tracing']) ?? []).entries()) {
    if (typeof n === 'string' && !names.has(n)) c.error([...at, 'defaultProviders', 'tracing', i], `no extensionProvider is named '${n}'`);
  }
  for (const [i, n] of (asList(c, defaults?.['accessLogging'], [...at, 'defaultProviders', 'accessLogging']) ?? []).entries()) {
    if (typeof n === 'string' && n !== 'envoy' && !names.has(n)) c.error([...at, 'defaultProviders', 'accessLogging', i], `no extensionProvider is named '${n}' (nor is it the built-in 'envoy')`);
  }
}
