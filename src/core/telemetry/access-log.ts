// The access log: one JSON line per request through pino's asynchronous destination (SonicBoom), with the fields
// of Istio's default access log (docs/observability.md) under the keys Istio's JSON encoding uses. A
// connection the proxy passes through as TCP gets one line when it closes, as Envoy's tcp_proxy logs
// it: the same keys, the HTTP ones empty (response_code 0), the bytes and duration of the connection.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { pino } from 'pino';
import type { WorkloadInfo } from './workload.js';
import { responseCompleted } from '../proxy/stream-state.js';
import { GrpcMessageCounter } from './grpc-messages.js';

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
  /** The stable `MESHGATE_ERR_*` code of the local reply that answered, if one did (respond.ts). */
  errorCode?: string;
  /** Istio's `reporter`: `source` (gateway, client sidecar) or `destination` (server sidecar). */
  reporter: 'source' | 'destination';
  /** The verified mesh peer that sent the request (server side), from its certificate and peer metadata. */
  downstreamPeer?: WorkloadInfo;
  /** The workload of the endpoint the request went to (client side). */
  upstreamPeer?: WorkloadInfo;
  /** The request went to it over Istio mutual TLS: this proxy's certificate named it (source_principal). */
  upstreamMtls?: boolean;
  /** A gRPC request (content-type application/grpc*): request_protocol `grpc`. */
  readonly grpc: boolean;
  /** grpc-status of the answer (headers or trailers), when gRPC. */
  grpcStatus?: string;
  /** gRPC messages each way, counted as the bodies pass (gRPC only). */
  grpcMessages?: { readonly request: GrpcMessageCounter; readonly response: GrpcMessageCounter };
  /** How many of those the metrics already counted while the stream was open (periodic-report.ts). */
  grpcReported?: { request: number; response: number };
  /** The request itself, for Telemetry tag expressions that read its headers or connection (metric-attributes.ts). */
  request?: IncomingMessage;
  /** The request's trace span, ended from this record (tracing.ts). */
  span?: { end(record: RequestRecord): void };
}

/**
 * A request's record as it arrives; the proxy fills in the rest as the request goes. `forwardedFor`
 * is the x-forwarded-for the proxy sends on (Envoy logs the header after appending the client).
 * Every field is there from the start, undefined until known: the record keeps the one shape, its
 * fields inside the object, where fields added later (the upstream, the peer, the request) each
 * grew a separate property store, and spread-in parts made an object apiece (docs/benchmarks.md).
 */
export function newRequestRecord(req: IncomingMessage, requestId: string, authority: string, remoteAddress: string, remotePort: number, forwardedFor?: string): RequestRecord {
  const headers = req.headers;
  const xff = forwardedFor ?? headers['x-forwarded-for'];
  const contentType = headers['content-type'];
  return {
    startTime: new Date(),
    method: req.method ?? '',
    path: req.url ?? '',
    protocol: protocolOf(req),
    responseCode: 0,
    flags: '-',
    details: 'via_upstream',
    bytesReceived: 0,
    bytesSent: 0,
    durationMs: 0,
    upstreamServiceTime: undefined,
    forwardedFor: xff !== undefined ? String(xff) : undefined,
    userAgent: headers['user-agent'],
    requestId,
    authority,
    upstreamHost: undefined,
    upstreamCluster: undefined,
    routeName: undefined,
    downstreamRemoteAddress: `${remoteAddress}:${remotePort}`,
    errorCode: undefined,
    reporter: 'source',
    downstreamPeer: undefined,
    upstreamPeer: undefined,
    grpc: typeof contentType === 'string' && contentType.startsWith('application/grpc'),
    grpcStatus: undefined,
    grpcMessages: undefined,
    grpcReported: undefined,
    request: undefined,
    span: undefined,
  };
}

/** Envoy's %PROTOCOL%: HTTP/1.0, HTTP/1.1, HTTP/2 (Node says 2.0). */
function protocolOf(req: IncomingMessage): string {
  if (req.httpVersionMajor >= 2) return `HTTP/${req.httpVersionMajor}`;
  return req.httpVersion === '1.1' ? 'HTTP/1.1' : `HTTP/${req.httpVersion}`;
}

/** Bytes that bypass the response object (an upgraded connection's tunnel). */
export interface TunnelBytes {
  readonly received: number;
  readonly sent: number;
}

/**
 * Follows a request to its end and writes its line: counts body bytes as they pass, and when the
 * response closes fills in the status (0 when nothing was sent), DC for a client that left before
 * the end, the duration, and whatever a tunnel carried.
 */
