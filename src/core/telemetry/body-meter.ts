// What a request's body and answer carried, noted as they pass for its access-log line: the body
// bytes each way, gRPC messages, and the response's headers and trailers as they were written (for
// Envoy's %RESP(…)% and %TRAILER(…)%: Node keeps the headers of a writeHead(status, headers) only in
// the bytes it wrote, and trailers not at all).

import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { GrpcMessageCounter } from './grpc-messages.js';
import type { RequestRecord } from './access-log.js';

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
export function meterBodies(req: IncomingMessage, res: ServerResponse, record: RequestRecord): void {
  const messages = record.grpc ? (record.grpcMessages = { request: new GrpcMessageCounter(), response: new GrpcMessageCounter() }) : undefined;
  const meter: Meter = { record, req, res, messages, h2: req.httpVersionMajor >= 2, push: req.push, write: res.write, end: res.end, addTrailers: res.addTrailers, writeHead: res.writeHead, headers: undefined, trailers: undefined };
  (req as unknown as Metered)[METER] = meter;
  (res as unknown as Metered)[METER] = meter;
  req.push = meteredPush;
  res.write = meteredWrite as ServerResponse['write'];
  res.writeHead = meteredWriteHead as ServerResponse['writeHead'];
  res.addTrailers = meteredAddTrailers;
  res.end = meteredEnd as ServerResponse['end'];
}

type Written = OutgoingHttpHeaders | readonly (string | string[])[];

/** A header in what writeHead was given (an object, or a flat [name, value, …] list); names are compared in lower case. */
function headerIn(h: Written | undefined, name: string): string | undefined {
  if (h === undefined) return undefined;
  if (Array.isArray(h)) {
    for (let i = 0; i + 1 < h.length; i += 2) if (String(h[i]).toLowerCase() === name) return String(h[i + 1]);
    return undefined;
  }
  const o = h as OutgoingHttpHeaders;
  let v = o[name];
  if (v === undefined) for (const k in o) if (k.toLowerCase() === name) v = o[k];
  return v === undefined ? undefined : Array.isArray(v) ? v.join(',') : String(v);
}

/** A response header as it went out (`name` in lower case), for %RESP(…)%. */
export function responseHeader(res: ServerResponse, name: string): string | undefined {
  const m = (res as unknown as Partial<Metered>)[METER];
  const v = headerIn(m?.headers, name) ?? res.getHeader(name);
  return v === undefined ? undefined : Array.isArray(v) ? v.join(',') : String(v);
}

/** Every response header as it went out, names in lower case (CEL's `response.headers`). */
export function responseHeaderMap(res: ServerResponse): ReadonlyMap<string, string> {
  const out = new Map<string, string>();
  const add = (k: string, v: unknown): void => {
    if (v !== undefined) out.set(k.toLowerCase(), Array.isArray(v) ? v.join(',') : String(v));
  };
  for (const [k, v] of Object.entries(res.getHeaders())) add(k, v);
  const h = (res as unknown as Partial<Metered>)[METER]?.headers;
  if (Array.isArray(h)) for (let i = 0; i + 1 < h.length; i += 2) add(String(h[i]), h[i + 1]);
  else if (h) for (const [k, v] of Object.entries(h)) add(k, v);
  return out;
}

/** A response trailer as it went out (`name` in lower case), for %TRAILER(…)%. */
export function responseTrailer(res: ServerResponse, name: string): string | undefined {
  return headerIn((res as unknown as Partial<Metered>)[METER]?.trailers, name);
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
  readonly writeHead: ServerResponse['writeHead'];
  /** What writeHead was given (not kept by Node when no header was set before). */
  headers: Written | undefined;
  trailers: Written | undefined;
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

function meteredWriteHead(this: ServerResponse, status: number, ...rest: unknown[]): ServerResponse {
  const m = (this as unknown as Metered)[METER];
  // writeHead(status, headers) or writeHead(status, reason, headers).
  const h = typeof rest[0] === 'string' ? rest[1] : rest[0];
  if (h !== undefined && h !== null && typeof h === 'object') m.headers = h as Written;
  return (m.writeHead as (...a: unknown[]) => ServerResponse).call(this, status, ...rest);
}

function meteredAddTrailers(this: ServerResponse, headers: Parameters<ServerResponse['addTrailers']>[0]): void {
  const m = (this as unknown as Metered)[METER];
  m.trailers = headers as Written;
  if (m.record.grpc) {
    const status = headerIn(headers as Written, 'grpc-status');
    if (status !== undefined) m.record.grpcStatus = status;
  }
  m.addTrailers.call(this, headers);
}

/** grpc-status from a trailers-only answer's headers, or from the trailers (meterBodies notes them). */
export function grpcStatusOf(res: ServerResponse): string | undefined {
  return responseHeader(res, 'grpc-status');
}

function byteLength(chunk: unknown, encoding: unknown): number {
  if (typeof chunk === 'string') return Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  return ArrayBuffer.isView(chunk) ? chunk.byteLength : 0;
}
