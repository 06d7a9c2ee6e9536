// KubeSource: the Kubernetes API as a ConfigSource. One informer (list, then watch) per collection
// keeps each kind's current objects in memory; after a burst of changes the whole set is emitted
// again, never a delta. Failures never empty the set: the last one keeps serving while the failed
// collection is retried with back-off.

import { setMaxListeners } from 'node:events';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig, ListWatch, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { pino } from '../telemetry/pino.js';
import type { ConfigSource, ConfigUpdate } from './source.js';
import { KUBE_KINDS, collectionPath, toLoadResult, type KubeKind, type KubeObject } from './kube-objects.js';
import { listCollection } from './kube-list.js';
import { FailureWarnings, TrackedWatch, WakeableDelays, describeError, serverOf, statusOf } from './kube-request.js';

export interface KubeSourceOptions {
  /** Default: `loadKubeConfig()` (in-cluster service account, $KUBECONFIG or ~/.kube/config). */
  readonly kubeconfig?: KubeConfig;
  /** Only these namespaces (one informer per kind and namespace); default: the whole cluster. */
  readonly namespaces?: readonly string[];
  /** How long after the first change of a burst the whole set is emitted (default 100 ms). */
  readonly debounceMs?: number;
  readonly logger?: Logger;
  /** start() rejects if some collection still cannot be listed after this long (default 30 s). */
  readonly startTimeoutMs?: number;
  /** Retry delays after a failure: first, doubling up to max (default 1 s → 30 s), minus up to 20% jitter. */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  readonly random?: () => number;
}

/** What one informer (a kind, cluster-wide or in one namespace) has done so far. */
interface Slot {
  readonly kind: KubeKind;
  readonly path: string;
  informer: ListWatch<KubernetesObject>;
  /** A complete list has been delivered at least once. */
  listed: boolean;
  /** The last list said 404: the kind's CRD is not installed; counts as empty. */
  absent: boolean;
  /** Consecutive failures, for the back-off. */
  failures: number;
  lastError: string | undefined;
  readonly warnings: FailureWarnings;
  retry: NodeJS.Timeout | undefined;
}

/** A KubeConfig from `path`, or the default places, the way kubectl finds one. */
export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path) {
    kc.loadFromFile(path);
    return kc;
  }
  kc.loadFromDefault();
  // Finding nothing, the client falls back to http://localhost:8080, which it then refuses (plain
  // HTTP) on every list: say what is missing now rather than after the start timeout.
  const nothingFound = !process.env['KUBECONFIG'] && !existsSync(join(homedir(), '.kube', 'config')) && kc.getCurrentCluster()?.server === 'http://localhost:8080';
  if (nothingFound) throw new Error('no Kubernetes configuration found: set KUBECONFIG or pass --kubeconfig FILE, create ~/.kube/config, or run in a pod (it uses its service account)');
  return kc;
}

export class KubeSource implements ConfigSource {
  readonly #kc: KubeConfig;
  readonly #namespaces: readonly string[] | undefined;
  readonly #debounceMs: number;
  readonly #log: Logger;
  readonly #startTimeoutMs: number;
  readonly #backoff: { readonly initialMs: number; readonly maxMs: number };
  readonly #random: () => number;
  readonly #watch: TrackedWatch;
  // One signal ends every list of every kind; each in-flight list adds a listener to it and removes it
  // when done, so the count is the number of kinds listed at once (over 20), not a leak.
  readonly #abort = withUnboundedListeners(new AbortController());
  readonly #delays = new WakeableDelays();
  readonly #slots: Slot[] = [];
  #onUpdate: ((u: ConfigUpdate) => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #startTimer: NodeJS.Timeout | undefined;
  #waiter: { resolve: () => void; reject: (err: Error) => void } | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(opts: KubeSourceOptions = {}) {
    this.#kc = opts.kubeconfig ?? loadKubeConfig();
    this.#namespaces = opts.namespaces && opts.namespaces.length > 0 ? [...opts.namespaces] : undefined;
    this.#debounceMs = opts.debounceMs ?? 100;
    this.#log = opts.logger ?? pino({ level: 'silent' });
    this.#startTimeoutMs = opts.startTimeoutMs ?? 30_000;
    this.#backoff = opts.backoff ?? { initialMs: 1000, maxMs: 30_000 };
    this.#random = opts.random ?? Math.random;
    this.#watch = new TrackedWatch(this.#kc, (path) => this.#watching(path));
    for (const kind of KUBE_KINDS) {
      for (const ns of kind.only ? [kind.only.namespace] : kind.clusterScoped ? [undefined] : (this.#namespaces ?? [undefined])) {
        const slot: Slot = { kind, path: collectionPath(kind, ns), listed: false, absent: false, failures: 0, lastError: undefined, warnings: new FailureWarnings(), retry: undefined } as Slot;
        slot.informer = this.#makeInformer(slot);
        this.#slots.push(slot);
      }
    }
  }

