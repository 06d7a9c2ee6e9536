// Envoy's access-log command operators (`%REQ(:METHOD)%`, `%RESPONSE_CODE%`, …) as readers of the
// request record (or TCP connection line) the access log, the metrics and the span are written from.
// A reader returns undefined for a value that is not known (Envoy's `-`, or null in JSON); the
// operators Envoy renders as numbers in JSON (codes, bytes, durations, ports) return numbers.
// Which operators Envoy has at all is listed too: a format naming one it does not know is refused
// (as Envoy refuses it), one Envoy has but meshgate does not evaluate prints `-`.

import { hostname } from 'node:os';
import type { TLSSocket } from 'node:tls';
import type { RequestRecord, TcpLogLine } from './access-log.js';
import { responseHeader, responseTrailer } from './body-meter.js';
import { connectionAttributes, requestAttributes } from './metric-attributes.js';
import { compileExpression } from './metric-expression.js';
import { compileTimeFormat } from './start-time-format.js';
import { extractContext } from './trace-context.js';
import { addressWithPort } from '../proxy/upstream-socket.js';

/** What a line is written about: a request, or a TCP connection that closed. */
export type Logged = RequestRecord | TcpLogLine;
export type Reader = (e: Logged) => string | number | undefined;

/** Envoy's operators (its access-log usage reference), evaluated here or not. */
export const ENVOY_OPERATORS: ReadonlySet<string> = new Set(
  (
    'START_TIME START_TIME_LOCAL EMIT_TIME EMIT_TIME_LOCAL REQUEST_HEADERS_BYTES BYTES_RECEIVED BYTES_SENT PROTOCOL UPSTREAM_PROTOCOL ' +
    'RESPONSE_CODE RESPONSE_CODE_DETAILS CONNECTION_TERMINATION_DETAILS RESPONSE_HEADERS_BYTES RESPONSE_TRAILERS_BYTES ' +
    'UPSTREAM_REQUEST_ATTEMPT_COUNT UPSTREAM_WIRE_BYTES_SENT UPSTREAM_WIRE_BYTES_RECEIVED UPSTREAM_HEADER_BYTES_SENT UPSTREAM_HEADER_BYTES_RECEIVED ' +
    'DOWNSTREAM_WIRE_BYTES_SENT DOWNSTREAM_WIRE_BYTES_RECEIVED DOWNSTREAM_HEADER_BYTES_SENT DOWNSTREAM_HEADER_BYTES_RECEIVED ' +
    'DURATION REQUEST_DURATION REQUEST_TX_DURATION RESPONSE_DURATION RESPONSE_TX_DURATION DOWNSTREAM_HANDSHAKE_DURATION ROUNDTRIP_DURATION ' +
    'UPSTREAM_CONNECTION_POOL_READY_DURATION RESPONSE_FLAGS RESPONSE_FLAGS_LONG ROUTE_NAME VIRTUAL_CLUSTER_NAME ' +
    'UPSTREAM_HOST UPSTREAM_HOST_NAME UPSTREAM_HOST_NAME_WITHOUT_PORT UPSTREAM_CLUSTER UPSTREAM_CLUSTER_RAW ' +
    'UPSTREAM_LOCAL_ADDRESS UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT UPSTREAM_LOCAL_PORT UPSTREAM_REMOTE_ADDRESS UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT ' +
    'UPSTREAM_REMOTE_PORT UPSTREAM_TRANSPORT_FAILURE_REASON UPSTREAM_CONNECTION_ID DOWNSTREAM_TRANSPORT_FAILURE_REASON ' +
    'DOWNSTREAM_REMOTE_ADDRESS DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT DOWNSTREAM_REMOTE_PORT DOWNSTREAM_DIRECT_REMOTE_ADDRESS ' +
    'DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT DOWNSTREAM_DIRECT_REMOTE_PORT DOWNSTREAM_LOCAL_ADDRESS DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT ' +
    'DOWNSTREAM_LOCAL_PORT DOWNSTREAM_DIRECT_LOCAL_ADDRESS DOWNSTREAM_DIRECT_LOCAL_ADDRESS_WITHOUT_PORT DOWNSTREAM_DIRECT_LOCAL_PORT ' +
    'CONNECTION_ID STREAM_ID GRPC_STATUS GRPC_STATUS_NUMBER REQ RESP TRAILER REQ_WITHOUT_QUERY DYNAMIC_METADATA CLUSTER_METADATA ' +
    'UPSTREAM_METADATA METADATA FILTER_STATE UPSTREAM_FILTER_STATE REQUESTED_SERVER_NAME ' +
    'DOWNSTREAM_LOCAL_URI_SAN DOWNSTREAM_PEER_URI_SAN DOWNSTREAM_LOCAL_DNS_SAN DOWNSTREAM_PEER_DNS_SAN DOWNSTREAM_LOCAL_IP_SAN DOWNSTREAM_PEER_IP_SAN ' +
    'DOWNSTREAM_LOCAL_SUBJECT DOWNSTREAM_PEER_SUBJECT DOWNSTREAM_PEER_ISSUER DOWNSTREAM_TLS_SESSION_ID DOWNSTREAM_TLS_CIPHER DOWNSTREAM_TLS_VERSION ' +
    'DOWNSTREAM_PEER_FINGERPRINT_256 DOWNSTREAM_PEER_FINGERPRINT_1 DOWNSTREAM_PEER_SERIAL DOWNSTREAM_PEER_CERT DOWNSTREAM_PEER_CERT_V_START ' +
    'DOWNSTREAM_PEER_CERT_V_END UPSTREAM_PEER_SUBJECT UPSTREAM_PEER_ISSUER UPSTREAM_TLS_SESSION_ID UPSTREAM_TLS_CIPHER UPSTREAM_TLS_VERSION ' +
    'UPSTREAM_PEER_CERT UPSTREAM_PEER_CERT_V_START UPSTREAM_PEER_CERT_V_END UPSTREAM_PEER_URI_SAN UPSTREAM_LOCAL_URI_SAN UPSTREAM_PEER_DNS_SAN ' +
    'UPSTREAM_LOCAL_DNS_SAN UPSTREAM_PEER_IP_SAN UPSTREAM_LOCAL_IP_SAN HOSTNAME LOCAL_REPLY_BODY FILTER_CHAIN_NAME ACCESS_LOG_TYPE ' +
    'UNIQUE_ID TRACE_ID ENVIRONMENT CEL UPSTREAM_SERVICE_TIME'
  ).split(' '),
);

