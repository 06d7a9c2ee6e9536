// The request record every access-log line, metric and span is written from, filled in as the
// request goes and handed to the access log when its response closes. A connection the proxy passes
// through as TCP gets a line of its own when it closes (TcpLogLine), as Envoy's tcp_proxy logs it:
// the HTTP operators empty, response code 0, the bytes and duration of the connection. The formats
// are access-log-format.ts's, the files access-log-files.ts's.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WorkloadInfo } from './workload.js';
import { responseCompleted } from '../proxy/stream-state.js';
import type { GrpcMessageCounter } from './grpc-messages.js';
import { grpcStatusOf, meterBodies } from './body-meter.js';
import type { UpstreamSocketEnds } from '../proxy/upstream-socket.js';
import type { DryRunResult } from '../policy/authorization.js';

/** Filled in as the request goes; written once when the response ends. */
export interface RequestRecord {
  readonly startTime: Date;
  readonly method: string;
  /** The path (and query) as it went upstream: a route's rewrite replaces it, as Envoy's router replaces :path. */
  path: string;
  /** The path before a rewrite (Envoy's x-envoy-original-path), set only when one changed it. */
  originalPath?: string;
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
  /** The ends of the connection the last attempt went out on; known only while a format reads them (upstream-socket.ts). */
  upstreamConnection?: UpstreamSocketEnds;
  /** Why the last attempt's connection could not be made, as Envoy words it (transport-failure.ts). */
  upstreamTransportFailureReason?: string;
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
  /** Its response, for %RESP(…)% and %TRAILER(…)% (body-meter.ts keeps what was written). */
  response?: ServerResponse;
  /** The request's trace span, ended from this record (tracing.ts). */
  span?: { end(record: RequestRecord): void };
  /** What the workload's dry-run AuthorizationPolicies would have decided (authorize stage), for spans and metrics. */
  rbacDryRun?: RbacDryRun;
}

/** Dry-run results of one request, and the stat prefix of the listener that evaluated them (Envoy's `inbound_0.0.0.0_8080`). */
export interface RbacDryRun {
  readonly statPrefix: string;
  readonly results: readonly DryRunResult[];
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
    originalPath: undefined,
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
    upstreamConnection: undefined,
    upstreamTransportFailureReason: undefined,
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
    response: undefined,
    span: undefined,
    rbacDryRun: undefined,
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
  record.response = res;
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
  /** The ends of the connection to the upstream, once it was made. */
  readonly upstreamConnection?: UpstreamSocketEnds;
  /** Why the connection to the upstream could not be made, as Envoy words it. */
  readonly upstreamTransportFailureReason?: string;
  readonly upstreamCluster: string;
  readonly downstreamRemoteAddress: string;
  /** Where the client connected: the listener's address, or the original destination of a captured connection. */
  readonly downstreamLocalAddress?: string;
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
