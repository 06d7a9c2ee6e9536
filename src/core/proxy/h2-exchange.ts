// One attempt against an upstream that speaks HTTP/2 (service ports declared http2 or grpc), on a
// stream of one of node:http2's sessions (h2-sessions.ts): cleartext with prior knowledge, or over
// the TLS the connector opens (mesh mTLS or DestinationRule origination). undici's HTTP/2 path hands trailers to new-style dispatch
// handlers as an empty object, and gRPC lives on its trailers (grpc-status), so this path uses
// node's own client, which carries them. Same contract as exchange(): backpressure, cancel, retry.
//
// What gRPC needs from it, besides streaming: an answer that is one HEADERS frame with END_STREAM
// ("trailers-only", most gRPC errors) goes downstream the same way, never as headers and an empty
// DATA frame; request trailers go upstream; a request body that breaks off resets the upstream
// stream (CANCEL) rather than ending it; an upstream RST_STREAM is told apart from a dropped
// connection, so the access log can say UR rather than UC.

import { constants, type ClientHttp2Stream, type IncomingHttpHeaders, type IncomingHttpStatusHeader, type OutgoingHttpHeaders } from 'node:http2';
import type { ServerResponse } from 'node:http';
import { H2Sessions, type H2Opened } from './h2-sessions.js';
import type { Cancel, ExchangeHooks, ExchangeOutcome, ExchangeRequest } from './upstream-exchange.js';
import { respondHeadersOnly } from './respond.js';
import { resetUpstreamStream } from './stream-state.js';
import { watchingUpstreamSockets } from './upstream-socket.js';

/** Options for the upstream stream: trailers are sent by hand when the request has a body. */
export type H2StreamOptions = { readonly waitForTrailers?: boolean; readonly endStream?: boolean };

/** An HTTP/2 upstream reset the stream: RST_STREAM with this code (never a connection failure). */
export class UpstreamStreamReset extends Error {
  readonly code = 'MESHGATE_UPSTREAM_RST_STREAM';
  constructor(readonly rstCode: number) {
    super(`upstream reset the stream (code ${rstCode})`);
  }
}

