// ControlPlaneSource: a control plane's configuration stream as a ConfigSource. The first version of
// a subscription arrives whole, later ones as deltas: only the resources that changed are decoded
// (with the control plane's file:line), the rest are kept as the same objects, and the whole set is
// emitted with what changed named (ConfigUpdate.changed). The outcome the consumer reports (applied,
// or refused with its errors) goes back as an acknowledgement. A delta that does not apply (its base
// is not the version held, or it is malformed) changes nothing: the proxy keeps serving what it has
// and subscribes again at once, which starts with the whole set (a resync).
// When the stream breaks the proxy keeps serving what it has (nothing is emitted, a line is logged)
// and subscribes again with back-off; a version it already has is acknowledged again, not rebuilt.

import type { Logger } from 'pino';
import { pino } from '../telemetry/pino.js';
import { hostname } from 'node:os';
import type { ControlPlaneClient, StreamHandle } from './control-plane-client.js';
import { decodeResources, resourceKey, type ProxyDescription, type StreamMessage } from './control-plane-wire.js';
import type { ConfigOutcome, ConfigSource, ConfigUpdate } from './source.js';
import type { Problem } from '../config/problem.js';
import type { Resource } from '../model/resource.js';

export interface ControlPlaneSourceOptions {
  readonly client: ControlPlaneClient;
  /** How this proxy is listed by the control plane; unique per proxy (default `<hostname>-<pid>`). */
  readonly proxyId?: string;
  /** What the control plane scopes this proxy's configuration by (default: a sidecar without labels). */
  readonly description?: ProxyDescription;
  readonly logger?: Logger;
  /** Delays between subscriptions after a failure: first, doubling up to max (default 250 ms → 5 s), minus up to 20% jitter. */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  readonly random?: () => number;
  /** start() rejects when no set has arrived after this long (default: it waits as long as it takes). */
  readonly startTimeoutMs?: number;
}

/** Tries of one acknowledgement before waiting for the next subscription to repeat it. */
const ACK_ATTEMPTS = 4;

export function defaultProxyId(): string {
  return `${hostname()}-${process.pid}`;
}

/**
 * A proxy's name on the configuration stream: what it is (`user-service.default`, `gateway-w1.istio-system`)
 * and which process it is. A stream with the same name replaces the older one (a proxy reconnecting),
 * so two processes must never share one: replicas of a workload, or two gateways on one host, would
 * evict each other's stream in a loop. In a pod the host name is the pod's name.
 */
export function proxyIdOf(name: string, namespace: string): string {
  return `${name}.${namespace}:${hostname()}-${process.pid}`;
}

export class ControlPlaneSource implements ConfigSource {
  readonly #client: ControlPlaneClient;
  readonly #proxyId: string;
  readonly #description: ProxyDescription | undefined;
  readonly #log: Logger;
  readonly #backoff: { readonly initialMs: number; readonly maxMs: number };
  readonly #random: () => number;
  readonly #startTimeoutMs: number | undefined;
  #onUpdate: ((u: ConfigUpdate) => void) | undefined;
  #stream: StreamHandle | undefined;
  #retry: NodeJS.Timeout | undefined;
  #startTimer: NodeJS.Timeout | undefined;
  #waiter: { resolve: () => void; reject: (err: Error) => void } | undefined;
  #failures = 0;
  #lastError: string | undefined;
  #outage = false;
  #version: string | undefined;
  /** The set of `#version`, by resourceKey: what a delta applies to. */
  #resources = new Map<string, Resource>();
  #outcome: ConfigOutcome | undefined;
  #resyncs = 0;
  #badInARow = 0;
  #closed = false;

  constructor(opts: ControlPlaneSourceOptions) {
    this.#client = opts.client;
    this.#proxyId = opts.proxyId ?? defaultProxyId();
    this.#description = opts.description;
    this.#log = opts.logger ?? pino({ level: 'silent' });
    this.#backoff = opts.backoff ?? { initialMs: 250, maxMs: 5000 };
    this.#random = opts.random ?? Math.random;
    this.#startTimeoutMs = opts.startTimeoutMs;
  }

