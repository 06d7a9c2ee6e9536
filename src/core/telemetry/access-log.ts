// The access log: one JSON line per request through pino's asynchronous destination (SonicBoom), with the fields
// of Istio's default access log (SEMANTICS §7.3) under the keys Istio's JSON encoding uses.

import type { IncomingMessage } from 'node:http';
import { pino } from 'pino';

/** Filled in as the request goes; written once when the response ends. */
export interface RequestRecord {
  readonly startTime: Date;
  readonly method: string;
  readonly path: string;
  readonly protocol: string;
  responseCode: number;
  flags: string;
  details: string;
  bytesReceived: number;
  bytesSent: number;
  durationMs: number;
  upstreamServiceTime?: number;
  readonly forwardedFor?: string;
  readonly userAgent?: string;
  readonly requestId: string;
  readonly authority: string;
  upstreamHost?: string;
  upstreamCluster?: string;
  routeName?: string;
  readonly downstreamRemoteAddress: string;
}

/** A request's record as it arrives; the proxy fills in the rest as the request goes. */
export function newRequestRecord(req: IncomingMessage, requestId: string, authority: string, remote: { address: string; port: number }): RequestRecord {
  return {
    startTime: new Date(),
    method: req.method ?? '',
    path: req.url ?? '',
    protocol: `HTTP/${req.httpVersion}`,
    responseCode: 0,
    flags: '-',
    details: 'via_upstream',
    bytesReceived: 0,
    bytesSent: 0,
    durationMs: 0,
    ...(req.headers['x-forwarded-for'] !== undefined ? { forwardedFor: String(req.headers['x-forwarded-for']) } : {}),
    ...(req.headers['user-agent'] !== undefined ? { userAgent: req.headers['user-agent'] } : {}),
    requestId,
    authority,
    downstreamRemoteAddress: `${remote.address}:${remote.port}`,
  };
}

export interface AccessLog {
  write(r: RequestRecord): void;
  flush(): void;
}

export const NO_ACCESS_LOG: AccessLog = { write: () => undefined, flush: () => undefined };

/** `off`, `stdout`, or a file path. */
export function createAccessLog(target: string): AccessLog {
  if (target === 'off') return NO_ACCESS_LOG;
  const dest = pino.destination({ dest: target === 'stdout' ? 1 : target, sync: false, mkdir: true });
  return {
    write(r) {
      // An access line is a record, not a log message: no level or pid, just Istio's fields.
      dest.write(JSON.stringify({
        start_time: r.startTime.toISOString(),
        method: r.method,
        path: r.path,
        protocol: r.protocol,
        response_code: r.responseCode,
        response_flags: r.flags,
        response_code_details: r.details,
        bytes_received: r.bytesReceived,
        bytes_sent: r.bytesSent,
        duration: r.durationMs,
        upstream_service_time: r.upstreamServiceTime ?? null,
        x_forwarded_for: r.forwardedFor ?? null,
        user_agent: r.userAgent ?? null,
        request_id: r.requestId,
        authority: r.authority,
        upstream_host: r.upstreamHost ?? null,
        upstream_cluster: r.upstreamCluster ?? null,
        route_name: r.routeName ?? null,
        downstream_remote_address: r.downstreamRemoteAddress,
      }) + '\n');
    },
    flush() {
      // Before the file is open there is nothing buffered to lose.
      try {
        dest.flushSync();
      } catch {
        /* not ready yet */
      }
    },
  };
}
