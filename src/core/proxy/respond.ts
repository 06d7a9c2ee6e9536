// The one place where failures become responses: each local reply has a stable error code, the
// HTTP status Istio/Envoy answers with, the Envoy response flag for logs and metrics, and a body.

import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { resetResponse } from './stream-state.js';
import { encodeGrpcMessage, GrpcStatus, httpToGrpcStatus, isGrpcRequest } from './grpc-status.js';
import { tlsFailureReason } from './transport-failure.js';

export interface LocalReply {
  readonly code: string;
  readonly status: number;
  readonly flag: string;
  readonly body: string;
  /** Envoy's %RESPONSE_CODE_DETAILS%. */
  readonly details: string;
  /** Headers the reply carries besides the usual ones (a gRPC abort's grpc-status, an authorizer's set-cookie). */
  readonly headers?: Readonly<Record<string, string | string[]>>;
  /** The gRPC status a gRPC request gets instead of the one its HTTP status maps to. */
  readonly grpcStatus?: number;
}

const reply = (code: string, status: number, flag: string, body: string, details: string): LocalReply =>
  Object.freeze({ code: `MESHGATE_ERR_${code}`, status, flag, body, details });

export const LocalReplies = {
  noRoute: reply('NO_ROUTE', 404, 'NR', '', 'route_not_found'),
  clusterNotFound: reply('CLUSTER_NOT_FOUND', 503, 'NC', '', 'cluster_not_found'),
  /** A Gateway API backendRef that cannot be used: the Gateway API asks 500 for its share of requests. */
  invalidBackend: reply('INVALID_BACKEND', 500, 'NC', '', 'cluster_not_found'),
  noHealthyUpstream: reply('NO_HEALTHY_UPSTREAM', 503, 'UH', 'no healthy upstream', 'no_healthy_upstream'),
  connectFailure: reply(
    'UPSTREAM_CONNECT',
    503,
    'UF',
    'upstream connect error or disconnect/reset before headers. reset reason: connection failure',
    'upstream_reset_before_response_started{connection_failure}',
  ),
  /** The upstream connection closed (or was reset at TCP level) before the response started: UC. */
  upstreamReset: reply(
    'UPSTREAM_RESET',
    503,
    'UC',
    'upstream connect error or disconnect/reset before headers. reset reason: connection termination',
    'upstream_reset_before_response_started{connection_termination}',
  ),
  /** An HTTP/2 upstream reset the stream (RST_STREAM) before the response started: UR. */
  upstreamRemoteReset: reply(
    'UPSTREAM_REMOTE_RESET',
    503,
    'UR',
    'upstream connect error or disconnect/reset before headers. reset reason: remote reset',
    'upstream_reset_before_response_started{remote_reset}',
  ),
  /** The client went away (closed, reset or cancelled) before its answer: DC, nothing is sent. */
  downstreamDisconnect: reply('DOWNSTREAM_DISCONNECT', 0, 'DC', '', 'downstream_remote_disconnect'),
  /** A circuit breaker (connectionPool limit) turned the request away without queueing it; Envoy's router says so in x-envoy-overloaded. */
  overflow: Object.freeze({
    ...reply('UPSTREAM_OVERFLOW', 503, 'UO', 'upstream connect error or disconnect/reset before headers. reset reason: overflow', 'upstream_reset_before_response_started{overflow}'),
    headers: Object.freeze({ 'x-envoy-overloaded': 'true' }),
  }),
  // A gRPC call that times out hears DEADLINE_EXCEEDED, not the UNAVAILABLE that 504 maps to (Envoy's
  // router does the same since its grpc_timeout_returns_deadline_exceeded change).
  timeout: { ...reply('UPSTREAM_TIMEOUT', 504, 'UT', 'upstream request timeout', 'upstream_response_timeout'), grpcStatus: GrpcStatus.DEADLINE_EXCEEDED },
  misdirected: reply('MISDIRECTED', 421, '-', 'Misdirected Request', 'misdirected_request'),
  badRequest: reply('BAD_REQUEST', 400, '-', 'Bad Request', 'bad_request'),
  /** More request headers, or more bytes of them, than the listener takes (max_headers_count, max_request_headers_kb). */
  headersTooLarge: reply('HEADERS_TOO_LARGE', 431, '-', 'Request Header Fields Too Large', 'request_headers_too_large'),
  uriTooLong: reply('URI_TOO_LONG', 414, '-', 'URI Too Long', 'uri_too_long'),
  /** A body longer than a buffer that must hold all of it (an authorizer's maxRequestBytes without allowPartialMessage). */
  payloadTooLarge: reply('PAYLOAD_TOO_LARGE', 413, '-', 'Payload Too Large', 'request_payload_too_large'),
  /** The request headers did not arrive within request_headers_timeout. */
  requestHeadersTimeout: reply('REQUEST_HEADERS_TIMEOUT', 408, '-', 'request timeout', 'request_header_timeout'),
  /** An Upgrade protocol no upgrade_configs entry allows (Envoy answers 403 `upgrade_failed`). */
  upgradeRefused: reply('UPGRADE_REFUSED', 403, '-', '', 'upgrade_failed'),
  protocolError: reply('UPSTREAM_PROTOCOL', 502, 'UPE', 'upstream protocol error', 'upstream_protocol_error'),
  /** AuthorizationPolicy said no (details name the deciding policy, as Envoy's RBAC filter does). */
  rbacDenied: reply('RBAC_DENIED', 403, '-', 'RBAC: access denied', 'rbac_access_denied_matched_policy[none]'),
  /** A sidecar with outboundTrafficPolicy REGISTRY_ONLY asked for a host the mesh does not know. */
  registryOnly: reply('REGISTRY_ONLY', 502, '-', '', 'direct_response'),
  // Envoy's local rate limit filter: 429, flag RL, body and details `local_rate_limited`.
  rateLimited: reply('RATE_LIMITED', 429, 'RL', 'local_rate_limited', 'local_rate_limited'),
} as const;

