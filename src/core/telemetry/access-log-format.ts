// Envoy's access-log format strings (`%REQ(:METHOD)% %RESPONSE_CODE% …`), as an Istio access-log
// provider's `logFormat.text` and `logFormat.labels` write them, evaluated against the request record
// (or TCP connection line) the JSON access log, the metrics and the span are written from. A format is
// compiled once into a list of literal strings and value readers; a value that is not known prints
// `-`, as Envoy prints it. Operators meshgate cannot evaluate are listed by compileFormat, for
// validation to name, and print `-`.

import { hostname } from 'node:os';
import type { TLSSocket } from 'node:tls';
import type { RequestRecord, TcpLogLine } from './access-log.js';
import { connectionAttributes, requestAttributes } from './metric-attributes.js';
import { compileExpression } from './metric-expression.js';
import { extractContext } from './trace-context.js';

/** What a line is written about: a request, or a TCP connection that closed. */
export type Logged = RequestRecord | TcpLogLine;

/** Istio's default text format (its EnvoyTextLogFormat), for a provider whose logFormat.text is unset. */
export const ISTIO_TEXT_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% ' +
  '"%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" ' +
  '"%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n';

export interface CompiledFormat {
  format(e: Logged): string;
  /** The operators meshgate does not evaluate (they print `-`). */
  readonly unsupported: readonly string[];
}

type Reader = (e: Logged) => string | number | undefined;

