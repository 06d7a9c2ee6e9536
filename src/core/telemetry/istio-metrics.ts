// Istio's standard metrics (docs/reference/metrics.md) with prom-client: the names, label names,
// label values (istio-labels.ts) and histogram buckets Istio's proxies emit, so Prometheus queries,
// Grafana dashboards and Kiali work unchanged, shaped by the Telemetry overrides of the proxy's
// snapshot (metrics-overrides.ts). Fed from the request record the access log is written from (one
// observe step) and from the TCP proxy's connection record. A series cap keeps a flood of Host
// headers (passthrough) or of values an UPSERT expression reads from requests from growing the
// registry without bound.

import type { Counter, Histogram, Registry } from 'prom-client';
import { promClient } from './prom-client-module.js';
import type { RequestRecord } from './access-log.js';
import { ISTIO_LABELS, PEER_LABELS, requestLabels, tcpLabels, type IstioLabels, type ReporterContext, type TcpConnectionRecord } from './istio-labels.js';
import { connectionAttributes, requestAttributes } from './metric-attributes.js';
import type { Attributes } from './metric-expression.js';
import { addedLabels, applyTagRules, DEFAULT_METRICS_POLICY, MAX_EXPRESSION_VALUE, type IstioMetricName, type MetricsPolicy, type ModeMetricsPolicy } from './metrics-overrides.js';

export { ISTIO_LABELS, requestLabels, serviceOfCluster, serviceOfHost, tcpLabels } from './istio-labels.js';
export type { IstioLabel, IstioLabels, ReporterContext, ServiceName, TcpConnectionRecord } from './istio-labels.js';
export type { IstioMetricName, MetricsPolicy } from './metrics-overrides.js';
export { DEFAULT_METRICS_POLICY } from './metrics-overrides.js';

/** Envoy's default histogram buckets, the same for milliseconds and bytes. */
export const ISTIO_BUCKETS: readonly number[] = Object.freeze([0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000]);

/** A bound on distinct label sets; past it, the Host header and expression values no longer name series. */
const MAX_SERIES = 10_000;

interface Sink {
  inc(v?: number): void;
  observe(v: number): void;
}
const NOOP: Sink = { inc: () => undefined, observe: () => undefined };

interface HttpChildren {
  readonly total: Sink;
  readonly duration: Sink;
  readonly requestBytes: Sink;
  readonly responseBytes: Sink;
  readonly requestMessages: Sink;
  readonly responseMessages: Sink;
}

type Series = Counter<string> | Histogram<string>;

/**
 * The Istio series of one proxy process. Children are cached by label set, so a request costs one
 * key and one map lookup per metric rather than prom-client hashing 25 labels each time.
 */
export class IstioMetrics {
  readonly registry: Registry = new (promClient().Registry)();
  private series!: Record<IstioMetricName, Series>;
  private added: readonly string[] = [];
  private readonly children = new Map<string, HttpChildren>();
  private policy: MetricsPolicy = DEFAULT_METRICS_POLICY;
  private readonly maxSeries: number;

  constructor(private readonly ctx: ReporterContext, opts: { version?: string; maxSeries?: number } = {}) {
    this.maxSeries = opts.maxSeries ?? MAX_SERIES;
    this.build([]);
    const { Gauge } = promClient();
    const build = new Gauge({ name: 'istio_build', help: 'Istio component build info.', labelNames: ['component', 'tag'], registers: [this.registry], aggregator: 'first' });
    build.set({ component: 'proxy', tag: opts.version ?? '1.0' }, 1);
  }

  /**
   * (Re)creates the series with Istio's labels plus those the policy adds. Adding a label starts its
   * series afresh (as a changed Istio stats configuration does); removing one leaves it unset.
   */
  private build(added: readonly string[]): void {
    for (const name of Object.keys(this.series ?? {})) this.registry.removeSingleMetric(name);
    this.added = added;
    const registers = [this.registry];
    const labelNames = [...ISTIO_LABELS, ...added];
    const peerLabels = [...PEER_LABELS, ...added];
    const buckets = [...ISTIO_BUCKETS];
    const { Counter, Histogram } = promClient();
    const counter = (name: string, help: string, names = labelNames): Counter<string> => new Counter({ name, help, labelNames: names, registers });
    const histogram = (name: string, help: string): Histogram<string> => new Histogram({ name, help, labelNames, buckets, registers });
    this.series = {
      istio_requests_total: counter('istio_requests_total', 'Requests handled, by Istio standard labels.'),
      istio_request_duration_milliseconds: histogram('istio_request_duration_milliseconds', 'Request duration in milliseconds.'),
      istio_request_bytes: histogram('istio_request_bytes', 'Request body sizes in bytes.'),
      istio_response_bytes: histogram('istio_response_bytes', 'Response body sizes in bytes.'),
      istio_request_messages_total: counter('istio_request_messages_total', 'gRPC messages received from the client.', peerLabels),
      istio_response_messages_total: counter('istio_response_messages_total', 'gRPC messages sent to the client.', peerLabels),
      istio_tcp_sent_bytes_total: counter('istio_tcp_sent_bytes_total', 'Bytes sent to the downstream over TCP connections.'),
      istio_tcp_received_bytes_total: counter('istio_tcp_received_bytes_total', 'Bytes received from the downstream over TCP connections.'),
      istio_tcp_connections_opened_total: counter('istio_tcp_connections_opened_total', 'TCP connections opened.'),
      istio_tcp_connections_closed_total: counter('istio_tcp_connections_closed_total', 'TCP connections closed.'),
    };
  }

