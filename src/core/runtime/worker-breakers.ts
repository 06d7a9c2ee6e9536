// Circuit-breaker limits that hold for the gateway as a whole under `--workers`, as Envoy's hold for
// all its worker threads: the primary keeps one CircuitBreaker per limited cluster and the workers
// ask it over the cluster channel for each connection slot, and give the slot back when the request
// ends (completion, abort, upstream error alike: the slot's release is the one way out).
//
// Only clusters with a finite connection, pending or request limit pay that round trip; every other
// cluster counts in the worker, as before. maxRetries is the exception: a retry is decided the moment
// an answer's status arrives, synchronously, so each worker counts its share, ceil(maxRetries / N).
// Security decisions fail closed: a worker that cannot reach the primary turns limited traffic away
// (503 UO) rather than admit it uncounted. When a worker dies, the primary frees what it held.

import type { Worker } from 'node:cluster';
import { CircuitBreaker, type Admission, type BreakerCounters, type Cancel, type ClusterBreaker, type Slot, type Waited } from '../policy/circuit-breaker.js';
import { hasFiniteLimits, MAX_UINT32, type ConnectionLimits } from '../policy/connection-limits.js';

const TAG = 'breaker';

/** The counted limits as they travel: connections, pending, requests. */
type Counted = readonly [number, number, number];

/** Worker → primary. */
type Ask =
  | { readonly meshgate: typeof TAG; readonly op: 'admit'; readonly id: number; readonly cluster: string; readonly limits: Counted; readonly mux: boolean }
  | { readonly meshgate: typeof TAG; readonly op: 'open'; readonly id: number; readonly cluster: string; readonly limits: Counted }
  | { readonly meshgate: typeof TAG; readonly op: 'cancel' | 'release'; readonly id: number };

/** Primary → worker. */
interface Answer {
  readonly meshgate: typeof TAG;
  readonly id: number;
  readonly verdict: 'admitted' | 'overflow' | 'cancelled';
}

function isTagged<T>(m: unknown): m is T {
  return typeof m === 'object' && m !== null && (m as { meshgate?: unknown }).meshgate === TAG;
}

function counted(l: ConnectionLimits): Counted {
  return [l.maxConnections, l.maxPendingRequests, l.maxRequests];
}

function fromCounted(c: Counted): ConnectionLimits {
  const n = (v: unknown): number => (typeof v === 'number' && v >= 0 ? v : 0);
  // Anything unreadable counts as a limit of 0: refused, never let through uncounted.
  return { maxConnections: n(c[0]), maxPendingRequests: n(c[1]), maxRequests: n(c[2]), maxRetries: MAX_UINT32, maxRequestsPerConnection: 0, connectTimeoutMs: 0 };
}

/** The worker's end of the channel: one per process, shared by every cluster's breaker. */
interface Channel {
  send(ask: Ask): boolean;
  /** Resolves with the primary's verdict on `id` ('overflow' if the primary goes away first). */
  expect(id: number): Promise<Answer['verdict']>;
}

/** The channel of this worker process to its primary. */
export function primaryChannel(proc: NodeJS.Process = process): Channel {
  const waiting = new Map<number, (v: Answer['verdict']) => void>();
  let gone = false;
  proc.on('message', (m: unknown) => {
    if (!isTagged<Answer>(m)) return;
    const settle = waiting.get(m.id);
    waiting.delete(m.id);
    settle?.(m.verdict);
  });
  proc.once('disconnect', () => {
    gone = true;
    for (const settle of waiting.values()) settle('overflow');
    waiting.clear();
  });
  return {
    send: (ask) => {
      if (gone || !proc.connected || !proc.send) return false;
      proc.send(ask, undefined, {}, () => undefined);
      return true;
    },
    expect: (id) => new Promise((resolve) => waiting.set(id, resolve)),
  };
}

/**
 * Breakers for a worker: clusters without finite limits count here; limited ones ask the primary.
 * `workers`: how many share maxRetries.
 */
export function workerBreakers(workers: number, channel: Channel = primaryChannel()): (cluster: string) => ClusterBreaker {
  let nextId = 0;
  return (cluster) => new WorkerBreaker(cluster, workers, channel, () => ++nextId);
}

class WorkerBreaker implements ClusterBreaker {
  readonly #local = new CircuitBreaker();
  /** What this worker holds or waits for at the primary, for the admin page. */
  #connections = 0;
  #pending = 0;
  #requests = 0;
  readonly #overflows = { connections: 0, pending: 0, requests: 0 };

  constructor(
    private readonly cluster: string,
    private readonly workers: number,
    private readonly channel: Channel,
    private readonly id: () => number,
  ) {}

