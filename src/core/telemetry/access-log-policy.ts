// Which requests each of a proxy's access logs writes, from the `accessLogging` entries of the
// Telemetry resources that apply to it (least specific first, so a later entry overrides): `disabled` and
// `filter.expression` for the mode an entry's `match.mode` names (CLIENT: what the proxy sends,
// reporter source; SERVER: what it receives for its workload, reporter destination;
// CLIENT_AND_SERVER, the default: both). A filter is the expression language of metric-expression.ts;
// a request, or a TCP connection's line, is logged when it evaluates to true. One that does not compile is reported by validation
// and left out here, so everything is logged, as without it.
//
// Each entry applies to the providers it names (`providers: [{name: otel}]`), or else to those the
// entry before it named, the first to the mesh config's `defaultProviders.accessLogging`; the
// providers in force are those of the last entry that names any, as Istio reads them. `envoy` is
// Istio's built-in file log on the proxy's stdout, written in the mesh config's accessLogEncoding
// and accessLogFormat (Istio's default text format when it sets neither); an `envoyFileAccessLog`
// provider writes to its `path` in its `logFormat`; an `envoyOtelAls` provider is an OpenTelemetry
// collector the lines go to over OTLP/gRPC (otel-access-log.ts). A Telemetry that names only
// collectors turns the proxy's own log off for the workloads it selects, as in Istio.
//
// Without any of that, the proxy's own log is the mesh config's: to accessLogFile, in its encoding
// and format. Istio writes no log when the mesh config sets none of the three; meshgate writes one
// anyway (its `--access-log`, stdout by default, which is also where `/dev/stdout` goes), in Istio's
// JSON keys, with the `meshgate_error_code` of a local reply added (access-log-formats.ts).

import type { RequestRecord, TcpLogLine } from './access-log.js';
import { connectionAttributes, requestAttributes } from './metric-attributes.js';
import { compileExpression, type CompiledExpression } from './metric-expression.js';
import { collectorUrl, extensionProvider } from './extension-providers.js';
import { compileFormat, type CompiledFormat } from './access-log-format.js';
import { fileFormat, meshLogFormat, STDOUT, textFormat } from './access-log-formats.js';

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

/** A file the proxy writes lines to: `/dev/stdout` (its `--access-log`) or a path, in one format. */
export interface FileLogProvider {
  readonly name: string;
  readonly path: string;
  readonly format: CompiledFormat;
}

export interface FileLogSink extends AccessLogSides {
  readonly provider: FileLogProvider;
}

/** The proxy's own logs (files, stdout), and the OpenTelemetry collectors lines also go to. */
export interface AccessLogPolicy {
  readonly files: readonly FileLogSink[];
  readonly otel: readonly OtelLogSink[];
}

const ON: AccessLogMode = Object.freeze({ enabled: true });
export const OTEL_LOG_NAME = 'otel_envoy_accesslog';
/** The name entries are about when neither they nor the mesh config name any provider: the mesh config's own log. */
const MESH_LOG = '';

/** The mesh config's log, with every request on: what a proxy writes with no Telemetry about logs. */
function meshLogSinks(mesh: Obj | undefined): readonly FileLogSink[] {
  return Object.freeze([Object.freeze({ provider: meshFileLog(mesh), client: ON, server: ON })]);
}

function meshFileLog(mesh: Obj | undefined): FileLogProvider {
  const file = typeof mesh?.['accessLogFile'] === 'string' && mesh['accessLogFile'] !== '' ? mesh['accessLogFile'] : STDOUT;
  return { name: MESH_LOG, path: file, format: meshLogFormat(mesh, false) };
}

export const DEFAULT_ACCESS_LOG_POLICY: AccessLogPolicy = Object.freeze({ files: meshLogSinks(undefined), otel: Object.freeze([]) });

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** What a provider name means here: a file log, a collector, or nothing meshgate writes to. */
function providerOf(mesh: Obj | undefined, name: string): FileLogProvider | OtelLogProvider | undefined {
  if (name === MESH_LOG) return meshFileLog(mesh);
  const p = extensionProvider(mesh, name);
  const file = p?.['envoyFileAccessLog'];
  if (isObj(file)) {
    const path = typeof file['path'] === 'string' && file['path'] !== '' ? file['path'] : STDOUT;
    // Istio's built-in provider, redefined without a format, still takes the mesh config's.
    const format = name === 'envoy' && file['logFormat'] === undefined ? meshLogFormat(mesh, true) : fileFormat(file['logFormat']);
    return { name, path, format };
  }
  if (name === 'envoy') return { name, path: STDOUT, format: meshLogFormat(mesh, true) };
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
  const defaults = defaultProviders.length > 0 ? defaultProviders : [MESH_LOG];
  if (entries.length === 0 && defaultProviders.length === 0) return mesh ? Object.freeze({ files: meshLogSinks(mesh), otel: Object.freeze([]) }) : DEFAULT_ACCESS_LOG_POLICY;
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
  const files: FileLogSink[] = [];
  const otel: OtelLogSink[] = [];
  for (const [name, sides] of modes) {
    const p = providerOf(mesh, name);
    if (!p || !(sides.client.enabled || sides.server.enabled)) continue;
    if ('format' in p) files.push(Object.freeze({ provider: p, ...sides }));
    else otel.push(Object.freeze({ provider: p, ...sides }));
  }
  return Object.freeze({ files: Object.freeze(files), otel: Object.freeze(otel) });
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

/**
 * Whether a log of the policy that writes somewhere (`writes`: a file path that goes anywhere) prints
 * an end of the upstream connection, which requests then note as they go out (upstream-socket.ts).
 */
export function readsUpstreamConnection(p: AccessLogPolicy, writes: (path: string) => boolean): boolean {
  for (const sink of p.files) if ((sink.client.enabled || sink.server.enabled) && sink.provider.format.readsUpstreamConnection && writes(sink.provider.path)) return true;
  for (const { provider } of p.otel) {
    if (textFormat(provider.text).readsUpstreamConnection) return true;
    for (const v of Object.values(provider.labels)) if (compileFormat(v).readsUpstreamConnection) return true;
  }
  return false;
}