/** The operators that take a `(…)` argument, and those that must. */
const TAKES_ARGUMENT = new Set(['START_TIME', 'START_TIME_LOCAL', 'EMIT_TIME', 'EMIT_TIME_LOCAL', 'GRPC_STATUS', 'REQ', 'RESP', 'TRAILER', 'REQ_WITHOUT_QUERY', 'DYNAMIC_METADATA', 'CLUSTER_METADATA', 'UPSTREAM_METADATA', 'METADATA', 'FILTER_STATE', 'UPSTREAM_FILTER_STATE', 'ENVIRONMENT', 'CEL', 'DOWNSTREAM_PEER_CERT_V_START', 'DOWNSTREAM_PEER_CERT_V_END', 'UPSTREAM_PEER_CERT_V_START', 'UPSTREAM_PEER_CERT_V_END']);
const NEEDS_ARGUMENT = new Set(['REQ', 'RESP', 'TRAILER', 'REQ_WITHOUT_QUERY', 'DYNAMIC_METADATA', 'CLUSTER_METADATA', 'UPSTREAM_METADATA', 'METADATA', 'FILTER_STATE', 'UPSTREAM_FILTER_STATE', 'ENVIRONMENT', 'CEL']);

/** Why Envoy would refuse `%op(arg)%`, or undefined when it takes it. */
export function operatorProblem(op: string, arg: string | undefined): string | undefined {
  if (!ENVOY_OPERATORS.has(op)) return `%${op}% is not an Envoy command operator`;
  if (arg === undefined && NEEDS_ARGUMENT.has(op)) return `%${op}% needs an argument: %${op}(…)%`;
  if (arg !== undefined && !TAKES_ARGUMENT.has(op)) return `%${op}% takes no argument`;
  if ((op === 'REQ' || op === 'RESP' || op === 'TRAILER' || op === 'REQ_WITHOUT_QUERY') && arg !== undefined) {
    const names = arg.split('?');
    if (names.length > 2 || names.some((n) => n === '')) return `%${op}(${arg})%: expected a header name, or two as X?Y`;
  }
  if (op === 'GRPC_STATUS' && arg !== undefined && !['CAMEL_STRING', 'SNAKE_STRING', 'NUMBER'].includes(arg)) return `%GRPC_STATUS(${arg})%: expected CAMEL_STRING, SNAKE_STRING or NUMBER`;
  if (op === 'CEL' && arg !== undefined) {
    const c = compileExpression(arg);
    if (!c.ok && c.syntax) return `%CEL(${arg})%: ${c.reason}`;
  }
  return undefined;
}

