// How many keys one limit counts in this process at once. rate-limiter-flexible's memory store keeps
// each key until its window ends, so keys a client varies (a header's value, a new connection, an
// address) held memory in proportion to its request rate times the interval: about 400 bytes a key,
// 200,000 keys 77 MB, and a 1 h interval keeps them an hour. Past the bound, a key not already in
// its window is counted under one shared overflow key until older windows end: the clients it brings
// share one window (limited together, never let through uncounted) instead of the proxy's memory
// growing. Envoy's local rate limit bounds its dynamic descriptors with an LRU instead, whose evicted
// buckets start over full.

/** Keys in their window per limit; at some 400 bytes each, about 40 MB at most. */
export const MAX_LIVE_KEYS = 100_000;

/** The key every request past the bound is counted under (no header value or address can spell it). */
export const OVERFLOW_KEY = '\u0000overflow';

export class LiveKeys {
  /** Key → when its window ends, in the order the windows began, which is the order they end (one length). */
  readonly #until = new Map<string, number>();

  constructor(
    private readonly windowMs: number,
    private readonly max = MAX_LIVE_KEYS,
    private readonly now: () => number = Date.now,
  ) {}

  /** The key to count a request for `key` under: itself, or OVERFLOW_KEY when the bound is reached. */
  admit(key: string): string {
    const now = this.now();
    const until = this.#until.get(key);
    if (until !== undefined && until > now) return key;
    // Windows that have ended, oldest first: each is looked at once.
    for (const [k, end] of this.#until) {
      if (end > now) break;
      this.#until.delete(k);
    }
    if (this.#until.size >= this.max) return OVERFLOW_KEY;
    this.#until.set(key, now + this.windowMs);
    return key;
  }

  get size(): number {
    return this.#until.size;
  }
}
