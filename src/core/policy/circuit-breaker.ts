// One cluster's circuit breaker, as Envoy keeps it per upstream cluster: connections in use,
// requests waiting for a connection, requests and retries in flight, each against the limits of
// the DestinationRule's connectionPool. Past a limit the answer is overflow at once (503 UO); only
// up to http1MaxPendingRequests requests wait, first come first served, for a connection to free up.
// The counters live outside snapshots (one breaker per cluster name), so a reload never resets them.

import type { ConnectionLimits } from './connection-limits.js';

/** A connection slot held by one attempt; `release()` gives it back (safe to call twice). */
export interface Slot {
  release(): void;
}

/** How a waiting attempt is called off (route timeout, client gone). */
export interface Cancel {
  cancel(reason: Error): void;
}

export type Admission = Slot | 'overflow';
export type Waited = Slot | 'cancelled';

export interface BreakerCounters {
  /** Attempts holding a connection (HTTP/1: one request per connection). */
  readonly connections: number;
  readonly pending: number;
  readonly requests: number;
  readonly retries: number;
  /** Since the proxy started: attempts that waited for a connection (Envoy's upstream_rq_pending_total). */
  readonly waited: number;
  /**
   * Since the proxy started: attempts that found every allowed connection busy (they waited or were
   * turned away), and attempts turned away by the pending, request and retry limits.
   */
  readonly overflows: { readonly connections: number; readonly pending: number; readonly requests: number; readonly retries: number };
}

/**
 * What one cluster's traffic is counted against: a CircuitBreaker in this process or, under the
 * gateway's `--workers`, one whose finite limits are counted by the primary for every worker
 * (core/runtime/worker-breakers.ts), whose answers therefore may come later.
 */
export interface ClusterBreaker {
  admit(limits: ConnectionLimits, multiplexed: boolean, onCancelable?: (c: Cancel) => void): Admission | Promise<Waited | 'overflow'>;
  openConnection(limits: ConnectionLimits): Admission | Promise<Admission>;
  /** Synchronous: a retry is decided the moment an answer's status arrives. */
  tryRetry(limits: ConnectionLimits): boolean;
  retryDone(): void;
  counters(): BreakerCounters;
}

interface Waiter {
  resolve(w: Waited): void;
}

export class CircuitBreaker implements ClusterBreaker {
  #connections = 0;
  #requests = 0;
  #retries = 0;
  #waited = 0;
  readonly #queue: Waiter[] = [];
  readonly #overflows = { connections: 0, pending: 0, requests: 0, retries: 0 };
  /** The limits of the newest snapshot that used this breaker; waiters are woken against them. */
  #limits: ConnectionLimits | undefined;

  /**
   * Admits one attempt: a slot at once, `overflow`, or (HTTP/1 with every allowed connection busy)
   * a promise that settles when a connection frees up or `onCancelable`'s handle is used.
   * `multiplexed` upstreams (HTTP/2) share connections, so only the request limit applies.
   */
  admit(limits: ConnectionLimits, multiplexed: boolean, onCancelable?: (c: Cancel) => void): Admission | Promise<Waited | 'overflow'> {
    this.#limits = limits;
    if (this.#requests >= limits.maxRequests) {
      this.#overflows.requests++;
      return 'overflow';
    }
    if (multiplexed) {
      this.#requests++;
      return this.#slot(false);
    }
    if (this.#connections < limits.maxConnections && this.#queue.length === 0) {
      this.#requests++;
      this.#connections++;
      return this.#slot(true);
    }
    // Envoy counts both: a connection that could not be opened, and a request that could not wait.
    if (this.#connections >= limits.maxConnections) this.#overflows.connections++;
    if (this.#queue.length >= limits.maxPendingRequests) {
      this.#overflows.pending++;
      return 'overflow';
    }
    this.#requests++;
    this.#waited++;
    return new Promise<Waited>((resolve) => {
      const waiter: Waiter = { resolve };
      this.#queue.push(waiter);
      onCancelable?.({
        cancel: () => {
          const i = this.#queue.indexOf(waiter);
          if (i < 0) return;
          this.#queue.splice(i, 1);
          this.#requests--;
          resolve('cancelled');
        },
      });
    });
  }

  /** A TCP connection (tcp_proxy): only maxConnections applies, and nothing ever waits. */
  openConnection(limits: ConnectionLimits): Admission {
    this.#limits = limits;
    if (this.#connections >= limits.maxConnections) {
      this.#overflows.connections++;
      return 'overflow';
    }
    this.#connections++;
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        this.#handOver();
      },
    };
  }

  /** Takes a retry slot if maxRetries allows; give it back with `retryDone()`. */
  tryRetry(limits: ConnectionLimits): boolean {
    if (this.#retries >= limits.maxRetries) {
      this.#overflows.retries++;
      return false;
    }
    this.#retries++;
    return true;
  }

  retryDone(): void {
    if (this.#retries > 0) this.#retries--;
  }

  counters(): BreakerCounters {
    return {
      connections: this.#connections,
      pending: this.#queue.length,
      requests: this.#requests,
      retries: this.#retries,
      waited: this.#waited,
      overflows: { ...this.#overflows },
    };
  }

  #slot(connection: boolean): Slot {
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        this.#requests--;
        if (connection) this.#handOver();
      },
    };
  }

  /** A connection came free: the oldest waiter takes it, unless the limit shrank meanwhile. */
  #handOver(): void {
    const next = this.#queue.length > 0 && this.#connections <= (this.#limits?.maxConnections ?? Infinity) ? this.#queue.shift() : undefined;
    if (next) next.resolve(this.#slot(true));
    else this.#connections--;
  }
}