const isRequest = (e: Logged): e is RequestRecord => 'method' in e;
const req = (f: (r: RequestRecord) => string | number | undefined): Reader => (e) => (isRequest(e) ? f(e) : undefined);
const withoutPort = (a: string | undefined): string | undefined => (a === undefined ? undefined : a.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1'));

function localAddress(e: Logged): string | undefined {
  const s = isRequest(e) ? e.request?.socket : undefined;
  if (!s?.localAddress) return undefined;
  return s.localAddress.includes(':') ? `[${s.localAddress}]:${s.localPort}` : `${s.localAddress}:${s.localPort}`;
}

function serverName(e: Logged): string | undefined {
  if (!isRequest(e)) return e.sni;
  const s = e.request?.socket as TLSSocket | undefined;
  return typeof s?.servername === 'string' && s.servername !== '' ? s.servername : undefined;
}

/** gRPC's status names as Envoy's %GRPC_STATUS% writes them (its CAMEL_STRING). */
const GRPC_NAMES = ['OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists', 'PermissionDenied', 'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange', 'Unimplemented', 'Internal', 'Unavailable', 'DataLoss', 'Unauthenticated'];

/** The operators without an argument. */
const PLAIN: Readonly<Record<string, Reader>> = {
  PROTOCOL: req((r) => r.protocol),
  RESPONSE_CODE: (e) => (isRequest(e) ? e.responseCode : 0),
  RESPONSE_FLAGS: (e) => e.flags || '-',
  RESPONSE_CODE_DETAILS: req((r) => r.details),
  CONNECTION_TERMINATION_DETAILS: (e) => (isRequest(e) ? undefined : e.terminationDetails),
  UPSTREAM_TRANSPORT_FAILURE_REASON: () => undefined,
  BYTES_RECEIVED: (e) => e.bytesReceived,
  BYTES_SENT: (e) => e.bytesSent,
  DURATION: (e) => e.durationMs,
  UPSTREAM_HOST: (e) => e.upstreamHost,
  UPSTREAM_CLUSTER: (e) => e.upstreamCluster || undefined,
  UPSTREAM_CLUSTER_RAW: (e) => e.upstreamCluster || undefined,
  // The local end of the upstream connection is the pool's, not the request's: not known here.
  UPSTREAM_LOCAL_ADDRESS: () => undefined,
  UPSTREAM_REMOTE_ADDRESS: (e) => e.upstreamHost,
  DOWNSTREAM_LOCAL_ADDRESS: localAddress,
  DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT: (e) => withoutPort(localAddress(e)),
  DOWNSTREAM_REMOTE_ADDRESS: (e) => e.downstreamRemoteAddress,
  DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT: (e) => withoutPort(e.downstreamRemoteAddress),
  DOWNSTREAM_DIRECT_REMOTE_ADDRESS: (e) => e.downstreamRemoteAddress,
  DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT: (e) => withoutPort(e.downstreamRemoteAddress),
  REQUESTED_SERVER_NAME: serverName,
  ROUTE_NAME: req((r) => r.routeName),
  GRPC_STATUS: req((r) => (r.grpcStatus === undefined ? undefined : (GRPC_NAMES[Number(r.grpcStatus)] ?? r.grpcStatus))),
  GRPC_STATUS_NUMBER: req((r) => r.grpcStatus),
  TRACE_ID: req((r) => (r.request ? extractContext(r.request.headers)?.traceId : undefined)),
  UNIQUE_ID: req((r) => r.requestId),
  HOSTNAME: () => hostname(),
  UPSTREAM_SERVICE_TIME: req((r) => r.upstreamServiceTime),
};

/** A request header as %REQ(…)% reads it: the pseudo-headers and the ones the record holds as Envoy logs them. */
function requestHeader(r: RequestRecord, name: string): string | undefined {
  switch (name) {
    case ':method': return r.method;
    case ':path': return r.path;
    case ':authority': case 'host': return r.authority;
    case ':scheme': return r.request && 'encrypted' in r.request.socket ? 'https' : 'http';
    case 'x-request-id': return r.requestId;
    case 'user-agent': return r.userAgent;
    case 'x-forwarded-for': return r.forwardedFor;
  }
  const v = r.request?.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

/** The readers of %REQ(A?B):N%, %RESP(…)%, %TRAILER(…)% and the other operators with an argument. */
function withArgument(op: string, arg: string): Reader | undefined {
  const names = arg.toLowerCase().split('?');
  switch (op) {
    case 'REQ':
    case 'REQ_WITHOUT_QUERY':
      return req((r) => {
        for (const n of names) {
          const v = requestHeader(r, n);
          if (v !== undefined) return op === 'REQ_WITHOUT_QUERY' ? v.split('?')[0] : v;
        }
        return undefined;
      });
    case 'RESP':
    case 'TRAILER':
      // The response's headers are not kept past the response; the record holds these two.
      if (names[0] === 'x-envoy-upstream-service-time' && op === 'RESP') return req((r) => r.upstreamServiceTime);
      if (names[0] === 'grpc-status') return req((r) => r.grpcStatus);
      return undefined;
    case 'ENVIRONMENT':
      return () => process.env[arg];
    case 'CEL': {
      const c = compileExpression(arg);
      if (!c.ok) return undefined;
      return (e) => c.expression.evaluate(isRequest(e) ? requestAttributes(e) : connectionAttributes({ ...e, cluster: e.upstreamCluster }));
    }
    case 'START_TIME':
      return (e) => strftime(e.startTime, arg);
  }
  return undefined;
}

/** %START_TIME(…)%'s strftime subset: %Y %m %d %H %M %S, %E<n>S (seconds with n decimals), %s, %z, %%. */
function strftime(t: Date, fmt: string): string {
  const two = (n: number): string => String(n).padStart(2, '0');
  return fmt.replace(/%(E(\d)S|[YmdHMSsz%])/g, (all, spec: string, digits?: string) => {
    if (digits !== undefined) {
      const frac = String(t.getUTCMilliseconds()).padStart(3, '0').padEnd(Number(digits), '0').slice(0, Number(digits));
      return `${two(t.getUTCSeconds())}${frac ? `.${frac}` : ''}`;
    }
    switch (spec) {
      case 'Y': return String(t.getUTCFullYear());
      case 'm': return two(t.getUTCMonth() + 1);
      case 'd': return two(t.getUTCDate());
      case 'H': return two(t.getUTCHours());
      case 'M': return two(t.getUTCMinutes());
      case 'S': return two(t.getUTCSeconds());
      case 's': return String(Math.floor(t.getTime() / 1000));
      case 'z': return '+0000';
      case '%': return '%';
    }
    return all;
  });
}

const OPERATOR = /%([A-Z_0-9]+)(?:\((.*?)\))?(?::(\d+))?%/y;

export function compileFormat(text: string): CompiledFormat {
  const parts: Array<string | Reader> = [];
  const unsupported: string[] = [];
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
      literal += c;
      i++;
      continue;
    }
    i = OPERATOR.lastIndex;
    const [whole, op, arg, max] = m as unknown as [string, string, string | undefined, string | undefined];
    let reader: Reader | undefined;
    if (op === 'START_TIME' && arg === undefined) reader = (e) => e.startTime.toISOString();
    else reader = arg === undefined ? PLAIN[op] : withArgument(op, arg);
    if (!reader) unsupported.push(whole);
    if (literal) parts.push(literal);
    literal = '';
    const limit = max !== undefined ? Number(max) : undefined;
    const read = reader;
    parts.push((e) => {
      const v = read?.(e);
      const s = v === undefined || v === '' ? '-' : String(v);
      return limit !== undefined ? s.slice(0, limit) : s;
    });
  }
  if (literal) parts.push(literal);
  return {
    unsupported,
    format(e) {
      let out = '';
      for (const p of parts) out += typeof p === 'string' ? p : p(e);
      return out;
    },
  };
}
