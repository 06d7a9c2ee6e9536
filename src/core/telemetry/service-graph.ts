// The service graph the dashboard draws, from Istio's metrics as Kiali derives its graph from them:
// a node per workload (and per service with no workload behind it, such as a 404's `unknown`), an
// edge per (source workload → destination workload, service) pair with its request rate, error
// share and p99 latency, and whether it runs over mutual TLS. Rates come from the difference
// between two collections, so the graph is of what is happening now, not since start.

import type { MetricObjectWithValues, MetricValue, MetricValueWithName } from 'prom-client';

export interface GraphNode {
  readonly id: string;
  readonly workload: string;
  readonly namespace: string;
  readonly app: string;
  readonly kind: 'gateway' | 'workload' | 'unknown';
}

export interface GraphEdge {
  readonly source: string;
  readonly target: string;
  readonly service: string;
  /** Requests per second over the last interval. */
  readonly rps: number;
  /** Share of 5xx (and unanswered) responses, 0–100, over the last interval. */
  readonly errorPercent: number;
  /** 99th percentile duration in ms (bucket bound), over the last interval or since start. */
  readonly p99Ms: number | null;
  readonly mtls: boolean;
  /** Requests since the proxies started. */
  readonly total: number;
  readonly codes: Readonly<Record<string, number>>;
}

export interface ServiceGraph {
  readonly at: string;
  readonly nodes: readonly GraphNode[];
  readonly edges: readonly GraphEdge[];
}

type Samples = MetricObjectWithValues<MetricValue<string>>[];

interface EdgeCounts {
  source: string;
  target: string;
  service: string;
  reporter: string;
  mtls: boolean;
  total: number;
  errors: number;
  codes: Record<string, number>;
  buckets: Map<number, number>;
}

function nodeOf(workload: string, namespace: string, app: string): GraphNode {
  const kind = workload === 'unknown' ? 'unknown' : /ingressgateway|gateway/.test(workload) ? 'gateway' : 'workload';
  return { id: `${namespace}/${workload}`, workload, namespace, app, kind };
}

/**
 * A scraped sample's labels as strings. A scrape is another process's answer (a compromised
 * workload's metrics port among them), so nothing in it is trusted to have the shape prom-client gives.
 */
function labelsOf(labels: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof labels !== 'object' || labels === null) return out;
  for (const [k, v] of Object.entries(labels)) if (typeof v === 'string' || typeof v === 'number') out[k] = String(v);
  return out;
}

/** A sample's value: a finite count, never a string a page would print (a counter or bucket is never negative). */
function countOf(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
}

const samplesIn = (metric: unknown): unknown[] => (typeof metric === 'object' && metric !== null && Array.isArray((metric as { values?: unknown }).values) ? (metric as { values: unknown[] }).values : []);