  admit(limits: ConnectionLimits, multiplexed: boolean, onCancelable?: (c: Cancel) => void): Admission | Promise<Waited | 'overflow'> {
    if (!hasFiniteLimits(limits)) return this.#local.admit(limits, multiplexed, onCancelable);
    const id = this.id();
    if (!this.channel.send({ meshgate: TAG, op: 'admit', id, cluster: this.cluster, limits: counted(limits), mux: multiplexed })) return this.#overflow();
    const held = multiplexed ? 0 : 1;
    let cancelled = false;
    this.#pending++;
    onCancelable?.({
      cancel: () => {
        if (cancelled) return;
        cancelled = true;
        this.channel.send({ meshgate: TAG, op: 'cancel', id });
      },
    });
    return this.channel.expect(id).then((verdict) => {
      this.#pending--;
      if (verdict === 'admitted' && cancelled) {
        // Granted while the cancel was on its way: the slot goes straight back.
        this.channel.send({ meshgate: TAG, op: 'release', id });
        return 'cancelled';
      }
      if (cancelled) return 'cancelled';
      if (verdict !== 'admitted') return verdict === 'overflow' ? this.#overflow() : verdict;
      this.#requests++;
      this.#connections += held;
      return this.#slot(id, () => {
        this.#requests--;
        this.#connections -= held;
      });
    });
  }

  openConnection(limits: ConnectionLimits): Admission | Promise<Admission> {
    if (!hasFiniteLimits(limits)) return this.#local.openConnection(limits);
    const id = this.id();
    if (!this.channel.send({ meshgate: TAG, op: 'open', id, cluster: this.cluster, limits: counted(limits) })) return this.#overflow();
    return this.channel.expect(id).then((verdict) => {
      if (verdict !== 'admitted') return this.#overflow();
      this.#connections++;
      return this.#slot(id, () => this.#connections--);
    });
  }

  tryRetry(limits: ConnectionLimits): boolean {
    const share = limits.maxRetries === MAX_UINT32 ? limits : { ...limits, maxRetries: Math.max(1, Math.ceil(limits.maxRetries / this.workers)) };
    return this.#local.tryRetry(share);
  }

  retryDone(): void {
    this.#local.retryDone();
  }

  counters(): BreakerCounters {
    const local = this.#local.counters();
    return {
      connections: local.connections + this.#connections,
      pending: local.pending + this.#pending,
      requests: local.requests + this.#requests,
      retries: local.retries,
      // Waits at the primary are the primary's to count; a worker knows only its own.
      waited: local.waited,
      overflows: {
        connections: local.overflows.connections + this.#overflows.connections,
        pending: local.overflows.pending + this.#overflows.pending,
        requests: local.overflows.requests + this.#overflows.requests,
        retries: local.overflows.retries,
      },
    };
  }

  #overflow(): 'overflow' {
    // Which limit turned it away is the primary's to know; the worker counts the refusal as pending.
    this.#overflows.pending++;
    return 'overflow';
  }

  #slot(id: number, forget: () => void): Slot {
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        forget();
        this.channel.send({ meshgate: TAG, op: 'release', id });
      },
    };
  }
}

/** What one worker holds at the primary: granted slots, and the waits it can still call off. */
interface Holdings {
  readonly slots: Map<number, Slot>;
  readonly waits: Map<number, Cancel>;
}

/**
 * The primary's end: the counters of every limited cluster, for all workers. Call `attach` for each
 * worker forked, and `detach` when it exits (what it held is freed).
 */
export class PrimaryBreakers {
  readonly #breakers = new Map<string, CircuitBreaker>();
  readonly #holdings = new Map<Worker, Holdings>();

  attach(worker: Worker): void {
    const h: Holdings = { slots: new Map(), waits: new Map() };
    this.#holdings.set(worker, h);
    worker.on('message', (m: unknown) => {
      if (isTagged<Ask>(m)) this.#handle(worker, h, m);
    });
  }

  detach(worker: Worker): void {
    const h = this.#holdings.get(worker);
    if (!h) return;
    this.#holdings.delete(worker);
    for (const c of [...h.waits.values()]) c.cancel(new Error('worker exited'));
    for (const s of h.slots.values()) s.release();
    h.slots.clear();
    h.waits.clear();
  }

  /** The counters of one cluster for the gateway as a whole (tests, diagnostics). */
  counters(cluster: string): BreakerCounters | undefined {
    return this.#breakers.get(cluster)?.counters();
  }

  #breaker(cluster: string): CircuitBreaker {
    let b = this.#breakers.get(cluster);
    if (!b) this.#breakers.set(cluster, (b = new CircuitBreaker()));
    return b;
  }

  #handle(worker: Worker, h: Holdings, m: Ask): void {
    const reply = (verdict: Answer['verdict']): void => {
      if (worker.isConnected()) worker.send({ meshgate: TAG, id: m.id, verdict } satisfies Answer, undefined, () => undefined);
    };
    const grant = (slot: Slot): void => {
      // A worker that went away while it waited gets nothing: the slot goes back at once.
      if (!this.#holdings.has(worker)) return slot.release();
      h.slots.set(m.id, slot);
      reply('admitted');
    };
    switch (m.op) {
      case 'admit': {
        const a = this.#breaker(m.cluster).admit(fromCounted(m.limits), m.mux === true, (c) => h.waits.set(m.id, c));
        if (a === 'overflow') return reply('overflow');
        if (!(a instanceof Promise)) return grant(a);
        void a.then((w) => {
          h.waits.delete(m.id);
          if (w === 'overflow' || w === 'cancelled') return reply(w);
          grant(w);
        });
        return;
      }
      case 'open': {
        const a = this.#breaker(m.cluster).openConnection(fromCounted(m.limits));
        return a === 'overflow' ? reply('overflow') : grant(a);
      }
      case 'cancel':
        h.waits.get(m.id)?.cancel(new Error('cancelled by the worker'));
        return;
      case 'release':
        h.slots.get(m.id)?.release();
        h.slots.delete(m.id);
        return;
    }
  }
}
