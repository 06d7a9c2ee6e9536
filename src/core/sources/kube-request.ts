// The HTTP calls meshgate makes to the API server, all through @kubernetes/client-node's KubeConfig
// (so every auth method it knows works): one request (a list is a series of them: kube-list.ts), the
// client's own watch, wrapped so that closing can abort every watch still open, and single calls (get,
// create, replace, TokenReview) for the few objects meshgate writes or asks about.

import { HttpMethod, RequestContext, Watch, type KubeConfig } from '@kubernetes/client-node';
import { STATUS_CODES } from 'node:http';
import { fetch, type Dispatcher } from 'undici';
import { isRecord } from '../config/load.js';

/** An answer other than 200 from the API server; `statusCode` is what ListWatch and we look at. */
export class KubeApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly path: string,
    detail: string,
    method = 'GET',
  ) {
    super(`${statusCode} ${STATUS_CODES[statusCode] ?? 'error'} from ${method} ${path}${detail ? `: ${detail}` : ''}`);
    this.name = 'KubeApiError';
  }
}

export type KubeMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** The server URL of the kubeconfig's current context, for messages. */
export function serverOf(kc: KubeConfig): string {
  return kc.getCurrentCluster()?.server ?? '(no current cluster in the kubeconfig)';
}

/**
 * One call to the API server with the kubeconfig's credentials: the status and the body's text.
 * Network failures throw; every HTTP status is the caller's to judge.
 */
export async function kubeRequest(
  kc: KubeConfig,
  method: KubeMethod,
  path: string,
  opts: { readonly body?: unknown; readonly signal?: AbortSignal; readonly timeoutMs?: number; readonly connection?: SharedConnection } = {},
): Promise<{ status: number; text: string }> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const ctx = new RequestContext(cluster.server + path, HttpMethod[method]);
  await kc.applySecurityAuthentication(ctx);
  // The kubeconfig makes a fresh dispatcher per request when TLS options apply (it connects only when
  // used); close it after use so its idle connection does not linger, unless the request shares one.
  const own = ctx.getDispatcher();
  const shared = opts.connection;
  if (shared && !shared.dispatcher) shared.dispatcher = own;
  const dispatcher = shared?.dispatcher ?? own;
  // A call that hangs must not hold its caller forever: give up after a minute.
  const abort = new AbortController();
  const onAbort = (): void => abort.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const ms = opts.timeoutMs ?? 60_000;
  const timer = setTimeout(() => abort.abort(new Error(`${method} ${path}: no answer in ${ms / 1000} s`)), ms);
  try {
    if (opts.signal?.aborted) throw new Error('closed');
    const res = await fetch(ctx.getUrl(), {
      method,
      // A PATCH body is a JSON patch (RFC 6902): the one patch type every API server serves for every kind.
      headers: { ...ctx.getHeaders(), accept: 'application/json', ...(opts.body !== undefined ? { 'content-type': method === 'PATCH' ? 'application/json-patch+json' : 'application/json' } : {}) },
      ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
      ...(dispatcher ? { dispatcher } : {}),
      signal: abort.signal,
    });
    return { status: res.status, text: await res.text() };
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
    if (own !== shared?.dispatcher) await own?.close().catch(() => undefined);
  }
}

/**
 * One connection for a series of requests (the pages of one list: one TLS handshake, not one a
 * page). The first request's dispatcher is kept here; `close()` ends it once the series is done.
 */
export class SharedConnection {
  dispatcher: Dispatcher | undefined;

  async close(): Promise<void> {
    await this.dispatcher?.close().catch(() => undefined);
    this.dispatcher = undefined;
  }
}

/** A JSON answer with the status expected, or a KubeApiError that says what the server said. */
export async function kubeJson(
  kc: KubeConfig,
  method: KubeMethod,
  path: string,
  expect: readonly number[],
  body?: unknown,
  opts: { readonly signal?: AbortSignal; readonly timeoutMs?: number } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await kubeRequest(kc, method, path, body === undefined ? opts : { ...opts, body });
  if (!expect.includes(res.status)) throw new KubeApiError(res.status, path, statusMessage(res.text), method);
  let parsed: unknown;
  try {
    parsed = JSON.parse(res.text);
  } catch {
    throw new Error(`${method} ${path}: the answer is not JSON`);
  }
  if (!isRecord(parsed)) throw new Error(`${method} ${path}: the answer is not an object`);
  return { status: res.status, body: parsed };
}

/** How long a watch may stay silent before it is taken for dead (bookmarks come about once a minute). */
export const WATCH_SILENCE_MS = 90_000;

/** The server-side lifetime asked for each watch: 5 to 10 minutes, as client-go picks it. */
export function watchTimeoutSeconds(random: () => number = Math.random): number {
  return 300 + Math.floor(random() * 300);
}

/**
 * The client's Watch, keeping track of open watch requests: ListWatch.stop() cannot abort a watch
 * whose response headers have not arrived yet, and it may start a new one after a back-off delay.
 * After abortAll(), every watch is aborted and no new one is opened.
 */
export class TrackedWatch extends Watch {
  readonly #open = new Set<AbortController>();
  // Watches still connecting: the client sends the request only after an await, so one begun just
  // before abortAll() can reach the server after it; close waits for them.
  readonly #connecting = new Set<Promise<unknown>>();
  #closed = false;

