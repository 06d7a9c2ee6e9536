// A proxy's one Redis connection for shared rate-limit counters, and what it knows about Redis
// being there. Commands never wait for a connection (no offline queue, a short timeout): while Redis
// is away the limiters decide in memory at once (their insurance limiters), and ioredis keeps
// reconnecting in the background. An outage is logged when it starts and when it ends, once each.

import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

export interface RedisLinkOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://` for TLS. */
  readonly url: string;
  readonly logger: Logger;
  /** How long a rate-limit command may take before the request is decided locally (default 500 ms). */
  readonly commandTimeoutMs?: number;
}

export interface RedisLinkStats {
  readonly url: string;
  readonly up: boolean;
  /** Times Redis went away since the gateway started (an unreachable Redis at start counts once). */
  readonly outages: number;
  /** Limit checks decided in memory because Redis did not answer. */
  readonly localDecisions: number;
}

export class RedisLink {
  readonly client: Redis;
  readonly #log: Logger;
  readonly #shownUrl: string;
  #up = false;
  /** True from the first failure of an outage until Redis is ready again: the outage is already logged. */
  #down = false;
  #outages = 0;
  #localDecisions = 0;
  #closed = false;

  constructor(opts: RedisLinkOptions) {
    this.#log = opts.logger;
    this.#shownUrl = redactUrl(opts.url);
    // Loaded here, not at start: a proxy without --redis (every sidecar, most gateways) never pays
    // for the client's code in memory.
    const { Redis: RedisClient } = createRequire(import.meta.url)('ioredis') as typeof import('ioredis');
    this.client = new RedisClient(opts.url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      connectTimeout: 2000,
      commandTimeout: opts.commandTimeoutMs ?? 500,
      // Back off to one attempt a second: an outage ends within a second of Redis returning.
      retryStrategy: (times) => Math.min(times * 100, 1000),
    });
    this.client.on('ready', () => this.#markUp());
    this.client.on('close', () => this.#markDown(undefined));
    // Without a listener ioredis prints every failed reconnect; the outage is logged once instead.
    this.client.on('error', (err: Error) => this.#markDown(err));
  }

  get up(): boolean {
    return this.#up;
  }

  /** Connects once; resolves either way, since the gateway serves with local limits until Redis answers. */
  async start(): Promise<void> {
    await this.client.connect().catch(() => undefined);
  }

  /** A request was decided in memory because Redis did not answer (a timeout counts, not only a lost connection). */
  noteLocalDecision(err?: unknown): void {
    this.#localDecisions++;
    if (!this.#down) this.#markDown(err instanceof Error ? err : undefined);
  }

  stats(): RedisLinkStats {
    return { url: this.#shownUrl, up: this.#up, outages: this.#outages, localDecisions: this.#localDecisions };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#up = false;
    // QUIT when connected; otherwise stop reconnecting at once.
    if (this.client.status === 'ready') await this.client.quit().catch(() => this.client.disconnect());
    else this.client.disconnect();
  }

  #markUp(): void {
    this.#up = true;
    if (this.#down) this.#log.info({ redis: this.#shownUrl, outages: this.#outages }, 'Redis is reachable again: rate limits are shared across proxies again');
    else this.#log.info({ redis: this.#shownUrl }, 'Redis connected: rate limits with store redis are shared across proxies');
    this.#down = false;
  }

  #markDown(err: Error | undefined): void {
    this.#up = false;
    if (this.#down || this.#closed) return;
    this.#down = true;
    this.#outages++;
    this.#log.warn(
      { redis: this.#shownUrl, err: err?.message, outages: this.#outages },
      'Redis is unreachable: each proxy enforces rate limits with store redis in its own memory until Redis returns',
    );
  }
}

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}
