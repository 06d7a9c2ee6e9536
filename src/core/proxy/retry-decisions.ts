// What a route's retry policy decides about one attempt, as Envoy's router decides it: which
// failures and which answers are retried (retryOn, retriableStatusCodes, gRPC statuses), how a
// failure without a response is answered, and the back-off before the next attempt. forward.ts
// asks; this file only decides.

import type { RetryPolicy } from '../routing/types.js';
import { connectFailure, LocalReplies, upstreamTlsFailure, type LocalReply } from './respond.js';
import { transportFailureReason } from './transport-failure.js';
import { UpstreamStreamReset } from './h2-exchange.js';
import { UpstreamTlsError } from '../tls/upstream-connector.js';
import type { Cancel } from './upstream-exchange.js';

const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

/** `refused`: an HTTP/2 upstream reset the stream with REFUSED_STREAM (it never processed it). */
export type Failure = { kind: 'connect' | 'reset' | 'refused'; reply: LocalReply };

export function classify(err: unknown): Failure {
  if (err instanceof UpstreamTlsError) return { kind: 'connect', reply: upstreamTlsFailure(err.reason) };
  if (err instanceof UpstreamStreamReset) return { kind: 'reset', reply: LocalReplies.upstreamRemoteReset };
  const code = (err as { code?: string } | undefined)?.code ?? '';
  if (CONNECT_ERRORS.has(code)) return { kind: 'connect', reply: connectFailure(transportFailureReason(err)) };
  if (code === 'ERR_HTTP2_STREAM_ERROR' && (err as Error).message.includes('REFUSED_STREAM')) return { kind: 'refused', reply: LocalReplies.upstreamRemoteReset };
  // A response the parser refused, or one the client's protocol cannot carry (a status above 599 to an HTTP/2 client).
  if (code === 'UND_ERR_INVALID_ARG' || code.startsWith('HPE_') || code === 'ERR_HTTP2_STATUS_INVALID') return { kind: 'reset', reply: LocalReplies.protocolError };
  return { kind: 'reset', reply: LocalReplies.upstreamReset };
}

/** Envoy's wouldRetryFromReset: 5xx, gateway-error and reset cover every failure without a response. */
export function retriableFailure(p: RetryPolicy, f: Failure): boolean {
  if (p.on.has('reset') || p.on.has('5xx') || p.on.has('gateway-error')) return true;
  if (f.kind === 'connect') return p.on.has('connect-failure') || p.on.has('reset-before-request');
  if (f.kind === 'refused') return p.on.has('refused-stream');
  return false;
}

export function retriableStatus(p: RetryPolicy, status: number, headers: Record<string, string | string[] | undefined>): boolean {
  if (p.on.has('5xx') && status >= 500) return true;
  if (p.on.has('gateway-error') && (status === 502 || status === 503 || status === 504)) return true;
  if (p.on.has('retriable-4xx') && status === 409) return true;
  if (p.statusCodes.has(status)) return true;
  // gRPC conditions look at a trailers-only answer's grpc-status.
  if (p.grpcStatuses.size > 0) {
    const grpc = headers['grpc-status'];
    if (grpc !== undefined && p.grpcStatuses.has(Number(grpc))) return true;
  }
  return false;
}

/**
 * Envoy's back-off: full jitter over an exponentially growing window, capped at 10× the base. The
 * wait is cancelable like an attempt, so a route timeout or a departing client ends it at once.
 */
export function backoff(p: RetryPolicy, retry: number, random: () => number, onCancelable: (c: Cancel) => void): Promise<void> {
  const window = Math.min(p.backoffBaseMs * (2 ** retry - 1 || 1), p.backoffBaseMs * 10);
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, Math.floor(random() * window));
    onCancelable({
      cancel() {
        clearTimeout(timer);
        resolve();
      },
    });
  });
}
