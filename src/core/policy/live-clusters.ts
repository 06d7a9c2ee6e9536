// The per-cluster state that must outlive snapshots: circuit-breaker counters and outlier-detection
// history, one of each per cluster name (`outbound|port|subset|host`), as UpstreamPools keeps the
// per-endpoint load. A snapshot's clusters hold references into it, so a reload that keeps a cluster
// keeps its counters and ejections. The clock is injected so ejection times are exact in tests.

import { CircuitBreaker, type ClusterBreaker } from './circuit-breaker.js';
import { OutlierDetector } from './outlier-detection.js';

export interface LiveClustersOptions {
  /** Epoch milliseconds (default Date.now). */
  readonly now?: () => number;
  /** Makes a cluster's breaker (default: counters in this process; `--workers` count in the primary). */
  readonly breaker?: (cluster: string) => ClusterBreaker;
}

export class LiveClusters {
  readonly now: () => number;
  readonly #breakers = new Map<string, ClusterBreaker>();
  readonly #newBreaker: (cluster: string) => ClusterBreaker;
  readonly #detectors = new Map<string, OutlierDetector>();

  constructor(opts: LiveClustersOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.#newBreaker = opts.breaker ?? (() => new CircuitBreaker());
  }

  breaker(cluster: string): ClusterBreaker {
    let b = this.#breakers.get(cluster);
    if (!b) this.#breakers.set(cluster, (b = this.#newBreaker(cluster)));
    return b;
  }

  detector(cluster: string): OutlierDetector {
    let d = this.#detectors.get(cluster);
    if (!d) this.#detectors.set(cluster, (d = new OutlierDetector(this.now)));
    return d;
  }
}
