// The limits every HTTP listener applies to what a client may send, with Envoy's defaults and names
// (docs/request-limits.md): how long request headers may take (request_headers_timeout), how long a
// connection may sit with no request (idle_timeout), how many request headers (max_headers_count) and
// how many bytes of them (max_request_headers_kb), how long a URL, and which Upgrade protocols are
// let through (upgrade_configs). One object, built once from the command line, read by the accept
// stage (connection-limits.ts, the servers' own settings here) and the parse stage (stages/parse.ts).

import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Http2SecureServer } from 'node:http2';
import type { Socket } from 'node:net';
import { LocalReplies, rawLocalReply, type LocalReply } from './respond.js';

export interface HttpLimits {
  /** Envoy `request_headers_timeout`: from a connection's accept, or a request's first byte, to its complete headers. */
  readonly requestHeadersTimeoutMs: number;
  /** Envoy `common_http_protocol_options.idle_timeout`: a connection with no request in flight this long is closed. */
  readonly idleTimeoutMs: number;
  /** Envoy `stream_idle_timeout`: a request in flight whose connection moves no byte either way this long is cut. */
  readonly streamIdleTimeoutMs: number;
  /** Envoy `common_http_protocol_options.max_headers_count`. */
  readonly maxHeadersCount: number;
  /** Envoy `max_request_headers_kb`, in bytes: names, values and the request target together. */
  readonly maxRequestHeadersBytes: number;
  /** The longest request target (path and query) answered rather than refused with 414. */
  readonly maxUrlBytes: number;
  /** Envoy `upgrade_configs[].upgrade_type`, lower case: the Upgrade protocols proxied; others are refused. */
  readonly upgradeTypes: readonly string[];
}

/**
 * Envoy's limits (100 headers, 60 KiB); its idle timeout (1 h) and stream idle timeout (5 min); the 10 s header timeout Envoy's edge
 * guidance recommends (Envoy itself leaves it off, which is how slowloris connections stay forever);
 * WebSocket as the one upgrade, as Istio configures it.
 */
export const DEFAULT_HTTP_LIMITS: HttpLimits = Object.freeze({
  requestHeadersTimeoutMs: 10_000,
  idleTimeoutMs: 3_600_000,
  streamIdleTimeoutMs: 300_000,
  maxHeadersCount: 100,
  maxRequestHeadersBytes: 60 * 1024,
  maxUrlBytes: 60 * 1024,
  upgradeTypes: Object.freeze(['websocket']),
});

/**
 * What node:http's own parser is allowed to buffer: room for a URL and headers each at their limit,
 * so that a request over either limit still parses and is answered 414 or 431 knowing which; only a
 * request over both together is cut by the parser (and answered from clientErrorReply).
 */
export function parserHeaderBytes(limits: HttpLimits): number {
  return limits.maxRequestHeadersBytes + limits.maxUrlBytes + 1024;
}

/**
 * How long node:http keeps an HTTP/1 connection with no next request, on every listener, plaintext or
 * TLS. node:http announces it (`Keep-Alive: timeout=60`), and a client that reads it, as undici does
 * (so a meshgate peer in front of a sidecar), keeps its idle connections that long instead of its own
 * few seconds. Without the announcement on TLS servers (node:http2's HTTP/1 fallback has no
 * keep-alive timeout of its own), a gateway dropped every connection to a sidecar that sat idle for 4 s
 * and opened a new mTLS one at the next burst: handshakes on both sides, in the latency tail.
 */
const HTTP1_KEEP_ALIVE_MS = 60_000;

/** node:http server settings; `maxHeaderSize` is read per connection, so it can be set after creation. */
export function applyHttp1Limits(server: HttpServer | Http2SecureServer, limits: HttpLimits): void {
  const s = server as unknown as { maxHeaderSize?: number; maxHeadersCount?: number | null; requireHostHeader?: boolean; keepAliveTimeout?: number };
  s.maxHeaderSize = parserHeaderBytes(limits);
  // Never announced longer than the idle timeout, which closes the connection first (connection-limits.ts).
  s.keepAliveTimeout = limits.idleTimeoutMs > 0 ? Math.min(HTTP1_KEEP_ALIVE_MS, limits.idleTimeoutMs) : HTTP1_KEEP_ALIVE_MS;
  // An HTTP/1.1 request without Host is the parse stage's 400 (missing_host_header), logged and
  // counted like every local reply, not an answer node:http writes on its own.
  s.requireHostHeader = false;
  // One more than the limit, so that too many is seen (node:http silently drops headers past its count).
  s.maxHeadersCount = limits.maxHeadersCount + 1;
  server.on('clientError', (err: NodeJS.ErrnoException & { rawPacket?: Buffer; bytesParsed?: number }, socket: Socket) => {
    // Already answered (the parser may report the rest of the same bytes again): let the answer go out.
    if (socket.writableEnded) return;
    const reply = clientErrorReply(err);
    if (!reply || !socket.writable) return void socket.destroy();
    answerInTurn(socket as Http1Socket, reply);
  });
}

