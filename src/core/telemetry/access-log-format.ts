// Envoy's access-log formats, as Istio configures them for every access-log provider: a text format
// string (`%REQ(:METHOD)% %RESPONSE_CODE% …`, the mesh config's accessLogFormat, a provider's
// `logFormat.text`) or a JSON one (a map of keys to format strings: accessLogFormat under
// accessLogEncoding JSON, `logFormat.labels`). A format is compiled once, when the configuration is
// read, into a list of literal strings and operator readers (access-log-operators.ts); a line is
// then one pass over that list. In text, a value that is not known prints `-`; in JSON a key whose
// value is a single operator keeps its type (numbers stay numbers) and is null when not known, as
// Envoy writes its JSON format, and a key mixing text and operators is a string. `:N` truncates a
// value to N characters.

import { operatorProblem, operatorReader, UPSTREAM_CONNECTION_OPERATORS, type Logged, type Reader } from './access-log-operators.js';

export type { Logged } from './access-log-operators.js';

/** Istio's default text format (its EnvoyTextLogFormat), when no format is given. */
export const ISTIO_TEXT_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% ' +
  '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" ' +
  '"%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n';

/** Istio's default JSON keys (its EnvoyJSONLogFormatIstio), for accessLogEncoding JSON with no format. */
export const ISTIO_JSON_FORMAT: Readonly<Record<string, string>> = Object.freeze({
  start_time: '%START_TIME%',
  route_name: '%ROUTE_NAME%',
  method: '%REQ(:METHOD)%',
  path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
  protocol: '%PROTOCOL%',
  response_code: '%RESPONSE_CODE%',
  response_flags: '%RESPONSE_FLAGS%',
  response_code_details: '%RESPONSE_CODE_DETAILS%',
  connection_termination_details: '%CONNECTION_TERMINATION_DETAILS%',
  bytes_received: '%BYTES_RECEIVED%',
  bytes_sent: '%BYTES_SENT%',
  duration: '%DURATION%',
  upstream_service_time: '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%',
  x_forwarded_for: '%REQ(X-FORWARDED-FOR)%',
  user_agent: '%REQ(USER-AGENT)%',
  request_id: '%REQ(X-REQUEST-ID)%',
  authority: '%REQ(:AUTHORITY)%',
  upstream_host: '%UPSTREAM_HOST%',
  upstream_cluster: '%UPSTREAM_CLUSTER_RAW%',
  upstream_local_address: '%UPSTREAM_LOCAL_ADDRESS%',
  downstream_local_address: '%DOWNSTREAM_LOCAL_ADDRESS%',
  downstream_remote_address: '%DOWNSTREAM_REMOTE_ADDRESS%',
  requested_server_name: '%REQUESTED_SERVER_NAME%',
  upstream_transport_failure_reason: '%UPSTREAM_TRANSPORT_FAILURE_REASON%',
});

export interface CompiledFormat {
  format(e: Logged): string;
  /** The operators Envoy has that meshgate does not evaluate (they print `-`). */
  readonly unsupported: readonly string[];
  /** What Envoy would refuse in it (a stray `%`, an operator it does not have, a missing argument). */
  readonly errors: readonly string[];
  /** It prints an end of the upstream connection (%UPSTREAM_LOCAL_ADDRESS%, …): requests must note their socket. */
  readonly readsUpstreamConnection: boolean;
}

/** One operator of a format: its reader (none when not evaluated) and `:N`. */
interface Operator {
  readonly read: Reader | undefined;
  readonly limit: number | undefined;
}

interface Parsed {
  readonly parts: ReadonlyArray<string | Operator>;
  readonly unsupported: string[];
  readonly errors: string[];
  readonly readsUpstreamConnection: boolean;
}

const OPERATOR = /%([A-Z_0-9]+)(?:\((.*?)\))?(?::(\d+))?%/y;

function parse(text: string): Parsed {
  const parts: Array<string | Operator> = [];
  const unsupported: string[] = [];
  const errors: string[] = [];
  let readsUpstreamConnection = false;
  let literal = '';
  for (let i = 0; i < text.length;) {
    const c = text[i]!;
    if (c !== '%') {
      literal += c;
      i++;
      continue;
    }
    if (text[i + 1] === '%') {
      literal += '%';
      i += 2;
      continue;
    }
    OPERATOR.lastIndex = i;
    const m = OPERATOR.exec(text);
    if (!m) {
      errors.push(`no command operator at position ${i + 1} ('${text.slice(i, i + 20)}'); a literal % is written %%`);
      literal += c;
      i++;
      continue;
    }
    i = OPERATOR.lastIndex;
    const [whole, op, arg, max] = m as unknown as [string, string, string | undefined, string | undefined];
    if (UPSTREAM_CONNECTION_OPERATORS.has(op)) readsUpstreamConnection = true;
    const problem = operatorProblem(op, arg);
    if (problem) errors.push(problem);
    const read = problem ? undefined : operatorReader(op, arg);
    if (!read && !problem) unsupported.push(whole);
    if (literal) parts.push(literal);
    literal = '';
    parts.push({ read, limit: max !== undefined ? Number(max) : undefined });
  }
  if (literal) parts.push(literal);
  return { parts, unsupported, errors, readsUpstreamConnection };
}

