// The JSON Web Key Sets of `jwksUri`s, fetched and kept for every snapshot of a proxy's life: a key
// set is fetched once, used until it is `refreshMs` old, then fetched again; a failed fetch keeps
// serving the keys last fetched (stale-if-error), and a token signed by a key the set does not hold
// (the issuer rotated) triggers one early refetch, no more often than `minRefetchMs`. A URI that has
// never answered has no keys, so its tokens fail verification: closed, never open.

import type { JSONWebKeySet } from 'jose';

/** Fetches one key set; rejects on a transport error, a non-2xx status or a body that is not a key set. */
export type JwksFetcher = (uri: string, timeoutMs: number) => Promise<JSONWebKeySet>;

export interface JwksCacheOptions {
  readonly fetch?: JwksFetcher;
  /** Epoch ms. */
  readonly now?: () => number;
  /** How long fetched keys are used before they are fetched again (Istio's default refresh is 20 min). */
  readonly refreshMs?: number;
  /** The least time between two fetches of one URI caused by an unknown key id or a failure. */
  readonly minRefetchMs?: number;
  /**
   * Told of each failed fetch (at most one per URI per `minRefetchMs`), for the proxy's log: while an
   * issuer's keys cannot be fetched its tokens are refused with 401, and without a log line the
   * operator sees only the clients' 401s. `stale`: older keys still serve.
   */
  readonly onFetchError?: (uri: string, error: string, stale: boolean) => void;
}

interface Entry {
  keys?: JSONWebKeySet;
  fetchedAt: number;
  /** When the last fetch was started, to space out refetches. */
  triedAt: number;
  inFlight?: Promise<JSONWebKeySet | undefined>;
  lastError?: string;
}

export const DEFAULT_JWKS_REFRESH_MS = 20 * 60_000;
const DEFAULT_MIN_REFETCH_MS = 30_000;
const MAX_JWKS_BYTES = 1 << 20;

export class JwksCache {
  readonly #entries = new Map<string, Entry>();
  readonly #fetch: JwksFetcher;
  readonly #now: () => number;
  readonly #refreshMs: number;
  readonly #minRefetchMs: number;
  readonly #onFetchError: NonNullable<JwksCacheOptions['onFetchError']>;

  constructor(opts: JwksCacheOptions = {}) {
    this.#fetch = opts.fetch ?? fetchJwks;
    this.#now = opts.now ?? Date.now;
    this.#refreshMs = opts.refreshMs ?? DEFAULT_JWKS_REFRESH_MS;
    this.#minRefetchMs = opts.minRefetchMs ?? DEFAULT_MIN_REFETCH_MS;
    this.#onFetchError = opts.onFetchError ?? (() => undefined);
  }

  /**
   * The keys of `uri`: cached ones while fresh; otherwise a fetch, whose failure falls back to the
   * stale keys. `force` (an unknown key id) refetches early, at most once per `minRefetchMs`.
   */
  async keys(uri: string, timeoutMs: number, force = false): Promise<JSONWebKeySet | undefined> {
    const now = this.#now();
    let e = this.#entries.get(uri);
    if (!e) {
      e = { fetchedAt: -Infinity, triedAt: -Infinity };
      this.#entries.set(uri, e);
    }
    const fresh = e.keys !== undefined && now - e.fetchedAt < this.#refreshMs;
    if (fresh && !force) return e.keys;
    // Fetched or tried a moment ago: what is held (stale keys, or none) serves, rather than one
    // fetch per request while an issuer is down or a client sends made-up key ids.
    if (now - e.triedAt < this.#minRefetchMs && e.inFlight === undefined) return e.keys;
    return (e.inFlight ??= this.#refetch(uri, e, timeoutMs));
  }

  /** What the cache holds for a URI, for the admin port and tests. */
  status(uri: string): { readonly fetchedAt?: number; readonly keys: number; readonly lastError?: string } {
    const e = this.#entries.get(uri);
    return {
      ...(e && Number.isFinite(e.fetchedAt) ? { fetchedAt: e.fetchedAt } : {}),
      keys: e?.keys?.keys.length ?? 0,
      ...(e?.lastError !== undefined ? { lastError: e.lastError } : {}),
    };
  }

  async #refetch(uri: string, e: Entry, timeoutMs: number): Promise<JSONWebKeySet | undefined> {
    e.triedAt = this.#now();
    try {
      const keys = await this.#fetch(uri, timeoutMs);
      e.keys = keys;
      e.fetchedAt = this.#now();
      delete e.lastError;
    } catch (err) {
      e.lastError = (err as Error).message;
      this.#onFetchError(uri, e.lastError, e.keys !== undefined);
    } finally {
      delete e.inFlight;
    }
    return e.keys;
  }
}

/**
 * GET with a deadline; the body must be a key set (`{"keys": [...]}`) and at most 1 MiB. The bound
 * is kept while reading: a body read whole before it was measured let an endpoint that streams
 * without end fill the proxy's memory until the deadline.
 */
export async function fetchJwks(uri: string, timeoutMs: number): Promise<JSONWebKeySet> {
  const controller = new AbortController();
  const res = await fetch(uri, { signal: AbortSignal.any([controller.signal, AbortSignal.timeout(timeoutMs)]), headers: { accept: 'application/json' }, redirect: 'follow' });
  if (!res.ok) throw new Error(`JWKS ${uri} answered ${res.status}`);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body ?? []) {
    size += chunk.byteLength;
    if (size > MAX_JWKS_BYTES) {
      controller.abort();
      throw new Error(`JWKS ${uri} is larger than 1 MiB`);
    }
    chunks.push(chunk);
  }
  return parseJwks(Buffer.concat(chunks).toString('utf8'));
}

export function parseJwks(text: string): JSONWebKeySet {
  const parsed = JSON.parse(text) as unknown;
  if (typeof parsed !== 'object' || parsed === null || !Array.isArray((parsed as { keys?: unknown }).keys)) throw new Error('not a JSON Web Key Set');
  return parsed as JSONWebKeySet;
}