  get description(): string {
    return `Kubernetes API ${serverOf(this.#kc)}${this.#namespaces ? ` (namespaces ${this.#namespaces.join(', ')})` : ''}`;
  }

  start(onUpdate: (u: ConfigUpdate) => void): Promise<void> {
    if (this.#onUpdate) return Promise.reject(new Error('KubeSource.start() called twice'));
    if (this.#closed) return Promise.reject(new Error('KubeSource is closed'));
    this.#onUpdate = onUpdate;
    return new Promise<void>((resolve, reject) => {
      this.#waiter = { resolve, reject };
      this.#startTimer = setTimeout(() => this.#startTimedOut(), this.#startTimeoutMs);
      for (const slot of this.#slots) this.#run(slot);
    });
  }

  close(): Promise<void> {
    // Set before anything is aborted, so that every callback the aborts set off sees it.
    this.#closed = true;
    return (this.#closing ??= this.#stop());
  }

  destroy(): void {
    void this.close();
  }

  async #stop(): Promise<void> {
    clearTimeout(this.#timer);
    clearTimeout(this.#startTimer);
    for (const slot of this.#slots) clearTimeout(slot.retry);
    this.#abort.abort(new Error('KubeSource closed'));
    this.#watch.abortAll();
    this.#delays.wakeAll();
    await Promise.all(this.#slots.map((s) => s.informer.stop().catch(() => undefined)));
    await this.#watch.settled();
    this.#waiter?.reject(new Error(`KubeSource closed before the first list of ${serverOf(this.#kc)} completed`));
    this.#waiter = undefined;
  }

  #makeInformer(slot: Slot): ListWatch<KubernetesObject> {
    const fieldSelector = slot.kind.only ? `metadata.name=${slot.kind.only.name}` : undefined;
    const list = async (): Promise<KubernetesListObject<KubernetesObject>> => {
      const result = await listCollection(this.#kc, slot.path, this.#abort.signal, { fieldSelector, logger: this.#log });
      this.#listed(slot);
      return result as unknown as KubernetesListObject<KubernetesObject>;
    };
    // ListWatch waits between watch reconnects; make those waits end at close() so nothing lingers.
    const informer = new ListWatch<KubernetesObject>(slot.path, this.#watch, list, false, undefined, fieldSelector, { delayFn: this.#delays.delay });
    const changed = (): void => {
      if (slot.informer === informer) this.#changed();
    };
    informer.on('add', changed);
    informer.on('update', changed);
    informer.on('delete', changed);
    informer.on('error', (err: unknown) => {
      if (slot.informer === informer) this.#failed(slot, err);
    });
    return informer;
  }

  #run(slot: Slot): void {
    slot.retry = undefined;
    if (this.#closed) return;
    const informer = slot.informer;
    informer.start().catch((err: unknown) => {
      if (slot.informer === informer) this.#failed(slot, err);
    });
  }

  /** A complete list arrived; ListWatch applies it (firing deletes for what is gone) right after. */
  #listed(slot: Slot): void {
    if (this.#closed) return;
    if (slot.absent) this.#log.info({ kind: slot.kind.kind, path: slot.path }, 'Kubernetes API now serves this kind');
    else if (slot.lastError) this.#log.info({ kind: slot.kind.kind, path: slot.path }, 'Kubernetes API list recovered');
    slot.listed = true;
    slot.absent = false;
    slot.failures = 0;
    slot.lastError = undefined;
    slot.warnings.recovered();
    this.#changed();
  }

  #watching(path: string): void {
    for (const slot of this.#slots) {
      if (slot.path !== path) continue;
      if (slot.lastError) this.#log.info({ kind: slot.kind.kind, path }, 'Kubernetes API watch recovered');
      slot.failures = 0;
      slot.lastError = undefined;
      slot.warnings.recovered();
    }
  }

  /**
   * ListWatch re-lists by itself on 410 Gone and stops on any other error: restart it after a
   * back-off. A 404 means the kind is not served (no CRD); it counts as empty, and is listed again
   * now and then so that it is picked up once the CRD is installed.
   */
  #failed(slot: Slot, err: unknown): void {
    if (this.#closed || slot.retry) return;
    const delay = this.#nextDelay(slot);
    if (statusOf(err) === 404 && slot.kind.crd) {
      if (!slot.absent) {
        this.#log.warn(
          { kind: slot.kind.kind, path: slot.path, server: serverOf(this.#kc) },
          `the Kubernetes API does not serve ${slot.kind.apiVersion} ${slot.kind.plural} (CRD not installed?); treated as empty until it appears`,
        );
        slot.absent = true;
        this.#changed();
      }
      // Start again from a fresh list when it comes back: the old cache and version mean nothing now.
      void slot.informer.stop().catch(() => undefined);
      slot.informer = this.#makeInformer(slot);
    } else {
      const text = describeError(err);
      const { warn, failingForS } = slot.warnings.failed(text);
      slot.lastError = text;
      const msg = this.#waiter ? 'Kubernetes API request failed; retrying' : 'Kubernetes API request failed; retrying, the last configuration keeps serving';
      this.#log[warn ? 'warn' : 'debug']({ kind: slot.kind.kind, path: slot.path, server: serverOf(this.#kc), error: text, retryInMs: delay, failingForS }, msg);
    }
    slot.retry = setTimeout(() => this.#run(slot), delay);
  }

  #nextDelay(slot: Slot): number {
    const { initialMs, maxMs } = this.#backoff;
    const base = Math.min(maxMs, initialMs * 2 ** Math.min(slot.failures, 30));
    slot.failures++;
    // Jitter keeps many gateways from retrying in step after an API server restart.
    return Math.round(base * (1 - 0.2 * this.#random()));
  }

  /** Bursts (a re-list, a rollout) become one emission at most debounceMs after their first change. */
  #changed(): void {
    if (this.#closed || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#emit();
    }, this.#debounceMs);
  }

  #emit(): void {
    if (this.#closed || !this.#onUpdate) return;
    // Until every kind has been listed once, a set would be partial (routes without their services).
    if (!this.#slots.every((s) => s.listed || s.absent)) return;
    const byKind = KUBE_KINDS.map((kind) => ({
      kind,
      items: this.#slots.filter((s) => s.kind === kind && !s.absent).flatMap((s) => s.informer.list() as unknown as KubeObject[]),
    }));
    this.#onUpdate(toLoadResult(byKind));
    if (this.#waiter) {
      clearTimeout(this.#startTimer);
      this.#waiter.resolve();
      this.#waiter = undefined;
    }
  }

  #startTimedOut(): void {
    if (!this.#waiter) return;
    const missing = this.#slots.filter((s) => !s.listed && !s.absent);
    // The same cause (connection refused) for every collection reads better once.
    const byCause = new Map<string, string[]>();
    for (const s of missing) {
      const cause = s.lastError ?? 'no answer yet';
      byCause.set(cause, [...(byCause.get(cause) ?? []), s.path]);
    }
    const detail = [...byCause]
      .map(([cause, paths]) => {
        if (paths.length === this.#slots.length) return `every list failed: ${cause}`;
        return paths.length === 1 && cause.includes(paths[0]!) ? cause : `${paths.join(', ')}: ${cause}`;
      })
      .join('; ');
    const err = new Error(`cannot read the Kubernetes API at ${serverOf(this.#kc)} within ${this.#startTimeoutMs / 1000} s: ${detail}`);
    this.#waiter.reject(err);
    this.#waiter = undefined;
    void this.close();
  }
}

function withUnboundedListeners(controller: AbortController): AbortController {
  setMaxListeners(0, controller.signal);
  return controller;
}