  constructor(
    kc: KubeConfig,
    private readonly onConnected: (path: string) => void,
  ) {
    super(kc);
    // The client ends a watch that has been silent this long (its default, 30 s, reopens every
    // quiet collection twice a minute). A live watch hears at least a bookmark about once a minute;
    // one silent for longer is a dead connection, reopened from the last version seen.
    (this as unknown as { requestTimeoutMs: number }).requestTimeoutMs = WATCH_SILENCE_MS;
  }

  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    if (this.#closed) {
      const c = new AbortController();
      c.abort();
      queueMicrotask(() => done(null));
      return c;
    }
    let finished = false;
    let controller: AbortController | undefined;
    // As client-go asks: bookmarks move the version a quiet watch resumes from (so that a reconnect
    // after hours without a change is no 410 and no re-list), and the server ends each watch after
    // 5–10 minutes, spread so that many clients do not reconnect at once.
    const params = { ...queryParams, allowWatchBookmarks: true, timeoutSeconds: watchTimeoutSeconds() };
    const connecting = super.watch(path, params, callback, (err: unknown) => {
      finished = true;
      if (controller) this.#open.delete(controller);
      done(err);
    });
    this.#connecting.add(connecting);
    try {
      controller = await connecting;
    } catch (err) {
      // Credentials that cannot be had (an exec plugin failing, a token file gone) throw before the
      // request; ListWatch calls this from its own done callback, where a throw would be an
      // unhandled rejection: report it as the watch's failure instead.
      finished = true;
      controller = new AbortController();
      controller.abort();
      queueMicrotask(() => done(err));
    } finally {
      this.#connecting.delete(connecting);
    }
    if (!finished) {
      if (this.#closed) controller.abort();
      else {
        this.#open.add(controller);
        this.onConnected(path);
      }
    }
    return controller;
  }

  abortAll(): void {
    this.#closed = true;
    for (const c of this.#open) c.abort();
    this.#open.clear();
  }

  /** Resolves once no watch is half-way through connecting (each one aborts itself as it connects). */
  async settled(): Promise<void> {
    while (this.#connecting.size > 0) await Promise.allSettled([...this.#connecting]);
  }
}

/**
 * The waits ListWatch makes between watch reconnects, cut short at close() so that nothing lingers:
 * `delay` is its `delayFn`; after `wakeAll()` every wait, and any later one, ends at once.
 */
export class WakeableDelays {
  readonly #waiting = new Set<() => void>();
  #closed = false;

  readonly delay = (ms: number): Promise<void> =>
    new Promise<void>((resolve) => {
      if (this.#closed) return resolve();
      const wake = (): void => {
        clearTimeout(t);
        this.#waiting.delete(wake);
        resolve();
      };
      const t = setTimeout(wake, ms);
      this.#waiting.add(wake);
    });

  wakeAll(): void {
    this.#closed = true;
    for (const wake of [...this.#waiting]) wake();
  }
}

/**
 * Which failures of one collection are worth a warning: a new cause, and the same cause again every
 * `everyMs` while it lasts, so that a list or watch failing for hours (a missing RBAC rule, an API
 * server gone) keeps saying that the configuration served is getting old instead of going quiet
 * after its first warning. The retries between stay at debug level.
 */
export class FailureWarnings {
  #text: string | undefined;
  #warnedAt = 0;
  #since: number | undefined;

  constructor(
    private readonly everyMs = 5 * 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** A failure with this text: whether to warn, and for how long (seconds) the collection has failed. */
  failed(text: string): { warn: boolean; failingForS: number } {
    const t = this.now();
    this.#since ??= t;
    const warn = text !== this.#text || t - this.#warnedAt >= this.everyMs;
    if (warn) this.#warnedAt = t;
    this.#text = text;
    return { warn, failingForS: Math.round((t - this.#since) / 1000) };
  }

  /** It worked again. */
  recovered(): void {
    this.#text = undefined;
    this.#since = undefined;
  }
}

/** One line for logs and errors: the status and path, or the network cause (ECONNREFUSED …). */
export function describeError(err: unknown): string {
  if (err instanceof KubeApiError) return err.message;
  if (!(err instanceof Error)) return String(err);
  const cause = (err as Error & { cause?: unknown }).cause;
  const statusCode = (err as Error & { statusCode?: unknown }).statusCode;
  let text = typeof statusCode === 'number' ? `${statusCode} ${err.message}` : err.message;
  if (cause instanceof Error) text += `: ${cause.message}`;
  else if (isRecord(cause) && typeof cause.code === 'string') text += `: ${cause.code}`;
  return text;
}

/** The HTTP status of an error from a list or a watch, if it has one. */
export function statusOf(err: unknown): number | undefined {
  if (!isRecord(err) && !(err instanceof Error)) return undefined;
  const s = (err as { statusCode?: unknown }).statusCode;
  return typeof s === 'number' ? s : undefined;
}

/** The API server explains a refusal in a Status object: `pods is forbidden: User "…" cannot list …`. */
export function statusMessage(text: string): string {
  try {
    const body: unknown = JSON.parse(text);
    if (isRecord(body) && typeof body.message === 'string') return body.message;
  } catch {
    // not JSON: a proxy's error page, say
  }
  return text.slice(0, 200).trim();
}