  /** Telemetry resources changed: disabled metrics, removed and upserted labels. Cached children are rebuilt. */
  setPolicy(policy: MetricsPolicy): void {
    if (policy === this.policy) return;
    this.policy = policy;
    this.children.clear();
    const added = addedLabels(policy);
    if (added.join(',') !== this.added.join(',')) this.build(added);
  }

  private modeOf(reporter: 'source' | 'destination'): ModeMetricsPolicy {
    return reporter === 'destination' ? this.policy.server : this.policy.client;
  }

  /** The observe step for one finished HTTP request. */
  observeRequest(r: RequestRecord): void {
    const mode = this.modeOf(r.reporter);
    // Past the cap neither the Host header nor an expression names a series: what is left is bounded by configuration.
    const full = this.children.size >= this.maxSeries;
    const values = mode.expressions.length > 0 ? evaluate(mode, full ? undefined : requestAttributes(r)) : NO_VALUES;
    const key = values.length > 0 ? `${requestKey(r, !full)}|${values.join('\u0001')}` : requestKey(r, !full);
    let c = this.children.get(key);
    if (!c) {
      c = this.childrenFor(mode, requestLabels(r, this.ctx, !full), values);
      this.children.set(key, c);
    }
    c.total.inc();
    c.duration.observe(r.durationMs);
    c.requestBytes.observe(r.bytesReceived);
    c.responseBytes.observe(r.bytesSent);
    // Istio counts gRPC messages for gRPC requests only.
    if (r.grpcMessages) {
      c.requestMessages.inc(r.grpcMessages.request.count);
      c.responseMessages.inc(r.grpcMessages.response.count);
    }
  }

  /** A TCP connection opened (counted at once) … */
  tcpOpenedNow(c: Pick<TcpConnectionRecord, 'reporter' | 'cluster' | 'upstreamPeer' | 'downstreamPeer'>): void {
    const record = { ...c, flags: '-', bytesReceived: 0, bytesSent: 0 };
    this.tcp(record, [['istio_tcp_connections_opened_total', 1]]);
  }

  /** … and closed, with what it carried. */
  tcpClosedNow(c: TcpConnectionRecord): void {
    this.tcp(c, [['istio_tcp_connections_closed_total', 1], ['istio_tcp_sent_bytes_total', c.bytesSent], ['istio_tcp_received_bytes_total', c.bytesReceived]]);
  }

  private tcp(c: TcpConnectionRecord, counts: readonly (readonly [IstioMetricName, number])[]): void {
    const mode = this.modeOf(c.reporter);
    const labels = tcpLabels(c, this.ctx);
    const values = mode.expressions.length > 0 ? evaluate(mode, connectionAttributes(c)) : NO_VALUES;
    for (const [name, v] of counts) {
      if (mode.disabled.has(name)) continue;
      (this.series[name] as Counter<string>).inc(this.labelsFor(mode, name, labels, values), v);
    }
  }

  private labelsFor(mode: ModeMetricsPolicy, name: IstioMetricName, labels: IstioLabels, values: readonly string[]): Record<string, string> {
    return applyTagRules(labels, mode.tags.get(name), values);
  }

  private childrenFor(mode: ModeMetricsPolicy, labels: IstioLabels, values: readonly string[]): HttpChildren {
    const sink = (name: IstioMetricName, peerOnly = false): Sink => {
      if (mode.disabled.has(name)) return NOOP;
      let l = this.labelsFor(mode, name, labels, values);
      if (peerOnly) l = Object.fromEntries(Object.entries(l).filter(([k]) => !NON_PEER.has(k)));
      // prom-client's children hold functions already bound to their label set: no wrapper on the request path.
      const series = this.series[name];
      if (series instanceof promClient().Histogram) return { inc: NOOP.inc, observe: series.labels(l).observe };
      return { inc: series.labels(l).inc, observe: NOOP.observe };
    };
    return {
      total: sink('istio_requests_total'),
      duration: sink('istio_request_duration_milliseconds'),
      requestBytes: sink('istio_request_bytes'),
      responseBytes: sink('istio_response_bytes'),
      requestMessages: sink('istio_request_messages_total', true),
      responseMessages: sink('istio_response_messages_total', true),
    };
  }
}

/** The labels the gRPC message counters do not carry (istio-labels.ts PEER_LABELS). */
const NON_PEER = new Set<string>(ISTIO_LABELS.filter((l) => !PEER_LABELS.includes(l)));

const NO_VALUES: readonly string[] = [];

/** Every UPSERT expression of a mode for one request; without attributes (past the cap) all `unknown`. */
function evaluate(mode: ModeMetricsPolicy, attributes: Attributes | undefined): string[] {
  return mode.expressions.map((e) => {
    const v = attributes ? e.evaluate(attributes) : undefined;
    return v === undefined ? 'unknown' : v.length > MAX_EXPRESSION_VALUE ? v.slice(0, MAX_EXPRESSION_VALUE) : v;
  });
}

/** Everything requestLabels() reads that varies per request, as one string. */
function requestKey(r: RequestRecord, withHost: boolean): string {
  const peer = r.reporter === 'destination' ? r.downstreamPeer : r.upstreamPeer;
  return `${r.reporter}|${peer?.principal ?? ''}|${peer?.workload ?? ''}|${peer?.namespace ?? ''}|${peer?.version ?? ''}|${peer?.app ?? ''}|${r.upstreamCluster ?? ''}|${withHost && !r.upstreamCluster?.startsWith('outbound|') ? r.authority : ''}|${r.responseCode}|${r.flags}|${r.grpc ? `g${r.grpcStatus ?? ''}` : ''}`;
}