export function logWhenDone(req: IncomingMessage, res: ServerResponse, record: RequestRecord, log: AccessLog, tunnel?: TunnelBytes): void {
  const started = performance.now();
  record.request = req;
  meterBodies(req, res, record);
  // 'close' comes once: `on` spares the wrapper `once` makes for every request.
  res.on('close', () => {
    record.responseCode = res.headersSent ? res.statusCode : 0;
    // A client that reset its stream or closed its connection before the end: DC, unless the proxy
    // already said why it cut the response (UT, UR, UC).
    if (!responseCompleted(res) && (record.flags === '-' || record.flags === 'DI')) {
      record.flags = record.flags === '-' ? 'DC' : `${record.flags},DC`;
      if (!res.headersSent && record.details === 'via_upstream') record.details = 'downstream_remote_disconnect';
    }
    record.durationMs = Math.round(performance.now() - started);
    if (tunnel) {
      record.bytesReceived += tunnel.received;
      record.bytesSent += tunnel.sent;
    }
    if (record.grpc) record.grpcStatus ??= grpcStatusOf(res);
    log.write(record);
  });
}

/**
 * Envoy's %BYTES_RECEIVED% and %BYTES_SENT% count BODY bytes: what the request stream delivered
 * (after chunked or HTTP/2 framing, whether or not anything read it) and what went out as the
 * response body, headers not included. Node keeps no such count, so the request's push (where the
 * parser hands over body data) and the response's write and end are counted on their way through.
 *
 * The counting methods are the same functions for every request, finding the request's meter on
 * the object they are called on: a closure per request and method, put on each request and
 * response, kept whole requests reachable past a young-generation collection, and at load the
 * gateway promoted some 2.5 KB per request into the old generation (docs/benchmarks.md).
 */
function meterBodies(req: IncomingMessage, res: ServerResponse, record: RequestRecord): void {
  const messages = record.grpc ? (record.grpcMessages = { request: new GrpcMessageCounter(), response: new GrpcMessageCounter() }) : undefined;
  const meter: Meter = { record, req, res, messages, h2: req.httpVersionMajor >= 2, push: req.push, write: res.write, end: res.end, addTrailers: res.addTrailers };
  (req as unknown as Metered)[METER] = meter;
  (res as unknown as Metered)[METER] = meter;
  req.push = meteredPush;
  res.write = meteredWrite as ServerResponse['write'];
  if (record.grpc) res.addTrailers = meteredAddTrailers;
  res.end = meteredEnd as ServerResponse['end'];
}

/** One request's counts and the methods the metered ones stand in front of. */
interface Meter {
  readonly record: RequestRecord;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly messages: { readonly request: GrpcMessageCounter; readonly response: GrpcMessageCounter } | undefined;
  /** HTTP/2's compatibility response ends by calling write() with the last chunk: counted there. */
  readonly h2: boolean;
  readonly push: IncomingMessage['push'];
  readonly write: ServerResponse['write'];
  readonly end: ServerResponse['end'];
  readonly addTrailers: ServerResponse['addTrailers'];
}

const METER = Symbol('meshgate.bodyMeter');
type Metered = { [METER]: Meter };

/** No body goes out for HEAD, 1xx, 204 or 304, whatever is written. */
function countsBody(m: Meter): boolean {
  return m.req.method !== 'HEAD' && m.res.statusCode >= 200 && m.res.statusCode !== 204 && m.res.statusCode !== 304;
}

function meteredPush(this: IncomingMessage, chunk: unknown, encoding?: BufferEncoding): boolean {
  const m = (this as unknown as Metered)[METER];
  if (chunk) {
    m.record.bytesReceived += byteLength(chunk, encoding);
    if (m.messages && ArrayBuffer.isView(chunk)) m.messages.request.feed(chunk as Uint8Array);
  }
  return m.push.call(this, chunk, encoding);
}

