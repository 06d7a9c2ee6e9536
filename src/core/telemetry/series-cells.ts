// The running totals of Istio's series, kept on the request path in plain numbers and handed to
// prom-client only when something scrapes (its metrics' `collect()` hook, which every read of a
// registry calls first: the text endpoint, the JSON one, the `--workers` primary's sum). A request
// then costs a few additions on cells it already holds, instead of prom-client validating and
// hashing a 25-label object once per metric. One cell per distinct label set and metric: two cached
// label sets that a Telemetry override makes equal (a REMOVEd label, the gRPC counters' peer-only
// labels) share a cell, as they share a series in prom-client.

import type { Counter, Histogram } from 'prom-client';

/** One counter series. `touched`: a series exists once counted, even by 0 (prom-client's inc(0)). */
export class CounterCell {
  value = 0;
  touched = false;
  constructor(readonly labels: Readonly<Record<string, string>>) {}

  inc(v: number): void {
    this.value += v;
    this.touched = true;
  }
}

/** One histogram series: per-bucket (not cumulative) counts, the sum and the count, as prom-client keeps them. */
export class HistogramCell {
  count = 0;
  sum = 0;
  readonly perBucket: Float64Array;
  constructor(
    readonly labels: Readonly<Record<string, string>>,
    private readonly bounds: readonly number[],
  ) {
    this.perBucket = new Float64Array(bounds.length);
  }

  observe(v: number): void {
    // The same order of additions as prom-client's observe(), so the sum is the same float.
    this.sum += v;
    this.count++;
    const b = this.bounds;
    // Above the last bound a value counts only in +Inf (the count).
    for (let i = 0; i < b.length; i++) {
      if (v <= b[i]!) {
        this.perBucket[i]!++;
        return;
      }
    }
  }
}

/** The cells of one metric, by label set; a label set's key is computed when its cell is made, never per request. */
export class CellTable<C extends CounterCell | HistogramCell> {
  private readonly byKey = new Map<string, C>();
  constructor(
    readonly labelNames: readonly string[],
    private readonly make: (labels: Readonly<Record<string, string>>) => C,
  ) {}

  cellFor(labels: Readonly<Record<string, string>>): C {
    let key = '';
    // Absent and empty labels differ (\u0002), as they do in prom-client's hash.
    for (const n of this.labelNames) key += `${labels[n] ?? '\u0002'}\u0001`;
    let c = this.byKey.get(key);
    if (!c) {
      c = this.make(labels);
      this.byKey.set(key, c);
    }
    return c;
  }

  cells(): IterableIterator<C> {
    return this.byKey.values();
  }

  get size(): number {
    return this.byKey.size;
  }
}

/** The `collect` of a counter whose scrape reads `table`. */
export function collectCounter(table: CellTable<CounterCell>): (this: Counter<string>) => void {
  return function fill(this: Counter<string>): void {
    this.reset();
    for (const c of table.cells()) if (c.touched) this.inc(c.labels, c.value);
  };
}

/** What prom-client 15 keeps per histogram series (lib/histogram.js): bucket → count, sum, count. */
interface HistogramEntry {
  labels: Readonly<Record<string, string>>;
  bucketValues: Record<number, number>;
  sum: number;
  count: number;
}

/**
 * The `collect` of a histogram whose scrape reads `table`. prom-client has no call that sets a
 * series' bucket counts, so the entries are written where its observe() would have written them
 * (its `hashMap`); the metrics tests compare every bucket, sum and count with what prom-client's own
 * observe() gives for the same values.
 */
export function collectHistogram(table: CellTable<HistogramCell>, bounds: readonly number[]): (this: Histogram<string>) => void {
  return function fill(this: Histogram<string>): void {
    this.reset();
    const entries = (this as unknown as { hashMap?: Record<string, HistogramEntry> }).hashMap;
    if (!entries || typeof entries !== 'object') throw new Error('prom-client Histogram without hashMap: series-cells.ts needs updating for this prom-client');
    let i = 0;
    for (const c of table.cells()) {
      if (c.count === 0) continue;
      const bucketValues: Record<number, number> = {};
      for (let b = 0; b < bounds.length; b++) bucketValues[bounds[b]!] = c.perBucket[b]!;
      entries[`cell${i++}`] = { labels: c.labels, bucketValues, sum: c.sum, count: c.count };
    }
  };
}
