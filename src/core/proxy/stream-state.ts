// How a request and its response really ended, for HTTP/1 and HTTP/2 alike: the one place that reads
// Node's stream state, so that cancellation, aborted uploads and the access log's DC flag are decided
// the same way everywhere.
//
// Why this is not `res.writableFinished`: after a client resets an HTTP/2 stream (RST_STREAM, a gRPC
// cancel, a fetch abort), Node's Http2ServerResponse reports `writableFinished` true although
// `writableEnded` is false and nothing was completed. And an HTTP/2 request whose client reset the
// stream mid-upload ends its body stream cleanly ('end'), with `aborted` set: read naively, a
// cancelled PUT looks like a complete (possibly empty) one.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants } from 'node:http2';
import { bodyFromStart } from './body-read-ahead.js';

interface MaybeH2 {
  readonly stream?: { readonly rstCode?: number; readonly closed?: boolean; readonly destroyed?: boolean };
}

/** The HTTP/2 stream under a compat request or response, if it is one. */
function h2StreamOf(x: IncomingMessage | ServerResponse): MaybeH2['stream'] {
  return (x as unknown as MaybeH2).stream;
}

/**
 * True when the response was written to its end and the stream was not reset: the client got all of
 * it. For HTTP/2, a stream reset by either side after the end still counts as not completed.
 */
export function responseCompleted(res: ServerResponse): boolean {
  if (!res.writableEnded) return false;
  const stream = h2StreamOf(res);
  if (stream !== undefined) return (stream.rstCode ?? constants.NGHTTP2_NO_ERROR) === constants.NGHTTP2_NO_ERROR;
  return res.writableFinished;
}

/**
 * Calls `onGone` once if the downstream goes away before the response completed (the client closed
 * the connection or reset the stream). Returns a function that stops listening.
 */
export function onDownstreamGone(res: ServerResponse, onGone: () => void): () => void {
  const onClose = (): void => {
    if (!responseCompleted(res)) onGone();
  };
  // 'close' comes once: `on` spares the wrapper `once` makes for every request.
  res.on('close', onClose);
  return () => res.off('close', onClose);
}

/** The request is already gone (reset, aborted or its connection closed) before it was forwarded. */
export function requestGone(req: IncomingMessage): boolean {
  if (req.aborted) return true;
  const stream = h2StreamOf(req);
  if (stream !== undefined) return (stream.rstCode ?? 0) !== 0 || stream.destroyed === true;
  return req.socket?.destroyed === true && !req.complete;
}

/** The body broke off: the client reset the stream or closed the connection before its end. */
export class RequestBodyAborted extends Error {
  readonly code = 'MESHGATE_ERR_REQUEST_ABORTED';
  constructor(why: string) {
    super(`request body aborted: ${why}`);
  }
}

/**
 * The request body as the upstream gets it: every chunk as it arrives, and an error (never a clean
 * end) when the client did not finish it: an HTTP/2 stream reset, an HTTP/1 connection closed early,
 * or fewer or more bytes than the Content-Length promised. An upstream that sees the error resets its
 * stream or drops its connection, so it never takes a cut-off upload for a complete request.
 */
export async function* guardedBody(req: IncomingMessage): AsyncGenerator<Buffer> {
  const declared = req.headers['content-length'];
  const expected = declared !== undefined ? Number(declared) : undefined;
  let received = 0;
  try {
    // From the first byte: an external authorizer may have read the start of it already.
    for await (const chunk of bodyFromStart(req)) {
      received += chunk.length;
      yield chunk;
    }
  } catch (err) {
    throw new RequestBodyAborted((err as Error)?.message ?? 'read failed');
  }
  if (req.aborted || (h2StreamOf(req)?.rstCode ?? 0) !== 0) throw new RequestBodyAborted('stream reset');
  if (req.httpVersionMajor === 1 && !req.complete) throw new RequestBodyAborted('connection closed');
  if (expected !== undefined && Number.isFinite(expected) && received !== expected) {
    throw new RequestBodyAborted(`${received} bytes of a declared ${expected}`);
  }
}

/**
 * Ends a response that cannot be completed so that the client can tell: on HTTP/2 a RST_STREAM
 * with INTERNAL_ERROR and no END_STREAM before it (Node's `close(code)` would first end the stream
 * cleanly, and `destroy()` without an error resets with NO_ERROR, which clients read as a normal
 * end); on HTTP/1 the connection is closed before the body's end.
 */
export function resetResponse(res: ServerResponse): void {
  const stream = h2StreamOf(res) as (MaybeH2['stream'] & { destroy(err?: Error): void }) | undefined;
  if (stream !== undefined) {
    if (!stream.destroyed) stream.destroy(new Error('response reset'));
    return;
  }
  if (!res.destroyed) res.destroy();
}

/**
 * Resets an upstream HTTP/2 stream (a cancel): RST_STREAM `code` when the request side has already
 * ended, else RST_STREAM INTERNAL_ERROR without first ending the request (so the upstream never sees
 * a half-sent body as complete, which `close(code)` would make it).
 */
export function resetUpstreamStream(stream: { readonly destroyed: boolean; readonly writableEnded: boolean; close(code: number): void; destroy(err?: Error): void }, code: number = constants.NGHTTP2_CANCEL): void {
  if (stream.destroyed) return;
  if (stream.writableEnded) stream.close(code);
  else stream.destroy(new Error('request cancelled'));
}
