// gRPC as a proxy sees it: which requests are gRPC, the HTTP → gRPC status mapping Envoy uses for its
// local replies (Grpc::Utility::httpToGrpcStatus, after gRPC's http-grpc-status-mapping), the
// `grpc-timeout` header, and the percent-encoding of `grpc-message`.

import type { IncomingHttpHeaders } from 'node:http';

/** gRPC status codes this proxy names. */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/**
 * Envoy's test for a gRPC request: `content-type` is `application/grpc`, or that followed by `+` or
 * `;` (`application/grpc+proto`). gRPC-Web (`application/grpc-web…`) is not gRPC here.
 */
export function isGrpcRequest(headers: IncomingHttpHeaders): boolean {
  const ct = headers['content-type'];
  if (typeof ct !== 'string' || !ct.startsWith('application/grpc')) return false;
  const next = ct.charCodeAt(16);
  return Number.isNaN(next) || next === 43 /* + */ || next === 59 /* ; */;
}

/** The gRPC status a local reply with this HTTP status carries (Envoy's mapping). */
export function httpToGrpcStatus(status: number): number {
  switch (status) {
    case 400:
      return GrpcStatus.INTERNAL;
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
      return GrpcStatus.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus.UNAVAILABLE;
    default:
      return GrpcStatus.UNKNOWN;
  }
}

const TIMEOUT_UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/**
 * `grpc-timeout` in milliseconds (at least 1 for any positive value), or undefined when absent or not
 * of gRPC's form: 1 to 8 digits and a unit (H, M, S, m, u, n).
 */
export function grpcTimeoutMs(headers: IncomingHttpHeaders): number | undefined {
  const v = headers['grpc-timeout'];
  if (typeof v !== 'string') return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(v);
  if (!m) return undefined;
  const ms = Number(m[1]) * TIMEOUT_UNIT_MS[m[2]!]!;
  return ms > 0 ? Math.max(1, Math.ceil(ms)) : 0;
}

/**
 * The route timeout as Istio configures Envoy for gRPC: `maxStreamDuration.grpcTimeoutHeaderMax` is
 * the route timeout, so a `grpc-timeout` shortens it, and with no route timeout (0) the header alone
 * bounds the call. Without the header the route timeout stands.
 */
export function boundedByGrpcTimeout(routeTimeoutMs: number, headers: IncomingHttpHeaders): number {
  const grpc = grpcTimeoutMs(headers);
  if (grpc === undefined || grpc === 0) return routeTimeoutMs;
  return routeTimeoutMs > 0 ? Math.min(routeTimeoutMs, grpc) : grpc;
}

/** gRPC's percent-encoding for `grpc-message`: printable ASCII other than `%` passes as it is. */
export function encodeGrpcMessage(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