  get description(): string {
    return `control plane ${this.#client.url} (as ${this.#proxyId})`;
  }

  get proxyId(): string {
    return this.#proxyId;
  }

  /** How many times a delta did not apply and the whole set was asked for again. */
  get resyncs(): number {
    return this.#resyncs;
  }

  start(onUpdate: (u: ConfigUpdate) => void): Promise<void> {
    if (this.#onUpdate) return Promise.reject(new Error('ControlPlaneSource.start() called twice'));
    if (this.#closed) return Promise.reject(new Error('ControlPlaneSource is closed'));
    this.#onUpdate = onUpdate;
    return new Promise<void>((resolve, reject) => {
      this.#waiter = { resolve, reject };
      if (this.#startTimeoutMs !== undefined) {
        this.#startTimer = setTimeout(() => {
          this.#fail(new Error(`no configuration from the control plane at ${this.#client.url} within ${this.#startTimeoutMs} ms: ${this.#lastError ?? 'no answer yet'}`));
          void this.close();
        }, this.#startTimeoutMs);
      }
      this.#subscribe();
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retry);
    clearTimeout(this.#startTimer);
    this.#stream?.close();
    this.#stream = undefined;
    this.#fail(new Error(`ControlPlaneSource closed before the first configuration arrived from ${this.#client.url}`));
  }

  destroy(): void {
    void this.close();
  }

  #subscribe(): void {
    this.#retry = undefined;
    if (this.#closed) return;
    const stream = this.#client.openStream(
      this.#proxyId,
      {
        onMessage: (m) => {
          if (this.#stream === stream) this.#message(m);
        },
        onEnd: (reason) => {
          if (this.#stream === stream) this.#ended(reason);
        },
      },
      this.#description,
    );
    this.#stream = stream;
  }

  /** Keeps what is served and subscribes again at once: a new subscription starts with the whole set. */
  #resync(why: string, extra: Record<string, unknown>): void {
    this.#resyncs++;
    // Twice in a row without a good version between: the control plane keeps sending what cannot be
    // read, so back off as after any failure instead of asking again in a loop.
    if (this.#badInARow++ > 0) {
      this.#stream?.close();
      return this.#ended(new Error(`configuration stream unreadable again: ${why}`));
    }
    this.#log.warn({ controlPlane: this.#client.url, version: this.#version ?? null, reason: why, ...extra }, 'configuration delta not applied; the current configuration keeps serving; asking for the whole set');
    this.#stream?.close();
    this.#stream = undefined;
    this.#subscribe();
  }

  #message(m: StreamMessage): void {
    if (this.#closed || m.type === 'heartbeat') return;
    if (m.type === 'hello') {
      this.#log.debug({ proxy: m.proxy, identity: m.identity, heartbeatMs: m.heartbeatMs }, 'subscribed to the control plane');
      return;
    }
    if (m.type === 'bad-delta') return this.#resync(m.reason, {});
    if (m.type === 'delta') return this.#delta(m);
    if (this.#outage) this.#log.info({ controlPlane: this.#client.url, version: m.version }, 'control plane stream back');
    this.#outage = false;
    this.#failures = 0;
    this.#lastError = undefined;
    if (m.version === this.#version) {
      // A new subscription (or a control plane that restarted) repeats what we have: say again what became of it.
      this.#badInARow = 0;
      if (this.#outcome) this.#ack(m.version, this.#outcome);
      return;
    }
    const loaded = decodeResources(m.resources);
    this.#resources = new Map(loaded.resources.map((r) => [resourceKey(r), r]));
    this.#emit(m.version, { ...loaded });
  }

  /** Applies a delta to the set held, or resyncs; never emits a set it could not build whole. */
  #delta(m: Extract<StreamMessage, { type: 'delta' }>): void {
    if (this.#version === undefined || m.base !== this.#version) return this.#resync('the delta is not from the version held', { base: m.base });
    if (m.version === this.#version) return;
    const decoded = decodeResources(m.updated);
    const broken = decoded.problems.length > 0 || decoded.resources.length !== m.updated.length;
    if (broken) return this.#resync('the delta holds a resource that cannot be read', { problems: decoded.problems.slice(0, 5).map(problemText) });
    const next = new Map(this.#resources);
    for (const key of m.removed) next.delete(key);
    for (const r of decoded.resources) next.set(resourceKey(r), r);
    this.#resources = next;
    // Configuration order (file, then document) as a whole set would have it.
    const resources = [...next.values()].sort((a, b) => a.origin.order - b.origin.order);
    this.#emit(m.version, { resources, problems: [], changed: { updated: decoded.resources, removed: [...m.removed] } });
  }

  #emit(version: string, update: Omit<ConfigUpdate, 'acknowledge'>): void {
    this.#badInARow = 0;
    this.#version = version;
    this.#outcome = undefined;
    const loaded = update;
    let answered = false;
    const acknowledge = (outcome: ConfigOutcome): void => {
      if (answered || this.#closed) return;
      answered = true;
      if (this.#version === version) this.#outcome = outcome;
      this.#ack(version, outcome);
    };
    this.#log.debug({ version, resources: loaded.resources.length, ...(loaded.changed ? { updated: loaded.changed.updated.length, removed: loaded.changed.removed.length } : {}) }, 'configuration version received');
    this.#onUpdate?.({ ...loaded, acknowledge });
    if (this.#waiter) {
      clearTimeout(this.#startTimer);
      this.#waiter.resolve();
      this.#waiter = undefined;
    }
  }

  #ack(version: string, outcome: ConfigOutcome, attempt = 1): void {
    const ack = outcome.accepted ? { proxy: this.#proxyId, version, accepted: true } : { proxy: this.#proxyId, version, accepted: false, problems: outcome.problems };
    this.#client.ack(ack).catch((err: unknown) => {
      // A pooled connection the server closed as idle fails the POST; the acknowledgement is
      // repeatable, so it is tried again a few times while the version is still the one held (and
      // after that, repeated on the next subscription, which repeats the version).
      if (attempt < ACK_ATTEMPTS && !this.#closed && this.#version === version) {
        const retry = setTimeout(() => this.#ack(version, outcome, attempt + 1), 50 * attempt);
        retry.unref();
        return;
      }
      this.#log.warn({ version, error: (err as Error).message }, 'could not acknowledge a configuration version');
    });
  }

  #ended(reason: Error): void {
    this.#stream = undefined;
    if (this.#closed) return;
    const { initialMs, maxMs } = this.#backoff;
    const delay = Math.round(Math.min(maxMs, initialMs * 2 ** Math.min(this.#failures, 30)) * (1 - 0.2 * this.#random()));
    this.#failures++;
    // One warning per outage (or per new cause); the rest of the retries are debug noise.
    const level = this.#outage && reason.message === this.#lastError ? 'debug' : 'warn';
    const msg = this.#version === undefined ? 'control plane stream lost before any configuration; subscribing again' : 'control plane stream lost; the current configuration keeps serving; subscribing again';
    this.#log[level]({ controlPlane: this.#client.url, error: reason.message, lastVersion: this.#version ?? null, retryInMs: delay }, msg);
    this.#outage = true;
    this.#lastError = reason.message;
    this.#retry = setTimeout(() => this.#subscribe(), delay);
  }

  #fail(err: Error): void {
    if (!this.#waiter) return;
    clearTimeout(this.#startTimer);
    this.#waiter.reject(err);
    this.#waiter = undefined;
  }
}

function problemText(p: Problem): string {
  return `${p.file}:${p.line} ${p.resource} ${p.field}: ${p.message}`;
}
