// Which requests a proxy's access log writes, from the `accessLogging` entries of the Telemetry
// resources that apply to it (least specific first, so a later entry overrides): `disabled` and
// `filter.expression` for the mode an entry's `match.mode` names (CLIENT: what the proxy sends,
// reporter source; SERVER: what it receives for its workload, reporter destination;
// CLIENT_AND_SERVER, the default: both). A filter is the expression language of metric-expression.ts;
// a request, or a TCP connection's line, is logged when it evaluates to true. One that does not compile is reported by validation
// and left out here, so everything is logged, as without it.

import type { RequestRecord, TcpLogLine } from './access-log.js';
import { connectionAttributes, requestAttributes } from './metric-attributes.js';
import { compileExpression, type CompiledExpression } from './metric-expression.js';

export interface AccessLogMode {
  readonly enabled: boolean;
  readonly filter?: CompiledExpression;
}

export interface AccessLogPolicy {
  readonly client: AccessLogMode;
  readonly server: AccessLogMode;
}

const ON: AccessLogMode = Object.freeze({ enabled: true });
export const DEFAULT_ACCESS_LOG_POLICY: AccessLogPolicy = Object.freeze({ client: ON, server: ON });

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The policy the `accessLogging` entries give, in the order they apply. */
export function accessLogPolicyFrom(entries: readonly unknown[]): AccessLogPolicy {
  if (entries.length === 0) return DEFAULT_ACCESS_LOG_POLICY;
  const modes: { client: AccessLogMode; server: AccessLogMode } = { client: ON, server: ON };
  for (const al of entries) {
    if (!isObj(al)) continue;
    const mode = isObj(al['match']) && typeof al['match']['mode'] === 'string' ? al['match']['mode'] : 'CLIENT_AND_SERVER';
    const expression = isObj(al['filter']) && typeof al['filter']['expression'] === 'string' ? al['filter']['expression'] : undefined;
    const compiled = expression !== undefined ? compileExpression(expression) : undefined;
    for (const side of ['client', 'server'] as const) {
      if (mode !== 'CLIENT_AND_SERVER' && mode !== side.toUpperCase()) continue;
      const was = modes[side];
      const enabled = typeof al['disabled'] === 'boolean' ? !al['disabled'] : was.enabled;
      const filter = compiled ? (compiled.ok ? compiled.expression : undefined) : was.filter;
      modes[side] = Object.freeze({ enabled, ...(filter ? { filter } : {}) });
    }
  }
  return Object.freeze(modes);
}

/** Whether a request's line is written: its reporter's mode is on and its filter, if any, says true. */
export function logsRequest(p: AccessLogPolicy, r: RequestRecord): boolean {
  const mode = r.reporter === 'destination' ? p.server : p.client;
  if (!mode.enabled) return false;
  return mode.filter === undefined || mode.filter.evaluate(requestAttributes(r)) === 'true';
}

/**
 * Whether a TCP connection's line is written: inbound clusters are the SERVER side; its filter reads
 * the connection's attributes (metric-attributes.ts), so `response.flags != "-"` keeps failed
 * connections, and an expression on request or status attributes, which a TCP connection has none of, is false.
 */
export function logsConnection(p: AccessLogPolicy, c: TcpLogLine): boolean {
  const mode = c.upstreamCluster.startsWith('inbound|') ? p.server : p.client;
  if (!mode.enabled) return false;
  return mode.filter === undefined || mode.filter.evaluate(connectionAttributes({ ...c, cluster: c.upstreamCluster })) === 'true';
}
