// How the control plane's controllers (the root publisher, the gateway deployer) bring the cluster
// to what it should be: a round compares everything and writes the differences; rounds never
// overlap, changes during one bring exactly one more after it, and a round whose writes failed is
// run again after a back-off (doubling up to a limit) — a change meanwhile runs one sooner.

export interface ReconcileRoundsOptions {
  /** One round; resolves to how many writes failed. */
  readonly round: () => Promise<number>;
  /** A round needs this first (every collection listed once). */
  readonly ready: () => boolean;
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  /** Told of each retry planned after a failed round. */
  readonly onRetry?: (failed: number, delayMs: number) => void;
}

export class ReconcileRounds {
  readonly #opts: ReconcileRoundsOptions;
  #running: Promise<void> | undefined;
  #again = false;
  #failures = 0;
  #retry: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(opts: ReconcileRoundsOptions) {
    this.#opts = opts;
  }

  /** Something changed: a round now, or right after the one running. */
  trigger(): void {
    if (this.#closed || !this.#opts.ready()) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#run().finally(() => {
      this.#running = undefined;
      if (this.#again) {
        this.#again = false;
        this.trigger();
      }
    });
  }

  /** Resolves when no round is running (nor queued behind one). */
  async settled(): Promise<void> {
    while (this.#running) await this.#running;
  }

  get closed(): boolean {
    return this.#closed;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retry);
    await this.settled();
  }

  async #run(): Promise<void> {
    const failed = await this.#opts.round();
    if (failed === 0) {
      this.#failures = 0;
      return;
    }
    const { initialMs, maxMs } = this.#opts.backoff ?? { initialMs: 1000, maxMs: 30_000 };
    const delay = Math.min(maxMs, initialMs * 2 ** Math.min(this.#failures++, 30));
    this.#opts.onRetry?.(failed, delay);
    clearTimeout(this.#retry);
    if (!this.#closed) this.#retry = setTimeout(() => this.trigger(), delay);
  }
}
