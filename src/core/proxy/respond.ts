// The one place where failures become responses: each local reply has a stable error code, the
// HTTP status Istio/Envoy answers with, the Envoy response flag for logs and metrics, and a body.

import type { ServerResponse } from 'node:http';

export interface LocalReply {
  readonly code: string;
  readonly status: number;
  readonly flag: string;
  readonly body: string;
  /** Envoy's %RESPONSE_CODE_DETAILS%. */
  readonly details: string;
}

const reply = (code: string, status: number, flag: string, body: string, details: string): LocalReply =>
  Object.freeze({ code: `MESHGATE_ERR_${code}`, status, flag, body, details });

export const LocalReplies = {
  noRoute: reply('NO_ROUTE', 404, 'NR', '', 'route_not_found'),
  clusterNotFound: reply('CLUSTER_NOT_FOUND', 503, 'NC', '', 'cluster_not_found'),
  noHealthyUpstream: reply('NO_HEALTHY_UPSTREAM', 503, 'UH', 'no healthy upstream', 'no_healthy_upstream'),
  connectFailure: reply(
    'UPSTREAM_CONNECT',
    503,
    'UF',
    'upstream connect error or disconnect/reset before headers. reset reason: connection failure',
    'upstream_reset_before_response_started{connection_failure}',
  ),
  upstreamReset: reply(
    'UPSTREAM_RESET',
    503,
    'UR',
    'upstream connect error or disconnect/reset before headers. reset reason: connection termination',
    'upstream_reset_before_response_started{connection_termination}',
  ),
  timeout: reply('UPSTREAM_TIMEOUT', 504, 'UT', 'upstream request timeout', 'upstream_response_timeout'),
  misdirected: reply('MISDIRECTED', 421, '-', 'Misdirected Request', 'misdirected_request'),
  badRequest: reply('BAD_REQUEST', 400, '-', 'Bad Request', 'bad_request'),
  protocolError: reply('UPSTREAM_PROTOCOL', 502, 'UPE', 'upstream protocol error', 'upstream_protocol_error'),
  // Envoy's local rate limit filter: 429, flag RL, body and details `local_rate_limited`.
  rateLimited: reply('RATE_LIMITED', 429, 'RL', 'local_rate_limited', 'local_rate_limited'),
} as const;

/** A 429 whose details name the RateLimitPolicy limit that refused (`ns/name[index]`), for the access log. */
export function rateLimited(ruleId: string): LocalReply {
  return { ...LocalReplies.rateLimited, details: `local_rate_limited{${ruleId}}` };
}

/** Retries that ran out add URX to the flag, as Envoy reports it. */
export function withRetriesExhausted(r: LocalReply): LocalReply {
  return { ...r, flag: r.flag === '-' ? 'URX' : `${r.flag},URX` };
}

export function sendLocalReply(res: ServerResponse, r: LocalReply, extraHeaders?: Record<string, string>): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = Buffer.from(r.body);
  res.writeHead(r.status, {
    ...(body.length > 0 ? { 'content-type': 'text/plain' } : {}),
    'content-length': String(body.length),
    server: 'istio-envoy',
    ...extraHeaders,
  });
  res.end(body);
}
