// What `npm run bench` prints at the end: a table of the kept-alive measurements (HTTP and HTTPS),
// a table of the new-handshake measurements, and the ratios between targets measured in the same run
// (the only comparison that means something on a shared machine).

import type { KeyType } from '../src/core/tls/issue-certificate.js';
import type { HandshakeResult } from './handshakes.js';
import type { LoadResult } from './load.js';
import { KEY_LABEL } from './tls-certs.js';

export interface LoadRow {
  readonly kind: 'http' | 'https';
  readonly target: string;
  readonly result: LoadResult;
  /** Cores the target's process kept busy while measured (CPU seconds / wall seconds). */
  readonly cores: number | undefined;
  /** A process the target relies on (redis-server), and the cores it kept busy meanwhile. */
  readonly helper?: { readonly name: string; readonly cores: number | undefined };
}

export interface HandshakeRow {
  readonly target: string;
  readonly keyType: KeyType;
  /** `s_time -reuse`: every connection offers the first one's session. */
  readonly resumption?: boolean;
  readonly result: HandshakeResult;
  readonly cores: number | undefined;
}

/** A rate divided by the cores the process used: what one core of it does. */
export function perCore(rate: number, cores: number | undefined): number | undefined {
  return cores !== undefined && cores > 0.01 ? rate / cores : undefined;
}

const fmt = (n: number | undefined, digits = 0) => (n === undefined ? 'n/a' : n.toFixed(digits));

export function loadTable(rows: readonly LoadRow[]): string {
  return table(
    ['target', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'errors', 'cpu', 'req/s per core'],
    rows.map((r) => [
      r.target,
      fmt(r.result.rps),
      fmt(r.result.p50Ms, 2),
      fmt(r.result.p90Ms, 2),
      fmt(r.result.p99Ms, 2),
      String(r.result.errors),
      fmt(r.cores, 2),
      fmt(perCore(r.result.rps, r.cores)),
    ]),
  );
}

export function handshakeTable(rows: readonly HandshakeRow[]): string {
  return table(
    ['target', 'certificate', 'handshake', 'handshakes/s', 'cpu', 'handshakes/s per core', 'resumed', 'errors'],
    rows.map((r) => [
      r.target,
      KEY_LABEL[r.keyType],
      r.resumption ? 'resumption' : 'new',
      fmt(r.result.rate),
      fmt(r.cores, 2),
      fmt(perCore(r.result.rate, r.cores)),
      r.result.resumed === undefined ? '–' : `${((100 * r.result.resumed) / Math.max(1, r.result.handshakes)).toFixed(1)} %`,
      String(r.result.errors),
    ]),
  );
}

export function loadRatio(a: LoadRow | undefined, b: LoadRow | undefined): string {
  if (!a || !b || b.result.rps === 0) return 'n/a';
  const core = ratioOf(perCore(a.result.rps, a.cores), perCore(b.result.rps, b.cores));
  return `${(a.result.rps / b.result.rps).toFixed(2)}× req/s, p99 ${(a.result.p99Ms / Math.max(b.result.p99Ms, 0.001)).toFixed(2)}×, per core ${core}`;
}

export function handshakeRatio(a: HandshakeRow | undefined, b: HandshakeRow | undefined): string {
  if (!a || !b || b.result.rate === 0) return 'n/a';
  const core = ratioOf(perCore(a.result.rate, a.cores), perCore(b.result.rate, b.cores));
  return `${(a.result.rate / b.result.rate).toFixed(2)}× handshakes/s, per core ${core}`;
}

function ratioOf(a: number | undefined, b: number | undefined): string {
  return a === undefined || b === undefined || b === 0 ? 'n/a' : `${(a / b).toFixed(2)}×`;
}

/** Columns padded to their widest cell: the first left-aligned, the figures right-aligned. */
export function table(head: string[], body: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

/** The q-quantile, interpolated between neighbours (q 0.5: the median of an even count is the mean of the middle two). */
export function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const at = (s.length - 1) * q;
  const lo = Math.floor(at);
  return s[lo]! + (s[Math.min(lo + 1, s.length - 1)]! - s[lo]!) * (at - lo);
}

/** The middle value (the upper one of an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
