// One attempt of one request against one upstream connection pool, written straight into the
// downstream response through undici's dispatch handler. This skips the response stream and
// `pipeline()` layers (each allocates an AbortController and a DOMException per request, a quarter
// of the gateway's CPU when measured) while keeping backpressure: a slow client pauses the upstream.

import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';

export type ExchangeOutcome =
  /** The response went (or is going) to the client; `complete` tells whether it finished. */
  | { readonly kind: 'responded'; readonly complete: boolean; readonly error?: Error }
  /** The upstream answered with a status the retry policy retries; nothing reached the client. */
  | { readonly kind: 'retry-status'; readonly status: number }
  /** No response headers arrived: connect failure, reset, or abort. */
  | { readonly kind: 'failed'; readonly error: Error };

export interface ExchangeRequest {
  readonly path: string;
  readonly method: string;
  readonly headers: Record<string, string | string[]>;
  /** A held body, the request itself, or a replayable body's stream for this attempt (replay-body.ts). */
  readonly body?: Buffer | NodeJS.ReadableStream | AsyncIterable<Buffer>;
  /** The request's trailers once its body has ended (sent on by HTTP/2 upstreams). */
  readonly trailers?: () => Record<string, string> | undefined;
}

export interface ExchangeHooks {
  /** Called with the upstream status and headers before anything is written; true = retry instead of answering. */
  retryOnStatus(status: number, headers: Record<string, string | string[] | undefined>): boolean;
  /** Builds downstream headers from upstream ones (hop-by-hop removal, header rules, timings). */
  responseHeaders(upstream: Record<string, string | string[] | undefined>): OutgoingHttpHeaders;
}

/** Lets the caller cancel the attempt (route timeout, downstream gone) at any moment. */
export interface Cancel {
  cancel(reason: Error): void;
}

export function exchange(pool: Pick<Dispatcher, 'dispatch'>, req: ExchangeRequest, res: ServerResponse, hooks: ExchangeHooks, onCancelable: (c: Cancel) => void): Promise<ExchangeOutcome> {
  return new Promise((resolve) => {
    let controller: Dispatcher.DispatchController | undefined;
    let cancelled: Error | undefined;
    let mode: 'waiting' | 'forwarding' | 'draining' = 'waiting';
    let retryStatus = 0;
    let settled = false;
    const settle = (o: ExchangeOutcome): void => {
      if (settled) return;
      settled = true;
      res.off('drain', onDrain);
      resolve(o);
    };
    const onDrain = (): void => controller?.resume();
    onCancelable({
      cancel(reason) {
        cancelled ??= reason;
        if (controller) controller.abort(reason);
      },
    });

    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
        if (cancelled) c.abort(cancelled);
      },
      onResponseStart(c, statusCode, headers) {
        if (statusCode < 200 && statusCode !== 101) return; // 1xx informational: wait for the real answer
        if (hooks.retryOnStatus(statusCode, headers)) {
          mode = 'draining';
          retryStatus = statusCode;
          return;
        }
        mode = 'forwarding';
        res.writeHead(statusCode, hooks.responseHeaders(headers));
        res.on('drain', onDrain);
        void c;
      },
      onResponseData(c, chunk) {
        if (mode !== 'forwarding') return;
        if (!res.write(chunk)) c.pause();
      },
      onResponseEnd(_c, trailers) {
        if (mode === 'draining') return settle({ kind: 'retry-status', status: retryStatus });
        // Trailers (gRPC's grpc-status) travel on when the downstream protocol can carry them.
        if (trailers && Object.keys(trailers).length > 0) {
          try {
            res.addTrailers(trailers as Record<string, string>);
          } catch {
            /* HTTP/1 response without chunked encoding: nowhere to put them */
          }
        }
        res.end();
        settle({ kind: 'responded', complete: true });
      },
      onResponseError(_c, error) {
        if (mode === 'forwarding') return settle({ kind: 'responded', complete: false, error });
        settle({ kind: 'failed', error: cancelled ?? error });
      },
    };
    try {
      pool.dispatch({ path: req.path, method: req.method as Dispatcher.HttpMethod, headers: req.headers, body: req.body as Dispatcher.DispatchOptions['body'] }, handler);
    } catch (error) {
      settle({ kind: 'failed', error: error as Error });
    }
  });
}
