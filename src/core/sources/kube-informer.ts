// One Kubernetes collection kept in memory: list, then watch, for the few objects meshgate reads
// beside its configuration (the gateway's Secrets; the control plane's Namespaces and root
// ConfigMaps). ListWatch re-lists by itself after 410 Gone and stops on any other error; this
// restarts it with back-off and keeps the objects it had meanwhile, so a blip in the API server
// never looks like a deletion.

import { ListWatch, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { KubeObject } from './kube-objects.js';
import { listCollection } from './kube-list.js';
import { FailureWarnings, TrackedWatch, WakeableDelays, describeError, serverOf } from './kube-request.js';

export interface KubeInformerOptions {
  readonly kubeconfig: KubeConfig;
  /** The collection, e.g. `/api/v1/namespaces/istio-system/secrets`. */
  readonly path: string;
  /** Sent on the list and on every watch, e.g. `type!=helm.sh/release.v1`. */
  readonly fieldSelector?: string;
  /** Likewise, e.g. `gateway.istio.io/managed` (the objects carrying that label). */
  readonly labelSelector?: string;
  readonly logger: Logger;
  /** Quiet time after a change before listeners hear of it (default 20 ms: a re-list is one burst). */
  readonly debounceMs?: number;
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  /** Objects per page of a list (default 500). */
  readonly listPageSize?: number;
}

export class KubeInformer {
  readonly #opts: KubeInformerOptions;
  readonly #watch: TrackedWatch;
  readonly #abort = new AbortController();
  readonly #listeners = new Set<() => void>();
  readonly #delays = new WakeableDelays();
  #informer: ListWatch<KubernetesObject>;
  #listed = false;
  #failures = 0;
  #lastError: string | undefined;
  readonly #warnings = new FailureWarnings();
  #retry: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #firstList: { resolve: () => void; promise: Promise<void> };
  #closed = false;

  constructor(opts: KubeInformerOptions) {
    this.#opts = opts;
    this.#watch = new TrackedWatch(opts.kubeconfig, () => {
      if (this.#lastError) opts.logger.info({ path: opts.path }, 'Kubernetes API watch recovered');
      this.#failures = 0;
      this.#lastError = undefined;
      this.#warnings.recovered();
    });
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.#firstList = { resolve, promise };
    this.#informer = this.#make();
  }

  /**
   * Starts listing; resolves once the first complete list is in. Retries until then, and rejects
   * with the last failure if that takes longer than `timeoutMs` (a missing RBAC rule, say), so a
   * start-up that cannot work says why instead of hanging.
   */
  start(timeoutMs = 30_000): Promise<void> {
    this.#run();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`cannot list ${this.#opts.path} at ${serverOf(this.#opts.kubeconfig)} within ${timeoutMs / 1000} s: ${this.#lastError ?? 'no answer'}`)), timeoutMs);
    });
    return Promise.race([this.#firstList.promise, late]).finally(() => clearTimeout(timer));
  }

  get listed(): boolean {
    return this.#listed;
  }

  /** The objects now known (the last good state while the API server is unreachable). */
  list(): KubeObject[] {
    return this.#informer.list() as unknown as KubeObject[];
  }

  get(name: string, namespace?: string): KubeObject | undefined {
    return this.#informer.get(name, namespace) as unknown as KubeObject | undefined;
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retry);
    clearTimeout(this.#debounce);
    this.#abort.abort(new Error('closed'));
    this.#watch.abortAll();
    this.#delays.wakeAll();
    await this.#informer.stop().catch(() => undefined);
    await this.#watch.settled();
    this.#firstList.resolve();
  }

  #make(): ListWatch<KubernetesObject> {
    const { path, fieldSelector, labelSelector, listPageSize, logger } = this.#opts;
    const list = async (): Promise<KubernetesListObject<KubernetesObject>> => {
      const result = await listCollection(this.#opts.kubeconfig, path, this.#abort.signal, { fieldSelector, labelSelector, pageSize: listPageSize, logger });
      if (this.#lastError) this.#opts.logger.info({ path }, 'Kubernetes API list recovered');
      this.#failures = 0;
      this.#lastError = undefined;
      this.#warnings.recovered();
      if (!this.#listed) {
        this.#listed = true;
        // ListWatch applies the list right after this returns; listeners hear of it then.
        setImmediate(() => this.#firstList.resolve());
      }
      this.#changed();
      return result as unknown as KubernetesListObject<KubernetesObject>;
    };
    const informer = new ListWatch<KubernetesObject>(path, this.#watch, list, false, labelSelector, fieldSelector, { delayFn: this.#delays.delay });
    const changed = (): void => {
      if (this.#informer === informer) this.#changed();
    };
    informer.on('add', changed);
    informer.on('update', changed);
    informer.on('delete', changed);
    informer.on('error', (err: unknown) => {
      if (this.#informer === informer) this.#failed(err);
    });
    return informer;
  }

  #run(): void {
    this.#retry = undefined;
    if (this.#closed) return;
    const informer = this.#informer;
    informer.start().catch((err: unknown) => {
      if (this.#informer === informer) this.#failed(err);
    });
  }

  #failed(err: unknown): void {
    if (this.#closed || this.#retry) return;
    const { initialMs, maxMs } = this.#opts.backoff ?? { initialMs: 1000, maxMs: 30_000 };
    const delay = Math.round(Math.min(maxMs, initialMs * 2 ** Math.min(this.#failures, 30)) * (1 - 0.2 * Math.random()));
    this.#failures++;
    const text = describeError(err);
    const { warn, failingForS } = this.#warnings.failed(text);
    this.#opts.logger[warn ? 'warn' : 'debug'](
      { path: this.#opts.path, server: serverOf(this.#opts.kubeconfig), error: text, retryInMs: delay, failingForS },
      'Kubernetes API request failed; retrying, what was read before stays in use',
    );
    this.#lastError = text;
    this.#retry = setTimeout(() => this.#run(), delay);
  }

  #changed(): void {
    if (this.#closed || this.#debounce) return;
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      if (this.#closed) return;
      for (const l of [...this.#listeners]) {
        try {
          l();
        } catch (err) {
          this.#opts.logger.error({ err }, 'listener of a Kubernetes collection failed');
        }
      }
    }, this.#opts.debounceMs ?? 20);
  }
}