/** A 400 whose details say what was wrong with the request (Envoy's %RESPONSE_CODE_DETAILS%). */
export function badRequest(details: string): LocalReply {
  return { ...LocalReplies.badRequest, details };
}

/** AuthorizationPolicy denied: details name the deciding policy, or `[none]` when no ALLOW rule matched. */
export function rbacDenied(policy: string | undefined): LocalReply {
  return policy ? { ...LocalReplies.rbacDenied, details: `rbac_access_denied_matched_policy[${policy}]` } : LocalReplies.rbacDenied;
}

/**
 * RequestAuthentication refused the request's token: 401 with Envoy's jwt_authn status text as the
 * body (`Jwt verification fails`, `Jwt is expired`, …) and a Bearer challenge.
 */
export function jwtDenied(reason: string): LocalReply {
  return {
    code: 'MESHGATE_ERR_JWT_INVALID',
    status: 401,
    flag: '-',
    body: reason,
    details: `jwt_authn_access_denied{${reason.replace(/[^A-Za-z0-9]+/g, '_')}}`,
    headers: { 'www-authenticate': 'Bearer realm="meshgate", error="invalid_token"' },
  };
}

/**
 * A CUSTOM policy's external authorizer said no (flag UAEX, as Envoy's ext_authz filter sets it): its
 * status, its body and the headers it may send to the client (content-type among them) go as they came.
 */
export function extAuthzDenied(status: number, body: string, headers: Readonly<Record<string, string | string[]>>): LocalReply {
  return { code: 'MESHGATE_ERR_EXT_AUTHZ_DENIED', status, flag: 'UAEX', body, details: 'ext_authz_denied', headers };
}

/**
 * The authorizer could not be asked (no such provider, connect failure, timeout, a 5xx answer):
 * the provider's statusOnError (403 unless set), an empty body, flag UAEX; `why` goes to the details.
 */
export function extAuthzError(status: number, why: string): LocalReply {
  return { code: 'MESHGATE_ERR_EXT_AUTHZ_ERROR', status, flag: 'UAEX', body: '', details: `ext_authz_error{${why.replace(/[^A-Za-z0-9]+/g, '_')}}` };
}

/** A 429 whose details name the RateLimitPolicy limit that refused (`ns/name[index]`), for the access log. */
export function rateLimited(ruleId: string): LocalReply {
  return { ...LocalReplies.rateLimited, details: `local_rate_limited{${ruleId}}` };
}

/**
 * An EnvoyFilter's local rate limit refused: Envoy's reply, with its configured status (429 unless
 * set) and response_headers_to_add. (Envoy's filter docs mention x-envoy-ratelimited; the replies
 * its filter sends carry only the configured headers, so neither does this one.)
 */
export function envoyRateLimited(status: number, headers: Readonly<Record<string, string>>): LocalReply {
  return { ...LocalReplies.rateLimited, status, headers };
}

/** Envoy's body of a failed connect, its transport failure reason appended when there is one. */
const connectFailureBody = (transportFailure: string | undefined): string =>
  transportFailure === undefined ? LocalReplies.connectFailure.body : `${LocalReplies.connectFailure.body}, transport failure reason: ${transportFailure}`;