/** What node:http keeps on an HTTP/1 socket: the response being written, and the parser's message. */
type Http1Socket = Socket & {
  _httpMessage?: (ServerResponse & { req?: IncomingMessage }) | null;
  parser?: { incoming?: IncomingMessage | null } | null;
};

/**
 * Answers bytes node:http could not parse with `reply`, then closes, in the connection's turn: the
 * answers owed to requests parsed before it (pipelined) go out whole first, as Envoy reads no next
 * request before answering the last. Written at once, the error landed inside an answer being
 * streamed, or before one not yet begun, and the client took it for that request's answer. A body
 * that turns malformed after its request was handed on is not answered twice: once that request's
 * answer has begun (or gone out whole, its body still being read), the connection is only closed.
 */
function answerInTurn(socket: Http1Socket, reply: LocalReply): void {
  const failed = socket.parser?.incoming;
  const midBody = failed !== null && failed !== undefined && !failed.complete;
  const owed = socket._httpMessage;
  if (owed && !(midBody && owed.req === failed)) {
    owed.once('close', () => {
      if (!socket.destroyed && !socket.writableEnded) answerInTurn(socket, reply);
    });
    return;
  }
  if (midBody && (!owed || owed.headersSent)) return void socket.destroy();
  socket.end(rawLocalReply(reply));
  // A client that never reads the answer does not keep the connection.
  setTimeout(() => socket.destroy(), 1000).unref();
}

/** Settings for node:http2 servers: the same limits, with room to answer them with 431 rather than a reset. */
export function http2ServerLimits(limits: HttpLimits): { maxHeaderListPairs: number; settings: { maxHeaderListSize: number } } {
  return {
    // Pseudo-headers count as pairs to node:http2; room for them and one header over the limit.
    maxHeaderListPairs: limits.maxHeadersCount + 8,
    settings: { maxHeaderListSize: parserHeaderBytes(limits) },
  };
}

/**
 * node:http could not read a request (`clientError`): the answer Envoy gives, or undefined when there
 * is nobody to answer (the client went away).
 */
export function clientErrorReply(err: NodeJS.ErrnoException & { rawPacket?: Buffer; bytesParsed?: number }): LocalReply | undefined {
  switch (err.code) {
    case 'ECONNRESET':
    case 'EPIPE':
      return undefined;
    case 'HPE_HEADER_OVERFLOW':
      return overflowInRequestLine(err.rawPacket, err.bytesParsed) ? LocalReplies.uriTooLong : LocalReplies.headersTooLarge;
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return LocalReplies.requestHeadersTimeout;
    default:
      return LocalReplies.badRequest;
  }
}

/**
 * True when the parser visibly ran out of room inside the request line. The parser reports only the
 * chunk it was reading: when that chunk starts with the request line and has no line end before the
 * point of failure, the URL is what is too long. Anything else is 431, as Envoy answers it (it counts
 * the URL among the header bytes).
 */
function overflowInRequestLine(packet: Buffer | undefined, at: number | undefined): boolean {
  if (!packet || !/^[A-Z]+ /.test(packet.subarray(0, 24).toString('latin1'))) return false;
  const end = packet.indexOf('\r\n');
  return end < 0 || (at !== undefined && at <= end);
}

/**
 * The request-level limits on a parsed request (HTTP/1 and HTTP/2 alike): the URL, the number of
 * headers (pseudo-headers aside, as Envoy counts them) and their bytes. Undefined when within them.
 */
export function requestOverLimits(req: IncomingMessage, limits: HttpLimits): LocalReply | undefined {
  const url = req.url ?? '';
  if (Buffer.byteLength(url) > limits.maxUrlBytes) return LocalReplies.uriTooLong;
  const raw = req.rawHeaders;
  let count = 0;
  let bytes = url.length;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    // HTTP/2's `:path` is the URL, already counted once above.
    if (name === ':path') continue;
    bytes += name.length + raw[i + 1]!.length;
    if (name.charCodeAt(0) !== 58) count++;
  }
  if (count > limits.maxHeadersCount || bytes > limits.maxRequestHeadersBytes) return LocalReplies.headersTooLarge;
  return undefined;
}
