// Which requests a proxy's access log writes, from the `accessLogging` entries of the Telemetry
// resources that apply to it (least specific first, so a later entry overrides): `disabled` and
// `filter.expression` for the mode an entry's `match.mode` names (CLIENT: what the proxy sends,
// reporter source; SERVER: what it receives for its workload, reporter destination;
// CLIENT_AND_SERVER, the default: both). A filter is the expression language of metric-expression.ts;
// a request, or a TCP connection's line, is logged when it evaluates to true. One that does not compile is reported by validation
// and left out here, so everything is logged, as without it.
//
// Each entry applies to the providers it names (`providers: [{name: otel}]`), or else to those the
// entry before it named, the first to the mesh config's `defaultProviders.accessLogging`; the
// providers in force are those of the last entry that names any, as Istio reads them. `envoy` (and
// any `envoyFileAccessLog` provider) is the proxy's own access log (`--access-log`), and with
// neither providers nor defaults anywhere every entry is about it; an `envoyOtelAls` provider is
// an OpenTelemetry collector the lines go to over OTLP/gRPC (otel-access-log.ts). A Telemetry that
// names only collectors turns the proxy's own log off for the workloads it selects, as in Istio.

import type { RequestRecord, TcpLogLine } from './access-log.js';
import { connectionAttributes, requestAttributes } from './metric-attributes.js';
import { compileExpression, type CompiledExpression } from './metric-expression.js';
import { collectorUrl, extensionProvider } from './extension-providers.js';

export interface AccessLogMode {
  readonly enabled: boolean;
  readonly filter?: CompiledExpression;
}

/** Which requests one log writes: what the proxy sends (client) and what its workload receives (server). */
export interface AccessLogSides {
  readonly client: AccessLogMode;
  readonly server: AccessLogMode;
}

/** An `envoyOtelAls` provider: where its records go, and how they are written. */
export interface OtelLogProvider {
  readonly name: string;
  /** The collector's `http://host:port` (OTLP over gRPC, plaintext). */
  readonly url: string;
  /** `logName`, default Istio's `otel_envoy_accesslog`: the `log_name` resource attribute. */
  readonly logName: string;
  /** `logFormat.text`: the record's body; undefined for Istio's default text format. */
  readonly text?: string;
  /** `logFormat.labels`: the record's attributes, each value a format string. */
  readonly labels: Readonly<Record<string, string>>;
}

export interface OtelLogSink extends AccessLogSides {
  readonly provider: OtelLogProvider;
}

/** The proxy's own log (client, server), and the OpenTelemetry collectors lines also go to. */
export interface AccessLogPolicy extends AccessLogSides {
  readonly otel: readonly OtelLogSink[];
}

const ON: AccessLogMode = Object.freeze({ enabled: true });
const OFF: AccessLogMode = Object.freeze({ enabled: false });
export const DEFAULT_ACCESS_LOG_POLICY: AccessLogPolicy = Object.freeze({ client: ON, server: ON, otel: Object.freeze([]) });
export const OTEL_LOG_NAME = 'otel_envoy_accesslog';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** What a provider name means here: the proxy's own log, a collector, or nothing meshgate writes to. */
function providerOf(mesh: Obj | undefined, name: string): 'file' | OtelLogProvider | undefined {
  if (name === 'envoy') return 'file';
  const p = extensionProvider(mesh, name);
  if (isObj(p?.['envoyFileAccessLog'])) return 'file';
  const als = p?.['envoyOtelAls'];
  const url = isObj(als) ? collectorUrl(als) : undefined;
  if (!isObj(als) || !url) return undefined;
  const format = isObj(als['logFormat']) ? als['logFormat'] : undefined;
  const labels: Record<string, string> = {};
  if (isObj(format?.['labels'])) for (const [k, v] of Object.entries(format['labels'])) if (typeof v === 'string') labels[k] = v;
  const text = typeof format?.['text'] === 'string' && format['text'] !== '' ? format['text'] : undefined;
  return { name, url, logName: typeof als['logName'] === 'string' && als['logName'] !== '' ? als['logName'] : OTEL_LOG_NAME, ...(text !== undefined ? { text } : {}), labels };
}

