// Istio's "Visualizing Metrics with Grafana" and "Visualizing Your Mesh" (Kiali) tasks, as far as
// meshgate's part goes: the PromQL behind Istio's Mesh, Service and Workload dashboards and Kiali's
// graph, evaluated by a real Prometheus scraping every bookinfo sidecar (test/helpers/bookinfo-mesh.ts)
// while pages load. Each query returns series, and each series carries every label the panel or the
// graph groups by (Prometheus drops an empty label, so a missing one is one meshgate left empty).
// The queries are the dashboards' and Kiali's own, their variables filled in ($service = reviews,
// $workload = reviews-v2, the namespace default); the ingress gateway is not scraped here, so the
// source-reported ones see the sidecars' calls (productpage onward).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startBookinfoMesh, type BookinfoMesh } from './helpers/bookinfo-mesh.js';
import { prometheusSkipReason, startPrometheus, type TestPrometheus } from './helpers/prometheus.js';

const reason = prometheusSkipReason();

/** Kiali's graph: the labels it keys nodes and edges on (its groupBy for HTTP/gRPC traffic). */
const KIALI_GROUP_BY = 'source_cluster,source_workload_namespace,source_workload,source_canonical_service,source_canonical_revision,destination_cluster,destination_service_namespace,destination_service,destination_service_name,destination_workload_namespace,destination_workload,destination_canonical_service,destination_canonical_revision,request_protocol,response_code,grpc_response_status,response_flags';
const KIALI_RT_GROUP_BY = KIALI_GROUP_BY.split(',').slice(0, 14).join(',');
const KIALI_SECURITY_GROUP_BY = `${KIALI_GROUP_BY.split(',').slice(0, 13).join(',')},connection_security_policy`;
const REVIEWS = 'reviews.default.svc.cluster.local';

interface Panel {
  readonly name: string;
  readonly query: string;
  /** Labels every series must carry (the query's `by`, less those a panel expects empty). */
  readonly labels: readonly string[];
  /** Values some series must have. */
  readonly expect?: Readonly<Record<string, string>>;
}

const by = (list: string): string[] => list.split(',').map((l) => l.trim());
// gRPC status is empty for HTTP, as in Istio: Kiali groups by it but reads it only for gRPC.
const kialiLabels = by(KIALI_GROUP_BY).filter((l) => l !== 'grpc_response_status');

