// What `npm run bench` prints for the mesh: gateway → app in plain HTTP against gateway → sidecar →
// app over mutual TLS (saturated, and at a fixed rate), the ratio between them, and the sidecar's
// CPU, memory and added latency next to Istio's published sidecar cost.
//
// The anchor (Istio 1.24's performance page): one Envoy sidecar with 2 worker threads at 1000 req/s
// of 1 KB requests takes about 0.20 vCPU and 60 MB; client and server sidecars together add about
// 2.7 ms at p90, so about 1.35 ms each. Istio states memory depends on configuration, not on the rate.

import type { LoadResult } from './load.js';
import { table } from './report.js';

export const ISTIO_SIDECAR = { vcpuPer1000: 0.2, memoryMb: 60, p90AddedMsTwoSidecars: 2.7 } as const;

export interface MeshRow {
  readonly path: 'plain' | 'mtls';
  /** `saturated`: the load tool at full speed; `paced`: a fixed rate (paced-load.ts). */
  readonly mode: 'saturated' | 'paced';
  readonly label: string;
  readonly result: LoadResult;
  readonly gatewayCores: number | undefined;
  /** The mTLS rows only. */
  readonly sidecarCores: number | undefined;
  readonly sidecarRssMaxBytes: number | undefined;
}

export interface MeshReport {
  readonly rows: readonly MeshRow[];
  /** The most VmRSS the sidecar held in its steady state before any load: idleWindowS seconds after ready. */
  readonly sidecarIdleRssBytes: number | undefined;
  /** The most it held from ready to the start of that window, while start-up's garbage was still held. */
  readonly sidecarStartRssBytes: number | undefined;
  readonly idleWindowS: readonly [number, number];
}

const fmt = (n: number | undefined, digits = 0) => (n === undefined || !Number.isFinite(n) ? 'n/a' : n.toFixed(digits));
const mb = (bytes: number | undefined) => (bytes === undefined ? undefined : bytes / (1024 * 1024));
/** Cores per 1000 req/s: the unit of Istio's figure. */
const per1000 = (cores: number | undefined, rps: number) => (cores === undefined || rps <= 0 ? undefined : (cores * 1000) / rps);

function row(rows: readonly MeshRow[], path: MeshRow['path'], mode: MeshRow['mode']): MeshRow | undefined {
  return rows.find((r) => r.path === path && r.mode === mode);
}

export function meshTable(report: MeshReport): string {
  return table(
    ['mesh path', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'errors', 'gateway cpu', 'sidecar cpu', 'sidecar RSS max MB'],
    report.rows.map((r) => [
      r.label,
      fmt(r.result.rps),
      fmt(r.result.p50Ms, 2),
      fmt(r.result.p90Ms, 2),
      fmt(r.result.p99Ms, 2),
      String(r.result.errors),
      fmt(r.gatewayCores, 2),
      r.path === 'mtls' ? fmt(r.sidecarCores, 2) : '-',
      r.path === 'mtls' ? fmt(mb(r.sidecarRssMaxBytes), 1) : '-',
    ]),
  );
}

/** Lines of `label: value`: mTLS against plain in each mode. */
export function meshRatios(report: MeshReport): [string, string][] {
  const out: [string, string][] = [];
  for (const mode of ['saturated', 'paced'] as const) {
    const plain = row(report.rows, 'plain', mode);
    const mtls = row(report.rows, 'mtls', mode);
    if (!plain || !mtls || plain.result.rps === 0) continue;
    const added = mtls.result.p90Ms - plain.result.p90Ms;
    const proxyCpu = (r: MeshRow) => per1000((r.gatewayCores ?? NaN) + (r.path === 'mtls' ? (r.sidecarCores ?? NaN) : 0), r.result.rps);
    const where = mode === 'saturated' ? 'saturated' : `at ${fmt(plain.result.rps)} req/s`;
    out.push([
      `mesh mTLS / plain, ${where}`,
      `${(mtls.result.rps / plain.result.rps).toFixed(2)}× req/s; the sidecar adds ${fmt(added, 2)} ms at p90; ` +
        `proxy cores per 1000 req/s ${fmt(proxyCpu(plain), 3)} (gateway) → ${fmt(proxyCpu(mtls), 3)} (gateway + sidecar)`,
    ]);
  }
  return out;
}

/** The sidecar's cost beside Istio's: one line per figure, with the ratio meshgate / Istio. */
export function anchorTable(report: MeshReport): string {
  const lines: string[][] = [];
  const ratio = (ours: number | undefined, theirs: number) => (ours === undefined || !Number.isFinite(ours) ? 'n/a' : `${(ours / theirs).toFixed(2)}×`);
  const add = (what: string, ours: number | undefined, theirs: number, digits: number) =>
    lines.push([what, fmt(ours, digits), theirs.toFixed(digits), ratio(ours, theirs)]);
  const perSidecarP90 = ISTIO_SIDECAR.p90AddedMsTwoSidecars / 2;

  add(`RSS idle (most, ${report.idleWindowS[0]}–${report.idleWindowS[1]} s after ready), MB`, mb(report.sidecarIdleRssBytes), ISTIO_SIDECAR.memoryMb, 1);
  for (const mode of ['paced', 'saturated'] as const) {
    const mtls = row(report.rows, 'mtls', mode);
    const plain = row(report.rows, 'plain', mode);
    if (!mtls) continue;
    const where = mode === 'paced' ? `at ${fmt(mtls.result.rps)} req/s` : `saturated, ${fmt(mtls.result.rps)} req/s`;
    add(`vCPU per 1000 req/s, ${where}`, per1000(mtls.sidecarCores, mtls.result.rps), ISTIO_SIDECAR.vcpuPer1000, 3);
    add(`RSS under load (max), MB, ${where}`, mb(mtls.sidecarRssMaxBytes), ISTIO_SIDECAR.memoryMb, 1);
    if (plain) add(`p90 added by one sidecar, ms, ${where}`, mtls.result.p90Ms - plain.result.p90Ms, perSidecarP90, 2);
  }
  return [
    table(['meshgate sidecar against Istio\'s', 'meshgate', 'Istio', 'meshgate / Istio'], lines),
    'Istio: one Envoy sidecar (2 workers) at 1000 req/s of 1 KB, Istio 1.24; its 2.7 ms p90 is for two sidecars, halved here.',
    'Here: one sidecar, small answers; the p90 added also holds the gateway\'s side of mTLS. Saturated p90s are mostly queueing.',
    `Idle is the steady state; in its first ${report.idleWindowS[0]} s after ready the sidecar held at most ${fmt(mb(report.sidecarStartRssBytes), 1)} MB (start-up's garbage, until V8's memory reducer returns it).`,
  ].join('\n');
}
