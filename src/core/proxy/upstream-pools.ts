// Keep-alive connection pools to upstream endpoints, one undici Pool per endpoint, shared by every
// snapshot so that a configuration reload never drops or re-opens connections. It also counts the
// requests in flight per endpoint, which the least-request load balancer reads.

import type { ClientHttp2Session } from 'node:http2';
import { Pool } from 'undici';
import { H2Sessions } from './h2-exchange.js';
import type { EndpointLoad } from '../policy/types.js';

export interface PoolOptions {
  /** Connect timeout (Istio's connectionPool.tcp.connectTimeout default: 10 s). */
  readonly connectTimeoutMs?: number;
  /** How long an unused pool lives before it is closed (endpoints that left the registry). */
  readonly idlePoolMs?: number;
}

interface Entry {
  pool: Pool;
  active: number;
  lastUsed: number;
}

export class UpstreamPools implements EndpointLoad {
  readonly #pools = new Map<string, Entry>();
  readonly #h2 = new H2Sessions();
  readonly #connectTimeoutMs: number;
  readonly #idlePoolMs: number;
  readonly #sweeper: NodeJS.Timeout;
  #closed = false;

  constructor(opts: PoolOptions = {}) {
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
    this.#idlePoolMs = opts.idlePoolMs ?? 300_000;
    this.#sweeper = setInterval(() => this.#sweep(), Math.min(this.#idlePoolMs, 60_000));
    this.#sweeper.unref();
  }

  /** `address:port` (IPv6 in brackets). */
  static key(address: string, port: number): string {
    return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
  }

  active(key: string): number {
    return this.#pools.get(key)?.active ?? 0;
  }

  /** The HTTP/2 session for an endpoint whose service port speaks http2/grpc. */
  h2Session(key: string): ClientHttp2Session {
    if (this.#closed) throw new Error('upstream pools are closed');
    return this.#h2.get(key);
  }

  /** The pool for an endpoint; `end()` closes the bracket around each request so least-request sees the load. */
  acquire(key: string): { pool: Pool; end(): void } {
    if (this.#closed) throw new Error('upstream pools are closed');
    const poolKey = key;
    let e = this.#pools.get(poolKey);
    if (!e) {
      e = {
        pool: new Pool(`http://${key}`, {
          connectTimeout: this.#connectTimeoutMs,
          // Istio's route timeout is off by default: undici must not impose its own 300 s limits.
          headersTimeout: 0,
          bodyTimeout: 0,
          keepAliveTimeout: 4_000,
        }),
        active: 0,
        lastUsed: Date.now(),
      };
      this.#pools.set(poolKey, e);
    }
    const entry = e;
    entry.active++;
    entry.lastUsed = Date.now();
    let ended = false;
    return {
      pool: entry.pool,
      end: () => {
        if (ended) return;
        ended = true;
        entry.active--;
      },
    };
  }

  #sweep(): void {
    const cutoff = Date.now() - this.#idlePoolMs;
    for (const [key, e] of this.#pools) {
      if (e.active === 0 && e.lastUsed < cutoff) {
        this.#pools.delete(key);
        void e.pool.close().catch(() => undefined);
      }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweeper);
    this.#h2.close();
    await Promise.all([...this.#pools.values()].map((e) => e.pool.close().catch(() => undefined)));
    this.#pools.clear();
  }

  async destroy(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    this.#h2.close();
    await Promise.all([...this.#pools.values()].map((e) => e.pool.destroy().catch(() => undefined)));
    this.#pools.clear();
  }
}