function meteredWrite(this: ServerResponse, chunk: unknown, ...rest: unknown[]): boolean {
  const m = (this as unknown as Metered)[METER];
  if (countsBody(m)) m.record.bytesSent += byteLength(chunk, rest[0]);
  if (m.messages && ArrayBuffer.isView(chunk)) m.messages.response.feed(chunk as Uint8Array);
  return (m.write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
}

function meteredEnd(this: ServerResponse, chunk?: unknown, ...rest: unknown[]): ServerResponse {
  const m = (this as unknown as Metered)[METER];
  if (!m.h2 && typeof chunk !== 'function' && chunk != null) {
    if (countsBody(m)) m.record.bytesSent += byteLength(chunk, rest[0]);
    if (m.messages && ArrayBuffer.isView(chunk)) m.messages.response.feed(chunk as Uint8Array);
  }
  return (m.end as (...a: unknown[]) => ServerResponse).call(this, chunk, ...rest);
}

function meteredAddTrailers(this: ServerResponse, headers: Parameters<ServerResponse['addTrailers']>[0]): void {
  const m = (this as unknown as Metered)[METER];
  const status = (headers as Record<string, unknown>)['grpc-status'];
  if (status !== undefined) m.record.grpcStatus = String(status);
  m.addTrailers.call(this, headers);
}

/** grpc-status from a trailers-only answer's headers, or from the trailers (meterBodies notes them). */
function grpcStatusOf(res: ServerResponse): string | undefined {
  const v = res.getHeader('grpc-status');
  return v === undefined ? undefined : String(v);
}

function byteLength(chunk: unknown, encoding: unknown): number {
  if (typeof chunk === 'string') return Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  return ArrayBuffer.isView(chunk) ? chunk.byteLength : 0;
}

/** Where finished request records go (the access log alone, or the whole observe step: proxy-telemetry.ts). */
export interface AccessLog {
  write(r: RequestRecord): void;
  flush(): void;
  /** At a request's start, for sinks that trace: the span starts and becomes the upstream's parent. */
  startSpan?(req: IncomingMessage, record: RequestRecord): void;
  /** TCP proxy connections, for the sinks that count them (Istio's TCP metrics). */
  tcpOpened?(c: TcpOpened): void;
  tcpClosed?(c: TcpClosed): void;
  /** A TCP connection's access-log line, when it has closed (whether or not it reached an endpoint). */
  writeTcp?(c: TcpLogLine): void;
}

/** What the access log says of one TCP connection. */
export interface TcpLogLine {
  readonly startTime: Date;
  readonly durationMs: number;
  /** Envoy's response flags (`UF`, `UH`, `NR`, `UO`, `DC`, …); '' or '-' for none. */
  readonly flags: string;
  /** Why the proxy closed it (`rbac_deny_close`), if it did. */
  readonly terminationDetails?: string;
  readonly bytesReceived: number;
  readonly bytesSent: number;
  readonly upstreamHost?: string;
  readonly upstreamCluster: string;
  readonly downstreamRemoteAddress: string;
  /** The SNI of the ClientHello that chose the route, for TLS passed through. */
  readonly sni?: string;
  /** The peers, for Telemetry access-log filters (`upstream_peer.app`, `downstream_peer.namespace`). */
  readonly upstreamPeer?: WorkloadInfo;
  readonly downstreamPeer?: WorkloadInfo;
}

/** A TCP connection the proxy spliced to an endpoint, as the TCP metrics label it. */
export interface TcpOpened {
  readonly reporter: 'source' | 'destination';
  readonly cluster: string;
  readonly upstreamPeer?: WorkloadInfo;
  /** The connection to the endpoint is Istio mutual TLS (this proxy's certificate names it there). */
  readonly upstreamMtls?: boolean;
  readonly downstreamPeer?: WorkloadInfo;
  /**
   * The downstream socket (the same object when it closes): what it has carried so far is reported
   * every reporting interval while it is open, as Istio does for long-lived connections.
   */
  readonly connection?: { readonly bytesRead: number; readonly bytesWritten: number };
}

export interface TcpClosed extends TcpOpened {
  readonly flags: string;
  readonly bytesReceived: number;
  readonly bytesSent: number;
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
        ...(r.errorCode !== undefined ? { meshgate_error_code: r.errorCode } : {}),
      }) + '\n');
    },
    writeTcp(c) {
      dest.write(JSON.stringify({
        start_time: c.startTime.toISOString(),
        method: null,
        path: null,
        protocol: null,
        response_code: 0,
        response_flags: c.flags || '-',
        response_code_details: null,
        connection_termination_details: c.terminationDetails ?? null,
        bytes_received: c.bytesReceived,
        bytes_sent: c.bytesSent,
        duration: c.durationMs,
        upstream_service_time: null,
        x_forwarded_for: null,
        user_agent: null,
        request_id: null,
        authority: null,
        upstream_host: c.upstreamHost ?? null,
        upstream_cluster: c.upstreamCluster || null,
        route_name: null,
        downstream_remote_address: c.downstreamRemoteAddress,
        requested_server_name: c.sni ?? null,
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