const isRequest = (e: Logged): e is RequestRecord => 'method' in e;
const req = (f: (r: RequestRecord) => string | number | undefined): Reader => (e) => (isRequest(e) ? f(e) : undefined);
const orNone = (s: string | undefined): string | undefined => (s === '' ? undefined : s);
const withoutPort = (a: string | undefined): string | undefined => (a === undefined ? undefined : a.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1'));
const portOf = (a: string | undefined): number | undefined => {
  const m = a ? /:(\d+)$/.exec(a) : null;
  return m ? Number(m[1]) : undefined;
};

function localAddress(e: Logged): string | undefined {
  if (!isRequest(e)) return e.downstreamLocalAddress;
  const s = e.request?.socket;
  return s ? addressWithPort(s.localAddress, s.localPort) : undefined;
}

/**
 * The operators that read the upstream connection's own ends: a request learns them only while a
 * format in force has one of these (upstream-socket.ts), the connection's peer otherwise being the
 * endpoint it was sent to.
 */
export const UPSTREAM_CONNECTION_OPERATORS: ReadonlySet<string> = new Set([
  'UPSTREAM_LOCAL_ADDRESS', 'UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT', 'UPSTREAM_LOCAL_PORT',
  'UPSTREAM_REMOTE_ADDRESS', 'UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT', 'UPSTREAM_REMOTE_PORT',
]);

const upstreamLocal = (e: Logged): string | undefined => e.upstreamConnection?.local;
const upstreamRemote = (e: Logged): string | undefined => e.upstreamConnection?.remote ?? e.upstreamHost;

function serverName(e: Logged): string | undefined {
  if (!isRequest(e)) return orNone(e.sni);
  const s = e.request?.socket as TLSSocket | undefined;
  return typeof s?.servername === 'string' && s.servername !== '' ? s.servername : undefined;
}

/** gRPC's status names as Envoy's %GRPC_STATUS% writes them (its CAMEL_STRING). */
const GRPC_NAMES = ['OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists', 'PermissionDenied', 'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange', 'Unimplemented', 'Internal', 'Unavailable', 'DataLoss', 'Unauthenticated'];
const snake = (camel: string): string => camel.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase();

function grpcStatus(form: string): Reader {
  return req((r) => {
    if (r.grpcStatus === undefined) return undefined;
    const n = Number(r.grpcStatus);
    if (form === 'NUMBER') return n;
    const name = GRPC_NAMES[n];
    return name === undefined ? r.grpcStatus : form === 'SNAKE_STRING' ? (name === 'Canceled' ? 'CANCELLED' : snake(name)) : name;
  });
}

/** The operators without an argument. */
const PLAIN: Readonly<Record<string, Reader>> = {
  START_TIME: (e) => e.startTime.toISOString(),
  PROTOCOL: req((r) => r.protocol),
  RESPONSE_CODE: (e) => (isRequest(e) ? e.responseCode : 0),
  RESPONSE_FLAGS: (e) => e.flags || '-',
  RESPONSE_CODE_DETAILS: req((r) => orNone(r.details)),
  CONNECTION_TERMINATION_DETAILS: (e) => (isRequest(e) ? undefined : orNone(e.terminationDetails)),
  UPSTREAM_TRANSPORT_FAILURE_REASON: (e) => e.upstreamTransportFailureReason,
  BYTES_RECEIVED: (e) => e.bytesReceived,
  BYTES_SENT: (e) => e.bytesSent,
  DURATION: (e) => e.durationMs,
  UPSTREAM_HOST: (e) => e.upstreamHost,
  UPSTREAM_CLUSTER: (e) => orNone(e.upstreamCluster),
  UPSTREAM_CLUSTER_RAW: (e) => orNone(e.upstreamCluster),
  UPSTREAM_LOCAL_ADDRESS: upstreamLocal,
  UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT: (e) => withoutPort(upstreamLocal(e)),
  UPSTREAM_LOCAL_PORT: (e) => portOf(upstreamLocal(e)),
  UPSTREAM_REMOTE_ADDRESS: upstreamRemote,
  UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT: (e) => withoutPort(upstreamRemote(e)),
  UPSTREAM_REMOTE_PORT: (e) => portOf(upstreamRemote(e)),
  DOWNSTREAM_LOCAL_ADDRESS: localAddress,
  DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT: (e) => withoutPort(localAddress(e)),
  DOWNSTREAM_LOCAL_PORT: (e) => portOf(localAddress(e)),
  DOWNSTREAM_REMOTE_ADDRESS: (e) => e.downstreamRemoteAddress,
  DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT: (e) => withoutPort(e.downstreamRemoteAddress),
  DOWNSTREAM_REMOTE_PORT: (e) => portOf(e.downstreamRemoteAddress),
  DOWNSTREAM_DIRECT_REMOTE_ADDRESS: (e) => e.downstreamRemoteAddress,
  DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT: (e) => withoutPort(e.downstreamRemoteAddress),
  DOWNSTREAM_DIRECT_REMOTE_PORT: (e) => portOf(e.downstreamRemoteAddress),
  REQUESTED_SERVER_NAME: serverName,
  ROUTE_NAME: req((r) => orNone(r.routeName)),
  GRPC_STATUS: grpcStatus('CAMEL_STRING'),
  GRPC_STATUS_NUMBER: grpcStatus('NUMBER'),
  TRACE_ID: req((r) => (r.request ? extractContext(r.request.headers)?.traceId : undefined)),
  UNIQUE_ID: req((r) => r.requestId),
  HOSTNAME: () => hostname(),
  UPSTREAM_SERVICE_TIME: req((r) => r.upstreamServiceTime),
  ACCESS_LOG_TYPE: () => 'NotSet',
};

/** A request header as %REQ(…)% reads it: the pseudo-headers and the ones the record holds as Envoy logs them. */
function requestHeader(r: RequestRecord, name: string): string | undefined {
  switch (name) {
    case ':method': return r.method;
    case ':path': return r.path;
    case 'x-envoy-original-path': if (r.originalPath !== undefined) return r.originalPath; break;
    case ':authority': case 'host': return r.authority;
    case ':scheme': return r.request && 'encrypted' in r.request.socket ? 'https' : 'http';
    case 'x-request-id': return r.requestId;
    case 'user-agent': return r.userAgent;
    case 'x-forwarded-for': return r.forwardedFor;
  }
  const v = r.request?.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

/** A response header as %RESP(…)% reads it: what was written, and what the record holds of it. */
function respHeader(r: RequestRecord, name: string): string | undefined {
  if (name === ':status') return r.responseCode ? String(r.responseCode) : undefined;
  if (name === 'x-envoy-upstream-service-time' && r.upstreamServiceTime !== undefined) return String(r.upstreamServiceTime);
  return r.response ? responseHeader(r.response, name) : undefined;
}

function trailer(r: RequestRecord, name: string): string | undefined {
  const v = r.response ? responseTrailer(r.response, name) : undefined;
  return v ?? (name === 'grpc-status' ? r.grpcStatus : undefined);
}

/** The reader of %REQ(A?B)%, %RESP(…)%, %TRAILER(…)%: the first name that has a value. */
function headers(op: string, arg: string): Reader {
  const names = arg.toLowerCase().split('?');
  const read = op === 'RESP' ? respHeader : op === 'TRAILER' ? trailer : requestHeader;
  return req((r) => {
    for (const n of names) {
      const v = read(r, n);
      if (v !== undefined && v !== '') return op === 'REQ_WITHOUT_QUERY' ? v.split('?')[0] : v;
    }
    return undefined;
  });
}

/** The reader of `%op%` or `%op(arg)%`, or undefined when meshgate does not evaluate it. */
export function operatorReader(op: string, arg: string | undefined): Reader | undefined {
  if (arg === undefined) return PLAIN[op];
  switch (op) {
    case 'REQ':
    case 'REQ_WITHOUT_QUERY':
    case 'RESP':
    case 'TRAILER':
      return headers(op, arg);
    case 'GRPC_STATUS':
      return grpcStatus(arg);
    case 'ENVIRONMENT':
      return () => orNone(process.env[arg]);
    case 'CEL': {
      const c = compileExpression(arg);
      if (!c.ok) return undefined;
      return (e) => c.expression.evaluate(isRequest(e) ? requestAttributes(e) : connectionAttributes({ ...e, cluster: e.upstreamCluster }));
    }
    case 'START_TIME': {
      const format = compileTimeFormat(arg);
      return (e) => format(e.startTime);
    }
  }
  return undefined;
}

