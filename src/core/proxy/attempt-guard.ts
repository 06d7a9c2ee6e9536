// A cluster's circuit breaker and outlier detector as one request meets them in forward(): each
// attempt is admitted (or turned away: 503 UO), a retry needs room under maxRetries, and every
// attempt's result is reported so failing endpoints get ejected. Clusters without connectionPool
// limits or outlierDetection still pass through, to keep their counters for the admin page.

import type { Slot } from '../policy/circuit-breaker.js';
import type { AttemptResult } from '../policy/outlier-detection.js';
import type { Cluster, ClusterTraffic } from '../policy/types.js';
import type { Cancel, ExchangeOutcome } from './upstream-exchange.js';
import { LocalReplies, type LocalReply } from './respond.js';

export type Gate = 'admitted' | 'overflow' | 'cancelled';

export class AttemptGuard {
  readonly #t: ClusterTraffic | undefined;
  #slot: Slot | undefined;
  /** A retry slot taken for the next attempt, and the one held by the attempt in flight. */
  #retryReserved = false;
  #retryInFlight = false;

  constructor(cluster: Cluster) {
    this.#t = cluster.traffic;
  }

  /**
   * Waits (if it must) for room to send one attempt. `onCancelable` receives the handle that calls
   * off a wait, so the route timeout and a departing client end it like any attempt.
   */
  admit(multiplexed: boolean, onCancelable: (c: Cancel) => void): Gate | Promise<Gate> {
    const t = this.#t;
    if (!t) return 'admitted';
    const a = t.breaker.admit(t.limits, multiplexed, onCancelable);
    if (a === 'overflow') return 'overflow';
    if (!(a instanceof Promise)) return this.#hold(a);
    return a.then((w) => (w === 'overflow' || w === 'cancelled' ? w : this.#hold(w)));
  }

  /** The answer for a gate that did not admit, or that admitted a request which has meanwhile stopped. */
  static refusal(gate: Gate, stopped: 'timeout' | 'downstream' | undefined): LocalReply {
    if (gate === 'overflow') return LocalReplies.overflow;
    return stopped === 'timeout' ? LocalReplies.timeout : stopped === 'downstream' ? LocalReplies.downstreamDisconnect : LocalReplies.upstreamReset;
  }

  /** True (and a retry slot taken) when maxRetries leaves room for one more retry. */
  mayRetry(): boolean {
    const t = this.#t;
    if (!t || this.#retryReserved) return true;
    // A retry that answered with a status the policy retries is still in flight when the next retry
    // is decided (its slot goes at done()): its slot passes to the next retry, as Envoy gives back
    // the previous retry before it counts the next one. Asked for a slot of its own, a request could
    // retry only once under maxRetries: 1, however many attempts its policy allows.
    if (this.#retryInFlight) {
      this.#retryInFlight = false;
      this.#retryReserved = true;
      return true;
    }
    if (!t.breaker.tryRetry(t.limits)) return false;
    this.#retryReserved = true;
    return true;
  }

  /**
   * Ends an attempt against `host` (`address:port`): frees its slot and tells outlier detection how
   * it went. A client that left is nobody's fault and is not counted.
   */
  done(host: string, outcome: ExchangeOutcome, status: number, stopped: 'timeout' | 'downstream' | undefined): void {
    this.#release();
    const o = this.#t?.outlier;
    if (!o) return;
    let result: AttemptResult;
    if (outcome.kind === 'responded') result = status;
    else if (outcome.kind === 'retry-status') result = outcome.status;
    else if (stopped === 'downstream') return;
    // Connect failures, resets and protocol errors are one kind to Envoy's detector; timeouts another.
    else result = stopped === 'timeout' ? 'timeout' : 'reset';
    o.detector.report(host, result, o.settings, this.#t!.hostKeys);
  }

  /** Frees whatever the request still holds (safe to call twice). */
  close(): void {
    this.#release();
    if (this.#retryReserved) {
      this.#retryReserved = false;
      this.#t?.breaker.retryDone();
    }
  }

  #hold(slot: Slot): 'admitted' {
    this.#slot = slot;
    if (this.#retryReserved) {
      this.#retryReserved = false;
      this.#retryInFlight = true;
    }
    return 'admitted';
  }

  #release(): void {
    this.#slot?.release();
    this.#slot = undefined;
    if (this.#retryInFlight) {
      this.#retryInFlight = false;
      this.#t?.breaker.retryDone();
    }
  }
}
