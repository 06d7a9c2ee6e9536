// The admin port's /stats: each cluster's circuit-breaker statistics under Envoy's names
// (`cluster.<name>.upstream_rq_pending_overflow: 3`), one `name: value` line each, sorted, so the
// commands Istio's tasks run against a sidecar (`pilot-agent request GET stats | grep pending`)
// read the same figures here. `filter` is Envoy's: a regular expression the name must match.
// meshgate keeps one priority, so the `high` breakers are always closed.

import type { Cluster } from '../policy/types.js';

const OPEN_FLAGS = ['cx_open', 'cx_pool_open', 'rq_pending_open', 'rq_open', 'rq_retry_open'] as const;

/** Envoy's remaining_* gauges: what is left under a limit (never negative). */
const remaining = (limit: number, used: number): number => Math.max(0, limit - used);

/** The stats of one cluster, unprefixed and unsorted. */
function clusterStats(c: Cluster): Array<[string, number]> {
  const t = c.traffic;
  if (!t) return [];
  const { limits } = t;
  const n = t.breaker.counters();
  const open = {
    cx_open: n.connections >= limits.maxConnections,
    cx_pool_open: n.connections >= limits.maxConnections,
    rq_pending_open: n.pending >= limits.maxPendingRequests,
    rq_open: n.requests >= limits.maxRequests,
    rq_retry_open: n.retries >= limits.maxRetries,
  };
  return [
    ...OPEN_FLAGS.map((f): [string, number] => [`circuit_breakers.default.${f}`, open[f] ? 1 : 0]),
    ...OPEN_FLAGS.map((f): [string, number] => [`circuit_breakers.high.${f}`, 0]),
    ['circuit_breakers.default.remaining_cx', remaining(limits.maxConnections, n.connections)],
    ['circuit_breakers.default.remaining_pending', remaining(limits.maxPendingRequests, n.pending)],
    ['circuit_breakers.default.remaining_rq', remaining(limits.maxRequests, n.requests)],
    ['circuit_breakers.default.remaining_retries', remaining(limits.maxRetries, n.retries)],
    ['upstream_cx_overflow', n.overflows.connections],
    ['upstream_rq_active', n.requests],
    ['upstream_rq_pending_active', n.pending],
    // A wait ends with a connection or with the caller giving up; meshgate fails none for an ejection.
    ['upstream_rq_pending_failure_eject', 0],
    ['upstream_rq_pending_overflow', n.overflows.pending],
    ['upstream_rq_pending_total', n.waited],
    ['upstream_rq_retry_overflow', n.overflows.retries],
  ];
}

/** /stats as text; undefined when `filter` is not a valid regular expression. */
export function formatStats(clusters: Iterable<Cluster>, filter?: string): string | undefined {
  let match: RegExp | undefined;
  try {
    match = filter ? new RegExp(filter) : undefined;
  } catch {
    return undefined;
  }
  const lines: string[] = [];
  for (const c of clusters) for (const [name, value] of clusterStats(c)) lines.push(`cluster.${c.name}.${name}: ${value}`);
  return lines.filter((l) => !match || match.test(l.slice(0, l.lastIndexOf(':')))).sort().join('\n') + '\n';
}