/** Sums the scrapes of every proxy into counts per edge (destination-reported where there is one). */
function countEdges(scrapes: readonly Samples[], nodes: Map<string, GraphNode>): Map<string, EdgeCounts> {
  const edges = new Map<string, EdgeCounts>();
  const add = (l: Record<string, string>, f: (e: EdgeCounts) => void): void => {
    const src = nodeOf(l.source_workload ?? 'unknown', l.source_workload_namespace ?? 'unknown', l.source_app ?? 'unknown');
    // A request that never reached a workload (a local reply: 429, 503 UH, 404 NR) ends at its service,
    // in the namespace its name says (else destination_service_namespace, unknown for a host outside the registry), or at `unknown`.
    const dst = l.destination_workload && l.destination_workload !== 'unknown'
      ? nodeOf(l.destination_workload, l.destination_workload_namespace ?? 'unknown', l.destination_app ?? 'unknown')
      : nodeOf(l.destination_service_name && l.destination_service_name !== 'unknown' ? l.destination_service_name : 'unknown', /^[^.]+\.([^.]+)\.svc\./.exec(l.destination_service ?? '')?.[1] ?? l.destination_service_namespace ?? 'unknown', 'unknown');
    nodes.set(src.id, src);
    nodes.set(dst.id, dst);
    const key = `${l.reporter}|${src.id}|${dst.id}|${l.destination_service}`;
    let e = edges.get(key);
    if (!e) {
      e = { source: src.id, target: dst.id, service: l.destination_service ?? 'unknown', reporter: l.reporter ?? '', mtls: false, total: 0, errors: 0, codes: {}, buckets: new Map() };
      edges.set(key, e);
    }
    if (l.connection_security_policy === 'mutual_tls' || l.destination_principal?.startsWith('spiffe://')) e.mtls = true;
    f(e);
  };
  for (const scrape of scrapes) {
    if (!Array.isArray(scrape)) continue;
    for (const m of scrape as unknown[]) {
      const name = (m as { name?: unknown } | null)?.name;
      if (name === 'istio_requests_total') {
        for (const v of samplesIn(m) as Partial<MetricValue<string>>[]) {
          const value = countOf(v?.value);
          if (value === undefined) continue;
          const labels = labelsOf(v.labels);
          add(labels, (e) => {
            // A status code is three digits; anything else a proxy writes there is not one.
            const code = /^\d{1,3}$/.test(labels['response_code'] ?? '') ? labels['response_code']! : '0';
            e.total += value;
            e.codes[code] = (e.codes[code] ?? 0) + value;
            if (code === '0' || code.startsWith('5')) e.errors += value;
          });
        }
      } else if (name === 'istio_request_duration_milliseconds') {
        for (const v of samplesIn(m) as Partial<MetricValueWithName<string>>[]) {
          const value = countOf(v?.value);
          if (v?.metricName !== 'istio_request_duration_milliseconds_bucket' || value === undefined) continue;
          const labels = labelsOf(v.labels);
          const bound = labels['le'] === '+Inf' ? Infinity : Number(labels['le']);
          if (Number.isNaN(bound)) continue;
          add(labels, (e) => e.buckets.set(bound, (e.buckets.get(bound) ?? 0) + value));
        }
      }
    }
  }
  // Kiali's rule: between two mesh workloads the server's view counts; the client's only where no server reported.
  const reported = new Set([...edges.values()].filter((e) => e.reporter === 'destination').map((e) => `${e.source}|${e.target}|${e.service}`));
  for (const [k, e] of edges) if (e.reporter === 'source' && reported.has(`${e.source}|${e.target}|${e.service}`)) edges.delete(k);
  return edges;
}

function p99(buckets: Map<number, number>): number | null {
  const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total <= 0) return null;
  for (const [bound, count] of sorted) if (count >= total * 0.99) return Number.isFinite(bound) ? bound : (sorted.at(-2)?.[0] ?? null);
  return null;
}

/** Keeps the last collection, so each new one yields rates. */
export class ServiceGraphBuilder {
  #previous: { at: number; edges: Map<string, EdgeCounts> } | undefined;
  #last: ServiceGraph = { at: new Date(0).toISOString(), nodes: [], edges: [] };

  constructor(private readonly now: () => number = Date.now) {}

  update(scrapes: readonly Samples[]): ServiceGraph {
    const nodes = new Map<string, GraphNode>();
    const counts = countEdges(scrapes, nodes);
    const at = this.now();
    const prev = this.#previous;
    const seconds = prev ? Math.max(0.001, (at - prev.at) / 1000) : 0;
    const edges: GraphEdge[] = [];
    for (const [key, e] of counts) {
      const before = prev?.edges.get(key);
      const delta = before ? e.total - before.total : e.total;
      const errors = before ? e.errors - before.errors : e.errors;
      const window = new Map<number, number>();
      for (const [b, c] of e.buckets) window.set(b, c - (before?.buckets.get(b) ?? 0));
      const recent = p99(window);
      edges.push({
        source: e.source,
        target: e.target,
        service: e.service,
        rps: prev && before ? Math.max(0, delta) / seconds : 0,
        errorPercent: delta > 0 ? (100 * Math.max(0, errors)) / delta : 0,
        p99Ms: recent ?? p99(e.buckets),
        mtls: e.mtls,
        total: e.total,
        codes: e.codes,
      });
    }
    this.#previous = { at, edges: counts };
    this.#last = { at: new Date(at).toISOString(), nodes: [...nodes.values()].sort((a, b) => a.id.localeCompare(b.id)), edges };
    return this.#last;
  }

  get last(): ServiceGraph {
    return this.#last;
  }
}
