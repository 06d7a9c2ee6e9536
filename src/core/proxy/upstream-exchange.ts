// One attempt of one request against one upstream connection pool, written straight into the
// downstream response through undici's dispatch handler. This skips the response stream and
// `pipeline()` layers (each allocates an AbortController and a DOMException per request, a quarter
// of the gateway's CPU when measured) while keeping backpressure: a slow client pauses the upstream.
// The handler is one object per attempt whose methods live on its class: undici calls them for
// every request, and a handler made of closures cost a dozen allocations per request
// (docs/benchmarks.md, "The plain-HTTP path").

import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Dispatcher } from 'undici';
import { startingOn, watchingUpstreamSockets, type SentOn } from './upstream-socket.js';

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
  /** The connection the attempt went out on; told only while a log format reads it (upstream-socket.ts). */
  sentOn?(socket: Socket): void;
}

/** Lets the caller cancel the attempt (route timeout, downstream gone) at any moment. */
export interface Cancel {
  cancel(reason: Error): void;
}

/** The outcome every attempt ends with, as a promise (relay.ts) or a callback (forward.ts). */
export function exchange(pool: Pick<Dispatcher, 'dispatch'>, req: ExchangeRequest, res: ServerResponse, hooks: ExchangeHooks, onCancelable: (c: Cancel) => void): Promise<ExchangeOutcome> {
  return new Promise((resolve) => startExchange(pool, req, res, hooks, onCancelable, resolve));
}

/** Dispatches the attempt; `onOutcome` is called exactly once, when it ends (at once if it cannot start). */
export function startExchange(pool: Pick<Dispatcher, 'dispatch'>, req: ExchangeRequest, res: ServerResponse, hooks: ExchangeHooks, onCancelable: (c: Cancel) => void, onOutcome: (o: ExchangeOutcome) => void): void {
  const attempt = new Http1Attempt(res, hooks, onOutcome);
  onCancelable(attempt);
  try {
    pool.dispatch({ path: req.path, method: req.method as Dispatcher.HttpMethod, headers: req.headers, body: req.body as Dispatcher.DispatchOptions['body'] }, attempt);
  } catch (error) {
    attempt.settle({ kind: 'failed', error: error as Error });
  }
}

type Mode = 'waiting' | 'forwarding' | 'draining';

const COMPLETE: ExchangeOutcome = Object.freeze({ kind: 'responded', complete: true });

class Http1Attempt implements Dispatcher.DispatchHandler, Cancel, SentOn {
  readonly #res: ServerResponse;
  readonly #hooks: ExchangeHooks;
  readonly #onOutcome: (o: ExchangeOutcome) => void;
  #controller: Dispatcher.DispatchController | undefined;
  #cancelled: Error | undefined;
  #mode: Mode = 'waiting';
  /** The status being forwarded, or retried. */
  #status = 0;
  #retryStatus = 0;
  #settled = false;
  /** Added to the response while forwarding (a slow client's backpressure), removed when settled. */
  #onDrain: (() => void) | undefined;

  constructor(res: ServerResponse, hooks: ExchangeHooks, onOutcome: (o: ExchangeOutcome) => void) {
    this.#res = res;
    this.#hooks = hooks;
    this.#onOutcome = onOutcome;
  }

  settle(o: ExchangeOutcome): void {
    if (this.#settled) return;
    this.#settled = true;
    if (this.#onDrain) this.#res.off('drain', this.#onDrain);
    this.#onOutcome(o);
  }

  cancel(reason: Error): void {
    this.#cancelled ??= reason;
    this.#controller?.abort(reason);
  }

  onRequestStart(c: Dispatcher.DispatchController): void {
    this.#controller = c;
    if (this.#cancelled) c.abort(this.#cancelled);
    // Aborted, undici writes nothing and says nothing of it: only a request going out is noted.
    else if (watchingUpstreamSockets) startingOn(this);
  }

  sentOn(socket: Socket): void {
    this.#hooks.sentOn?.(socket);
  }

  onResponseStart(c: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    if (statusCode < 200 && statusCode !== 101) return; // 1xx informational: wait for the real answer
    if (this.#hooks.retryOnStatus(statusCode, headers)) {
      this.#mode = 'draining';
      this.#retryStatus = statusCode;
      return;
    }
    // Forwarding once the head is written: one the client's protocol cannot carry (a status above
    // 599 to an HTTP/2 client) throws, undici fails the attempt, and nothing reached the client.
    this.#res.writeHead(statusCode, this.#hooks.responseHeaders(headers));
    this.#mode = 'forwarding';
    this.#status = statusCode;
  }

  onResponseData(c: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#mode !== 'forwarding' || this.#res.write(chunk)) return;
    c.pause();
    // Listened for only once a write has filled the response's buffer, which most answers never do.
    if (!this.#onDrain) {
      this.#onDrain = () => c.resume();
      this.#res.on('drain', this.#onDrain);
    }
  }

  onResponseEnd(_c: Dispatcher.DispatchController, trailers: Record<string, string | string[] | undefined>): void {
    if (this.#mode === 'draining') return this.settle({ kind: 'retry-status', status: this.#retryStatus });
    // Trailers (gRPC's grpc-status) travel on when the downstream protocol can carry them.
    if (trailers && hasAny(trailers)) {
      try {
        this.#res.addTrailers(trailers as Record<string, string>);
      } catch {
        /* HTTP/1 response without chunked encoding: nowhere to put them */
      }
    }
    this.#res.end();
    this.settle(COMPLETE);
  }

  onResponseError(_c: Dispatcher.DispatchController, error: Error): void {
    if (this.#mode === 'forwarding') {
      // A 204 or 304 never has a body, but may say the Content-Length its body would have had
      // (RFC 9110 §8.6); undici takes the missing bytes for a short body and fails the response,
      // which is whole: it is answered as it came, not cut off.
      if ((this.#status === 304 || this.#status === 204) && (error as { code?: string }).code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') {
        this.#res.end();
        return this.settle(COMPLETE);
      }
      return this.settle({ kind: 'responded', complete: false, error });
    }
    this.settle({ kind: 'failed', error: this.#cancelled ?? error });
  }
}

function hasAny(o: object): boolean {
  for (const _ in o) return true;
  return false;
}