/**
 * A connect that failed (503 UF), with Envoy's transport failure reason (transport-failure.ts) in
 * the body and in the details, its spaces made underscores, as Envoy's router writes both:
 * `upstream_reset_before_response_started{connection_failure,delayed_connect_error:_111}`.
 */
export function connectFailure(transportFailure: string | undefined): LocalReply {
  if (transportFailure === undefined) return LocalReplies.connectFailure;
  return { ...LocalReplies.connectFailure, body: connectFailureBody(transportFailure), details: `upstream_reset_before_response_started{connection_failure,${transportFailure.replace(/ /g, '_')}}` };
}

/**
 * A TLS failure towards the upstream (handshake, untrusted chain, wrong peer identity, no workload
 * certificate): a connection failure to Envoy, so 503 UF, with the reason in the response details
 * and Envoy's wording of it in the body.
 */
export function upstreamTlsFailure(reason: string): LocalReply {
  return reply('UPSTREAM_TLS', 503, 'UF', connectFailureBody(tlsFailureReason(reason)), `upstream_tls_error:${reason}`);
}

const FAULT_ABORT_BODY = 'fault filter abort';

/**
 * A fault-injection abort (flag FI). A `grpcStatus` abort answers a gRPC request the gRPC way: HTTP
 * 200 with grpc-status and grpc-message and no body; anything else gets the status and Envoy's body.
 */
export function faultAbort(httpStatus: number, grpcStatus?: number, grpcRequest = false): LocalReply {
  const code = 'MESHGATE_ERR_FAULT_ABORT';
  if (grpcStatus !== undefined && grpcRequest) {
    const headers = { 'content-type': 'application/grpc', 'grpc-status': String(grpcStatus), 'grpc-message': FAULT_ABORT_BODY };
    return { code, status: 200, flag: 'FI', body: '', details: 'fault_filter_abort', headers };
  }
  return { code, status: httpStatus, flag: 'FI', body: FAULT_ABORT_BODY, details: 'fault_filter_abort' };
}

/** Response flags accumulate (`DI,UT`); `-` is the empty list. */
export function addFlag(flags: string, flag: string): string {
  if (flag === '-' || flag === '') return flags;
  return flags === '-' || flags === '' ? flag : `${flags},${flag}`;
}

/** Retries that ran out add URX to the flag, as Envoy reports it. */
export function withRetriesExhausted(r: LocalReply): LocalReply {
  return { ...r, flag: r.flag === '-' ? 'URX' : `${r.flag},URX` };
}

export function sendLocalReply(res: ServerResponse, r: LocalReply, extraHeaders?: Record<string, string>): void {
  // Nothing can be said to a client that is gone, nor after the headers of another answer.
  if (res.headersSent || r.status === 0 || res.destroyed) {
    resetResponse(res);
    return;
  }
  const req = (res as ServerResponse & { req?: IncomingMessage }).req;
  if (req && isGrpcRequest(req.headers)) return sendGrpcLocalReply(res, r, extraHeaders);
  const body = Buffer.from(r.body);
  res.writeHead(r.status, {
    ...(body.length > 0 ? { 'content-type': 'text/plain' } : {}),
    'content-length': String(body.length),
    server: 'istio-envoy',
    ...r.headers,
    ...extraHeaders,
  });
  res.end(body);
}

/**
 * A local reply to a gRPC request, the way Envoy makes one: HTTP 200, `content-type: application/grpc`,
 * `grpc-status` (the reply's own, or its HTTP status mapped) and `grpc-message` (the body text,
 * percent-encoded; the response details when there is no body), all in one HEADERS frame that ends
 * the stream (a trailers-only response), so every gRPC client reads the status.
 */
function sendGrpcLocalReply(res: ServerResponse, r: LocalReply, extraHeaders?: Record<string, string>): void {
  const headers: Record<string, string> = {
    'content-type': 'application/grpc',
    'grpc-status': String(r.grpcStatus ?? httpToGrpcStatus(r.status)),
    'grpc-message': encodeGrpcMessage(r.body || r.details),
    server: 'istio-envoy',
    ...r.headers,
    ...extraHeaders,
  };
  respondHeadersOnly(res, 200, headers);
}

/**
 * A response that is headers alone: on HTTP/2 one HEADERS frame with END_STREAM (no empty DATA frame
 * after it), which a gRPC trailers-only answer must be; on HTTP/1 a head with no body.
 */
export function respondHeadersOnly(res: ServerResponse, status: number, headers: Readonly<Record<string, string | string[] | number | undefined>>): void {
  res.statusCode = status;
  for (const [name, value] of Object.entries(headers)) if (value !== undefined) res.setHeader(name, value);
  if (res.req?.httpVersionMajor !== 2 && !res.hasHeader('content-length')) res.setHeader('content-length', '0');
  res.end();
}