/** `open` starts the attempt's stream with its headers (UpstreamPools.h2Request). */
export function exchangeH2(open: (headers: OutgoingHttpHeaders, options: H2StreamOptions) => H2Opened, req: ExchangeRequest, res: ServerResponse, hooks: ExchangeHooks, onCancelable: (c: Cancel) => void): Promise<ExchangeOutcome> {
  return new Promise((resolve) => {
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (k !== 'host') headers[k] = v;
    headers[':method'] = req.method;
    headers[':path'] = req.path;
    headers[':authority'] = String(req.headers.host ?? '');
    let settled = false;
    let forwarding = false;
    let headersOnly = false;
    let retryStatus = 0;
    let cancelled = false;
    let trailers: Record<string, string> | undefined;
    const settle = (o: ExchangeOutcome): void => {
      if (settled) return;
      settled = true;
      res.off('drain', onDrain);
      resolve(o);
    };
    const hasBody = req.body !== undefined;
    const opened = open(headers, hasBody ? { waitForTrailers: true } : { endStream: true });
    if (!opened.ok) return settle({ kind: 'failed', error: opened.error });
    const stream: ClientHttp2Stream = opened.stream;
    const session = stream.session!;
    const onDrain = (): void => void stream.resume();
    const reset = (): void => {
      cancelled = true;
      resetUpstreamStream(stream);
    };
    onCancelable({ cancel: reset });
    // An answer the client's protocol cannot carry (HTTP/2 allows no status above 599) throws when it
    // is written, inside node:http2's own callbacks, where a throw would end the process. Nothing
    // reached the client: the attempt fails as an upstream protocol error.
    const unwritable = (error: unknown): void => {
      forwarding = false;
      reset();
      settle({ kind: 'failed', error: error as Error });
    };
    stream.on('response', (h, flags) => {
      try {
        onResponse(h, flags);
      } catch (error) {
        unwritable(error);
      }
    });
    const onResponse = (h: IncomingHttpHeaders & IncomingHttpStatusHeader, flags: number): void => {
      const status = Number(h[':status']);
      if (status < 200) return;
      if (watchingUpstreamSockets) hooks.sentOn?.(session.socket);
      const upstream: Record<string, string | string[] | undefined> = {};
      for (const [k, v] of Object.entries(h)) if (k.charCodeAt(0) !== 58) upstream[k] = v as string | string[];
      if (hooks.retryOnStatus(status, upstream)) {
        retryStatus = status;
        stream.resume();
        return;
      }
      forwarding = true;
      // Trailers-only (HEADERS with END_STREAM): written at the end as one HEADERS frame that ends the
      // downstream stream too.
      if ((flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0) {
        headersOnly = true;
        const out = hooks.responseHeaders(upstream);
        stream.once('end', () => {
          try {
            respondHeadersOnly(res, status, out as Record<string, string>);
          } catch (error) {
            return unwritable(error);
          }
          settle({ kind: 'responded', complete: true });
        });
        stream.resume();
        return;
      }
      res.writeHead(status, hooks.responseHeaders(upstream));
      res.on('drain', onDrain);
    };
    stream.on('data', (chunk: Buffer) => {
      if (forwarding && !headersOnly && !res.write(chunk)) stream.pause();
    });
    stream.on('trailers', (t) => {
      trailers = {};
      for (const [k, v] of Object.entries(t)) if (k.charCodeAt(0) !== 58 && v !== undefined) trailers[k] = String(v);
    });
    stream.on('end', () => {
      if (headersOnly) return;
      if (!forwarding) return settle(retryStatus ? { kind: 'retry-status', status: retryStatus } : { kind: 'failed', error: new Error('upstream stream ended without a response') });
      if (trailers && Object.keys(trailers).length > 0) {
        try {
          res.addTrailers(trailers);
        } catch {
          /* an HTTP/1 response without chunked encoding: nowhere to put them */
        }
      }
      res.end();
      settle({ kind: 'responded', complete: true });
    });
    stream.on('error', (err: NodeJS.ErrnoException) => {
      const why = upstreamReason(stream, session, err, cancelled);
      if (forwarding) return settle({ kind: 'responded', complete: false, error: why });
      // A session that never connected fails its streams: report the connect error itself.
      settle({ kind: 'failed', error: H2Sessions.failures.get(session) ?? why });
    });
    stream.on('close', () => {
      const failure = H2Sessions.failures.get(session);
      if (!settled && failure && !forwarding) return settle({ kind: 'failed', error: failure });
      const why = upstreamReason(stream, session, undefined, cancelled);
      if (!settled) settle(forwarding ? { kind: 'responded', complete: false, error: why } : { kind: 'failed', error: why });
    });
    if (hasBody) {
      stream.on('wantTrailers', () => {
        const t = req.trailers?.();
        // No trailers: Node ends the stream with an empty DATA frame instead.
        stream.sendTrailers(t && Object.keys(t).length > 0 ? t : {});
      });
      void pump(req.body!, stream).catch(() => {
        // The body broke off (the client reset or dropped its upload): the upstream must not take
        // what it got for a whole request.
        reset();
      });
    }
  });
}

/** Writes the body into the stream with backpressure; rejects when the body fails. */
async function pump(body: NonNullable<ExchangeRequest['body']>, stream: ClientHttp2Stream): Promise<void> {
  if (Buffer.isBuffer(body)) {
    stream.end(body);
    return;
  }
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (stream.destroyed) return;
    if (!stream.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          stream.off('drain', done);
          stream.off('close', done);
          resolve();
        };
        stream.once('drain', done);
        stream.once('close', done);
      });
    }
  }
  if (!stream.destroyed) stream.end();
}

/** Why the upstream stream ended without a whole answer: its RST_STREAM code, or the error itself. */
function upstreamReason(stream: ClientHttp2Stream, session: ClientHttp2Stream['session'], err: Error | undefined, cancelledHere: boolean): Error {
  const code = stream.rstCode;
  // A stream reset while its session is still up is the upstream's RST_STREAM (UR); one that ended
  // with its session is the connection going away (UC).
  if (!cancelledHere && code !== undefined && code !== constants.NGHTTP2_NO_ERROR && session && !session.destroyed) {
    if (code === constants.NGHTTP2_REFUSED_STREAM) return Object.assign(new Error('Stream closed with error code NGHTTP2_REFUSED_STREAM'), { code: 'ERR_HTTP2_STREAM_ERROR' });
    return new UpstreamStreamReset(code);
  }
  return err ?? Object.assign(new Error('upstream reset the stream'), { code: 'ECONNRESET' });
}