/** A value as text: `-` when not known, cut to `:N`. */
function text(o: Operator, e: Logged): string {
  const v = o.read?.(e);
  const s = v === undefined || v === '' ? '-' : typeof v === 'string' ? v : String(v);
  return o.limit !== undefined ? s.slice(0, o.limit) : s;
}

function textOf(parts: Parsed['parts']): (e: Logged) => string {
  if (parts.length === 1 && typeof parts[0] !== 'string') {
    const only = parts[0]!;
    return (e) => text(only, e);
  }
  return (e) => {
    let out = '';
    for (const p of parts) out += typeof p === 'string' ? p : text(p, e);
    return out;
  };
}

export function compileFormat(format: string): CompiledFormat {
  const p = parse(format);
  return { format: textOf(p.parts), unsupported: p.unsupported, errors: p.errors, readsUpstreamConnection: p.readsUpstreamConnection };
}

const NEEDS_ESCAPE = /["\\\u0000-\u001f\u2028\u2029\ud800-\udfff]/;

/** A JSON string; most values (paths, ids, addresses) need no escaping, and skip JSON.stringify's. */
function quote(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}

/** What a JSON format's values say of it, gathered as they are compiled. */
interface Found {
  readonly unsupported: string[];
  readonly errors: string[];
  readsUpstreamConnection: boolean;
}

/** A JSON value: a single operator keeps its type (null when not known); anything else is a string. */
function jsonValue(spec: unknown, found: Found, path: string): (e: Logged) => string {
  if (typeof spec === 'string') {
    const p = parse(spec);
    found.unsupported.push(...p.unsupported);
    if (p.readsUpstreamConnection) found.readsUpstreamConnection = true;
    found.errors.push(...p.errors.map((m) => `${path}: ${m}`));
    if (p.parts.length === 1 && typeof p.parts[0] !== 'string') {
      const { read, limit } = p.parts[0]!;
      if (!read) return () => 'null';
      return (e) => {
        const v = read(e);
        if (v === undefined) return 'null';
        if (typeof v === 'number') return String(v);
        return quote(limit !== undefined ? v.slice(0, limit) : v);
      };
    }
    const line = textOf(p.parts);
    return (e) => quote(line(e));
  }
  if (spec !== null && typeof spec === 'object' && !Array.isArray(spec)) return jsonObject(spec as Record<string, unknown>, found, `${path}.`);
  const fixed = JSON.stringify(spec ?? null);
  return () => fixed;
}

/** Keys in sorted order, as Istio's structured formats come out of its protobuf Struct. */
function jsonObject(spec: Readonly<Record<string, unknown>>, found: Found, prefix: string): (e: Logged) => string {
  const keys = Object.keys(spec).sort();
  const entries = keys.map((k, i) => [`${i === 0 ? '{' : ','}${JSON.stringify(k)}:`, jsonValue(spec[k], found, `${prefix}${k}`)] as const);
  if (entries.length === 0) return () => '{}';
  return (e) => {
    let out = '';
    for (const [key, value] of entries) out += key + value(e);
    return `${out}}`;
  };
}

/**
 * A JSON format: one object per line. `extra` adds a key after the others when it has a value
 * (meshgate's own default format adds the local reply's error code so).
 */
export function compileJsonFormat(spec: Readonly<Record<string, unknown>>, extra?: { readonly key: string; readonly read: Reader }): CompiledFormat {
  const found: Found = { unsupported: [], errors: [], readsUpstreamConnection: false };
  const object = jsonObject(spec, found, '');
  if (!extra) return { format: (e) => `${object(e)}\n`, ...found };
  const key = `,${JSON.stringify(extra.key)}:`;
  return {
    format(e) {
      const line = object(e);
      const v = extra.read(e);
      return v === undefined ? `${line}\n` : `${line.slice(0, -1)}${key}${JSON.stringify(v)}}\n`;
    },
    ...found,
  };
}