/**
 * A local reply for a connection that has no request to answer through (Node could not parse what
 * the client sent): the whole HTTP/1.1 answer as bytes, ending the connection.
 */
export function rawLocalReply(r: LocalReply): Buffer {
  const body = Buffer.from(r.body);
  const head =
    `HTTP/1.1 ${r.status} ${STATUS_CODES[r.status] ?? 'Unknown'}\r\n` +
    (body.length > 0 ? 'content-type: text/plain\r\n' : '') +
    `content-length: ${body.length}\r\nserver: istio-envoy\r\nconnection: close\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

// ---------------------------------------------------------------- the processes' own endpoints
// The status, admin, metrics and probe ports of every proxy and the control plane's API answer their
// failures from here too, typed and with stable codes, so that no server decides a failure's status
// or body on its own. Their clients are probes, scrapers and tools: plain text, or JSON `{"error"}`
// where the endpoint speaks JSON.

export const EndpointFailures = {
  notFound: reply('NOT_FOUND', 404, '-', 'not found\n', 'not_found'),
  getOnly: { ...reply('METHOD_NOT_ALLOWED', 405, '-', 'GET only\n', 'method_not_allowed'), headers: { allow: 'GET' } },
  /** A lifecycle action (`/quitquitquit`): only POST does it, as with Istio's agent and Envoy's admin. */
  postOnly: { ...reply('METHOD_NOT_ALLOWED', 405, '-', 'POST only\n', 'method_not_allowed'), headers: { allow: 'POST' } },
  /** A lifecycle action asked from outside the pod: only its own containers may end the sidecar. */
  localOnly: reply('LOCALHOST_ONLY', 403, '-', 'only requests from localhost are allowed\n', 'localhost_only'),
  /** A lifecycle action a web page asked for (local-only.ts): a page must not end or drain a proxy. */
  webPage: reply('WEB_PAGE_REFUSED', 403, '-', 'not for web pages\n', 'web_page_refused'),
  /** A loopback-only port asked under a DNS name other than localhost: a DNS-rebinding page (local-only.ts). */
  foreignName: reply('FOREIGN_HOST', 403, '-', 'ask this port as localhost or by its address\n', 'foreign_host'),
  /** Readiness: no configuration yet, or draining. */
  notReady: reply('NOT_READY', 503, '-', 'not ready\n', 'not_ready'),
  noConfiguration: reply('NO_CONFIGURATION', 503, '-', 'no configuration yet\n', 'no_configuration'),
  shuttingDown: reply('SHUTTING_DOWN', 503, '-', 'the control plane is shutting down\n', 'shutting_down'),
  noSuchProbe: reply('NO_SUCH_PROBE', 404, '-', 'no such probe\n', 'no_such_probe'),
  appProbeFailed: reply('APP_PROBE_FAILED', 503, '-', 'app probe failed\n', 'app_probe_failed'),
} as const;

/** An endpoint that failed on its own (a metrics render, a dashboard query): 500 with the reason. */
export function internalFailure(message: string): LocalReply {
  return reply('INTERNAL', 500, '-', `${message}\n`, 'internal_error');
}

/** A request an API refused (too large, not JSON, not allowed): the status it named and why. */
export function apiFailure(status: number, message: string): LocalReply {
  return reply(`API_${status}`, status, '-', `${message}\n`, 'api_error');
}

/** What an endpoint failure looks like on the wire, for servers that write through a framework (fastify). */
export function endpointAnswer(r: LocalReply, format: 'text' | 'json' = 'text'): { status: number; headers: Record<string, string>; body: string } {
  const body = format === 'json' ? JSON.stringify({ error: r.body.trimEnd() }) : r.body;
  return { status: r.status, headers: { 'content-type': format === 'json' ? 'application/json' : 'text/plain', ...r.headers }, body };
}

export function sendEndpointFailure(res: ServerResponse, r: LocalReply, format: 'text' | 'json' = 'text', extraHeaders: Record<string, string> = {}): void {
  if (res.headersSent) return void res.destroy();
  const a = endpointAnswer(r, format);
  res.writeHead(a.status, { ...a.headers, 'content-length': String(Buffer.byteLength(a.body)), ...extraHeaders }).end(a.body);
}

/** A process endpoint's plain-text success (a lifecycle action done); `connection: close` when it ends the process. */
export function sendEndpointText(res: ServerResponse, body: string, extraHeaders: Record<string, string> = {}): void {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(body)), ...extraHeaders }).end(body);
}