const PANELS: readonly Panel[] = [
  { name: 'Mesh: Global Request Volume', query: 'round(sum(irate(istio_requests_total{reporter="source"}[1m])), 0.001)', labels: [] },
  { name: 'Mesh: Global Success Rate (non-5xx responses)', query: 'sum(rate(istio_requests_total{reporter="source", response_code!~"5.*"}[1m])) / sum(rate(istio_requests_total{reporter="source"}[1m]))', labels: [] },
  {
    name: 'Mesh: HTTP/GRPC Workloads',
    query: 'label_join(sum(rate(istio_requests_total{reporter="source", response_code="200"}[1m])) by (destination_workload, destination_workload_namespace, destination_service), "destination_workload_var", ".", "destination_workload", "destination_workload_namespace")',
    labels: ['destination_workload', 'destination_workload_namespace', 'destination_service', 'destination_workload_var'],
    expect: { destination_workload: 'ratings-v1', destination_workload_var: 'ratings-v1.default', destination_service: 'ratings.default.svc.cluster.local' },
  },
  {
    name: 'Mesh: P50 latency by workload',
    query: 'histogram_quantile(0.50, sum(rate(istio_request_duration_milliseconds_bucket{reporter="source"}[1m])) by (le, destination_workload, destination_workload_namespace))',
    labels: ['destination_workload', 'destination_workload_namespace'],
  },
  {
    name: 'Service: Incoming Requests By Source And Response Code',
    query: `round(sum(irate(istio_requests_total{reporter=~"destination",destination_service=~"${REVIEWS}"}[5m])) by (source_workload, source_workload_namespace, response_code), 0.001)`,
    labels: ['source_workload', 'source_workload_namespace', 'response_code'],
    expect: { source_workload: 'productpage-v1', source_workload_namespace: 'default', response_code: '200' },
  },
  {
    name: 'Service: Incoming Requests By Source (mTLS)',
    query: `round(sum(irate(istio_requests_total{reporter=~"destination", connection_security_policy="mutual_tls", destination_service=~"${REVIEWS}"}[5m])) by (source_workload, source_workload_namespace), 0.001)`,
    labels: ['source_workload', 'source_workload_namespace'],
    expect: { source_workload: 'productpage-v1' },
  },
  {
    name: 'Service: Incoming Request Size By Source',
    query: `histogram_quantile(0.90, sum(irate(istio_request_bytes_bucket{reporter=~"destination", destination_service=~"${REVIEWS}"}[1m])) by (source_workload, source_workload_namespace, le))`,
    labels: ['source_workload', 'source_workload_namespace'],
  },
  {
    name: 'Workload: Incoming Requests By Source And Response Code',
    query: 'round(sum(irate(istio_requests_total{reporter=~"destination", destination_workload_namespace=~"default", destination_workload=~"reviews-v2"}[5m])) by (source_workload, source_workload_namespace, response_code), 0.001)',
    labels: ['source_workload', 'source_workload_namespace', 'response_code'],
    expect: { source_workload: 'productpage-v1' },
  },
  {
    name: 'Workload: Outgoing Requests By Destination And Response Code',
    query: 'round(sum(irate(istio_requests_total{reporter=~"source", source_workload_namespace=~"default", source_workload=~"reviews-v2"}[5m])) by (destination_service, response_code), 0.001)',
    labels: ['destination_service', 'response_code'],
    expect: { destination_service: 'ratings.default.svc.cluster.local', response_code: '200' },
  },
  {
    name: 'Workload: Response Size By Destination',
    query: 'histogram_quantile(0.99, sum(irate(istio_response_bytes_bucket{reporter=~"source", source_workload=~"reviews-v2", source_workload_namespace=~"default"}[1m])) by (destination_service, le))',
    labels: ['destination_service'],
  },
  {
    name: 'Kiali graph: requests',
    query: `round(sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="default"} [600s])) by (${KIALI_GROUP_BY}) > 0,0.001)`,
    labels: kialiLabels,
    expect: { source_workload: 'reviews-v2', destination_service_name: 'ratings', destination_workload: 'ratings-v1', destination_canonical_service: 'ratings', destination_canonical_revision: 'v1', request_protocol: 'http', response_code: '200', response_flags: '-' },
  },
  {
    name: 'Kiali graph: security (mTLS edges)',
    query: `sum(rate(istio_requests_total{reporter="destination",destination_service_namespace="default"}[600s])) by (${KIALI_SECURITY_GROUP_BY}) > 0`,
    labels: by(KIALI_SECURITY_GROUP_BY),
    expect: { source_workload: 'productpage-v1', destination_workload: 'details-v1', connection_security_policy: 'mutual_tls' },
  },
  {
    name: 'Kiali graph: response time',
    query: `histogram_quantile(0.95, sum(rate(istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace="default"}[600s])) by (le,${KIALI_RT_GROUP_BY})) > 0`,
    labels: by(KIALI_RT_GROUP_BY),
  },
];

describe('Grafana dashboards and Kiali graph queries over the bookinfo sidecars', { skip: reason }, () => {
  let mesh: BookinfoMesh;
  let prometheus: TestPrometheus;

  before(async () => {
    mesh = await startBookinfoMesh(() => ({ metricsPort: 0 }));
    prometheus = await startPrometheus([...mesh.sidecars.values()].map((s) => `127.0.0.1:${s.metricsPort}`));
  });
  after(async () => {
    await prometheus?.close();
    await mesh?.close();
  });

  it('every panel returns series with the labels it groups by', async () => {
    // Pages keep loading until every query has what it shows: rates need two scrapes apart with traffic between.
    const pending = new Set(PANELS);
    const results = new Map<Panel, Array<Record<string, string>>>();
    for (let round = 0; pending.size > 0 && round < 200; round++) {
      for (let i = 0; i < 5; i++) assert.equal((await mesh.page()).status, 200);
      for (const panel of [...pending]) {
        const series = (await prometheus.query(panel.query)).map((r) => r.metric);
        const expected = panel.expect;
        if (series.length > 0 && (!expected || series.some((m) => Object.entries(expected).every(([k, v]) => m[k] === v)))) {
          results.set(panel, series);
          pending.delete(panel);
        }
      }
    }
    assert.deepEqual([...pending].map((p) => p.name), [], 'panels that never showed their series');
    for (const [panel, series] of results) {
      for (const m of series) assert.deepEqual(panel.labels.filter((l) => !m[l]), [], `${panel.name}: ${JSON.stringify(m)}`);
    }
  });
});
