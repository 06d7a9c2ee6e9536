// ControlPlaneSource: a control plane's configuration stream as a ConfigSource. Each version arrives
// whole; its resources are rebuilt (with the control plane's file:line), emitted, and the outcome
// the consumer reports (applied, or refused with its errors) goes back as an acknowledgement.
// When the stream breaks the proxy keeps serving what it has (nothing is emitted, a line is logged)
// and subscribes again with back-off; a version it already has is acknowledged again, not rebuilt.

import { pino, type Logger } from 'pino';
import { hostname } from 'node:os';
import type { ControlPlaneClient, StreamHandle } from './control-plane-client.js';
import { decodeResources, type StreamMessage } from './control-plane-wire.js';
import type { ConfigOutcome, ConfigSource, ConfigUpdate } from './source.js';

export interface ControlPlaneSourceOptions {
  readonly client: ControlPlaneClient;
  /** How this proxy is listed by the control plane; unique per proxy (default `<hostname>-<pid>`). */
  readonly proxyId?: string;
  readonly logger?: Logger;
  /** Delays between subscriptions after a failure: first, doubling up to max (default 250 ms → 5 s), minus up to 20% jitter. */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  readonly random?: () => number;
  /** start() rejects when no set has arrived after this long (default: it waits as long as it takes). */
  readonly startTimeoutMs?: number;
}

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
  #outcome: ConfigOutcome | undefined;
  #closed = false;

  constructor(opts: ControlPlaneSourceOptions) {
    this.#client = opts.client;
    this.#proxyId = opts.proxyId ?? defaultProxyId();
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
    this.#stream = this.#client.openStream(this.#proxyId, {
      onMessage: (m) => this.#message(m),
      onEnd: (reason) => this.#ended(reason),
    });
  }

  #message(m: StreamMessage): void {
    if (this.#closed || m.type === 'heartbeat') return;
    if (m.type === 'hello') {
      this.#log.debug({ proxy: m.proxy, identity: m.identity, heartbeatMs: m.heartbeatMs }, 'subscribed to the control plane');
      return;
    }
    if (this.#outage) this.#log.info({ controlPlane: this.#client.url, version: m.version }, 'control plane stream back');
    this.#outage = false;
    this.#failures = 0;
    this.#lastError = undefined;
    if (m.version === this.#version) {
      // A new subscription (or a control plane that restarted) repeats what we have: say again what became of it.
      if (this.#outcome) this.#ack(m.version, this.#outcome);
      return;
    }
    this.#version = m.version;
    this.#outcome = undefined;
    const version = m.version;
    const loaded = decodeResources(m.resources);
    let answered = false;
    const acknowledge = (outcome: ConfigOutcome): void => {
      if (answered || this.#closed) return;
      answered = true;
      if (this.#version === version) this.#outcome = outcome;
      this.#ack(version, outcome);
    };
    this.#log.debug({ version, resources: loaded.resources.length }, 'configuration version received');
    this.#onUpdate?.({ ...loaded, acknowledge });
    if (this.#waiter) {
      clearTimeout(this.#startTimer);
      this.#waiter.resolve();
      this.#waiter = undefined;
    }
  }

  #ack(version: string, outcome: ConfigOutcome): void {
    const ack = outcome.accepted ? { proxy: this.#proxyId, version, accepted: true } : { proxy: this.#proxyId, version, accepted: false, problems: outcome.problems };
    // A lost acknowledgement is repeated after the next subscription, which repeats the version.
    this.#client.ack(ack).catch((err: unknown) => this.#log.warn({ version, error: (err as Error).message }, 'could not acknowledge a configuration version'));
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