const namesOf = (al: Obj): string[] => (Array.isArray(al['providers']) ? al['providers'] : []).flatMap((p: unknown) => (isObj(p) && typeof p['name'] === 'string' ? [p['name']] : []));

/** The policy the `accessLogging` entries give, in the order they apply, with the mesh config's providers. */
export function accessLogPolicyFrom(entries: readonly unknown[], mesh?: Obj): AccessLogPolicy {
  const defaultProviders = isObj(mesh?.['defaultProviders']) && Array.isArray(mesh['defaultProviders']['accessLogging']) ? mesh['defaultProviders']['accessLogging'].filter((n): n is string => typeof n === 'string') : [];
  const defaults = defaultProviders.length > 0 ? defaultProviders : ['envoy'];
  if (entries.length === 0 && defaultProviders.length === 0) return DEFAULT_ACCESS_LOG_POLICY;
  const logs = entries.filter(isObj);
  let inScope = defaults;
  for (const al of logs) if (namesOf(al).length > 0) inScope = namesOf(al);
  const modes = new Map<string, { client: AccessLogMode; server: AccessLogMode }>(inScope.map((n) => [n, { client: ON, server: ON }]));
  let running = defaults;
  for (const al of logs) {
    const names = namesOf(al).length > 0 ? namesOf(al) : running;
    running = names;
    const mode = isObj(al['match']) && typeof al['match']['mode'] === 'string' ? al['match']['mode'] : 'CLIENT_AND_SERVER';
    const expression = isObj(al['filter']) && typeof al['filter']['expression'] === 'string' ? al['filter']['expression'] : undefined;
    const compiled = expression !== undefined ? compileExpression(expression) : undefined;
    for (const name of names) {
      const sides = modes.get(name);
      if (!sides) continue;
      for (const side of ['client', 'server'] as const) {
        if (mode !== 'CLIENT_AND_SERVER' && mode !== side.toUpperCase()) continue;
        const was = sides[side];
        const enabled = typeof al['disabled'] === 'boolean' ? !al['disabled'] : was.enabled;
        const filter = compiled ? (compiled.ok ? compiled.expression : undefined) : was.filter;
        sides[side] = Object.freeze({ enabled, ...(filter ? { filter } : {}) });
      }
    }
  }
  let file: AccessLogSides | undefined;
  const otel: OtelLogSink[] = [];
  for (const [name, sides] of modes) {
    const p = providerOf(mesh, name);
    if (p === 'file') file ??= sides;
    else if (p && (sides.client.enabled || sides.server.enabled)) otel.push(Object.freeze({ provider: p, ...sides }));
  }
  return Object.freeze({ client: file?.client ?? OFF, server: file?.server ?? OFF, otel: Object.freeze(otel) });
}

/** Whether a request's line is written: its reporter's mode is on and its filter, if any, says true. */
export function logsRequest(p: AccessLogSides, r: RequestRecord): boolean {
  const mode = r.reporter === 'destination' ? p.server : p.client;
  if (!mode.enabled) return false;
  return mode.filter === undefined || mode.filter.evaluate(requestAttributes(r)) === 'true';
}

/**
 * Whether a TCP connection's line is written: inbound clusters are the SERVER side; its filter reads
 * the connection's attributes (metric-attributes.ts), so `response.flags != "-"` keeps failed
 * connections, and an expression on request or status attributes, which a TCP connection has none of, is false.
 */
export function logsConnection(p: AccessLogSides, c: TcpLogLine): boolean {
  const mode = c.upstreamCluster.startsWith('inbound|') ? p.server : p.client;
  if (!mode.enabled) return false;
  return mode.filter === undefined || mode.filter.evaluate(connectionAttributes({ ...c, cluster: c.upstreamCluster })) === 'true';
}
