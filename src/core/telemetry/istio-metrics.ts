// Istio's standard metrics (docs/reference/metrics.md) with prom-client: the names, label names,
// label values (istio-labels.ts) and histogram buckets Istio's proxies emit, so Prometheus queries,
// Grafana dashboards and Kiali work unchanged, shaped by the Telemetry overrides of the proxy's
// snapshot (metrics-overrides.ts). Fed from the request record the access log is written from (one
// observe step) and from the TCP proxy's connection record. A series cap keeps a flood of Host
// headers (passthrough), of values an UPSERT expression reads from requests or connections, or of
// peer metadata from growing the registry without bound; a gRPC status is one of 18 values.

import type { Registry } from 'prom-client';
import { promClient } from './prom-client-module.js';
import type { RequestRecord } from './access-log.js';
import { grpcStatusLabel, hostLabelOf, ISTIO_LABELS, PEER_LABELS, requestLabels, TCP_LABELS, tcpLabels, type IstioLabels, type ReporterContext, type TcpConnectionRecord, type TcpLabels } from './istio-labels.js';
import { connectionAttributes, requestAttributes } from './metric-attributes.js';
import { provenPeer } from './workload.js';
import type { Attributes } from './metric-expression.js';
import { RbacStats } from './rbac-stats.js';
import { CellTable, collectCounter, collectHistogram, CounterCell, HistogramCell } from './series-cells.js';
import { addedLabels, applyTagRules, DEFAULT_METRICS_POLICY, MAX_EXPRESSION_VALUE, type IstioMetricName, type MetricsPolicy, type ModeMetricsPolicy } from './metrics-overrides.js';

export { ISTIO_LABELS, requestLabels, serviceOfCluster, serviceOfHost, TCP_LABELS, tcpLabels } from './istio-labels.js';
export type { IstioLabel, IstioLabels, ReporterContext, ServiceName, TcpConnectionRecord } from './istio-labels.js';
export type { IstioMetricName, MetricsPolicy } from './metrics-overrides.js';
export { DEFAULT_METRICS_POLICY } from './metrics-overrides.js';

/** Envoy's default histogram buckets, the same for milliseconds and bytes. */
export const ISTIO_BUCKETS: readonly number[] = Object.freeze([0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000]);

/** A bound on distinct label sets; past it, the Host header, expression values and peer metadata no longer name series. */
const MAX_SERIES = 10_000;

const HISTOGRAMS = new Set<IstioMetricName>(['istio_request_duration_milliseconds', 'istio_request_bytes', 'istio_response_bytes']);

/**
 * The cells one cached label set counts into, one per metric (absent: the metric is disabled). The
 * gRPC message cells are found at the first gRPC request, so their series appear when first counted.
 */
interface HttpChildren {
  readonly total: CounterCell | undefined;
  readonly duration: HistogramCell | undefined;
  readonly requestBytes: HistogramCell | undefined;
  readonly responseBytes: HistogramCell | undefined;
  messages: (() => readonly [CounterCell | undefined, CounterCell | undefined]) | readonly [CounterCell | undefined, CounterCell | undefined];
}

/** Children by what varies per request, one map per part: cluster, Host (when it names the series), code, flags and gRPC status. */
type ByCluster = Map<string, Map<string, Map<number, Map<string, HttpChildren>>>>;

/** The key of "no peer" in the per-peer index. */
const NO_PEER = Object.freeze({});

/** IstioMetrics.last: one request's index parts (gRPC requests are not kept: their status varies too). */
interface LastHit {
  children: HttpChildren | undefined;
  reporter: 'source' | 'destination';
  peer: object;
  mtls: boolean;
  cluster: string;
  outbound: boolean;
  authority: string;
  code: number;
  flags: string;
}

/** Istio's series: name, help, kind, and their labels when not all of Istio's (the gRPC message counters: the peers; TCP: no code or gRPC status). */
const SERIES: readonly (readonly [IstioMetricName, string, 'counter' | 'histogram', ('peer' | 'tcp')?])[] = [
  ['istio_requests_total', 'Requests handled, by Istio standard labels.', 'counter'],
  ['istio_request_duration_milliseconds', 'Request duration in milliseconds.', 'histogram'],
  ['istio_request_bytes', 'Request body sizes in bytes.', 'histogram'],
  ['istio_response_bytes', 'Response body sizes in bytes.', 'histogram'],
  ['istio_request_messages_total', 'gRPC messages received from the client.', 'counter', 'peer'],
  ['istio_response_messages_total', 'gRPC messages sent to the client.', 'counter', 'peer'],
  ['istio_tcp_sent_bytes_total', 'Bytes sent to the downstream over TCP connections.', 'counter', 'tcp'],
  ['istio_tcp_received_bytes_total', 'Bytes received from the downstream over TCP connections.', 'counter', 'tcp'],
  ['istio_tcp_connections_opened_total', 'TCP connections opened.', 'counter', 'tcp'],
  ['istio_tcp_connections_closed_total', 'TCP connections closed.', 'counter', 'tcp'],
];

/**
 * The Istio series of one proxy process. A request adds to cells (series-cells.ts) its cached label
 * set already holds; prom-client is loaded, and filled from them, only when something first reads
 * the registry (a scrape, the dashboard, the `--workers` primary): a proxy nobody scrapes never
 * holds it, and the request path never touches it.
 */
export class IstioMetrics {
  #registry: Registry | undefined;
  private tables: Partial<Record<IstioMetricName, CellTable<CounterCell> | CellTable<HistogramCell>>> = {};
  private added: readonly string[] = [];
  /** The tables were rebuilt (a Telemetry added labels) before the registry was made: istio_build is then listed first, as before. */
  private relabelled = false;
  /** Every cached label set, by the content of what the request varies in (requestKey). */
  private readonly children = new Map<string, HttpChildren>();
  /**
   * The same children found without building a string: by the peer object (cached per endpoint and
   * per peer metadata, so the same object request after request), then the request's own parts. A
   * WeakMap, so peers the caches drop do not stay here.
   */
  private fast = { source: new WeakMap<object, ByCluster>(), sourceMtls: new WeakMap<object, ByCluster>(), destination: new WeakMap<object, ByCluster>() };
  /**
   * The parts of the last request counted through the index, and its children: traffic mostly
   * repeats the same peer, cluster, code and flags, and six map lookups per request, each a likely
   * cache miss in a busy proxy, were most of what counting cost it (docs/benchmarks.md).
   */
  private readonly last: LastHit = { children: undefined, reporter: 'source', peer: NO_PEER, mtls: false, cluster: '', outbound: false, authority: '', code: 0, flags: '' };
  private policy: MetricsPolicy = DEFAULT_METRICS_POLICY;
  private readonly rbac = new RbacStats();
  private readonly maxSeries: number;
  private readonly version: string;

  constructor(private readonly ctx: ReporterContext, opts: { version?: string; maxSeries?: number } = {}) {
    this.maxSeries = opts.maxSeries ?? MAX_SERIES;
    this.version = opts.version ?? '1.0';
    this.build([]);
  }

  /** prom-client's registry of these series, made (and prom-client loaded) when first asked for. */
  get registry(): Registry {
    if (!this.#registry) {
      const { Gauge, Registry } = promClient();
      this.#registry = new Registry();
      const gauge = (): void => {
        const build = new Gauge({ name: 'istio_build', help: 'Istio component build info.', labelNames: ['component', 'tag'], registers: [this.#registry!], aggregator: 'first' });
        build.set({ component: 'proxy', tag: this.version }, 1);
      };
      if (this.relabelled) gauge();
      this.register();
      if (!this.relabelled) gauge();
      this.rbac.registerWith(this.#registry);
    }
    return this.#registry;
  }

  /**
   * (Re)creates the cells with Istio's labels plus those the policy adds. Adding a label starts its
   * series afresh (as a changed Istio stats configuration does); removing one leaves it unset.
   */
  private build(added: readonly string[]): void {
    const old = Object.keys(this.tables);
    if (old.length > 0 && !this.#registry) this.relabelled = true;
    for (const name of old) this.#registry?.removeSingleMetric(name);
    this.tables = {};
    this.added = added;
    const labelNames = [...ISTIO_LABELS, ...added];
    const subsets = { peer: [...PEER_LABELS, ...added], tcp: [...TCP_LABELS, ...added] };
    const buckets = [...ISTIO_BUCKETS];
    for (const [name, , kind, subset] of SERIES) {
      this.tables[name] = kind === 'histogram' ? new CellTable(labelNames, (l) => new HistogramCell(l, buckets)) : new CellTable(subset ? subsets[subset] : labelNames, (l) => new CounterCell(l));
    }
    if (this.#registry) this.register();
  }

  /** prom-client's metrics for the current tables, each filled from its table when read. */
  private register(): void {
    const registers = [this.#registry!];
    const buckets = [...ISTIO_BUCKETS];
    const { Counter, Histogram } = promClient();
    for (const [name, help, kind] of SERIES) {
      const table = this.tables[name]!;
      const labelNames = [...table.labelNames];
      if (kind === 'histogram') new Histogram({ name, help, labelNames, buckets, registers, collect: collectHistogram(table as CellTable<HistogramCell>, buckets) });
      else new Counter({ name, help, labelNames, registers, collect: collectCounter(table as CellTable<CounterCell>) });
    }
  }

  /** Telemetry resources changed: disabled metrics, removed and upserted labels. Cached children are rebuilt. */
  setPolicy(policy: MetricsPolicy): void {
    if (policy === this.policy) return;
    this.policy = policy;
    this.children.clear();
    this.fast = { source: new WeakMap(), sourceMtls: new WeakMap(), destination: new WeakMap() };
    this.last.children = undefined;
    const added = addedLabels(policy);
    if (added.join(',') !== this.added.join(',')) this.build(added);
  }

  private modeOf(reporter: 'source' | 'destination'): ModeMetricsPolicy {
    return reporter === 'destination' ? this.policy.server : this.policy.client;
  }

  /** The observe step for one finished HTTP request. */
  observeRequest(r: RequestRecord): void {
    const mode = this.modeOf(r.reporter);
    const c = mode.expressions.length === 0 && this.children.size < this.maxSeries ? this.indexed(r, mode) : this.keyed(r, mode);
    c.total?.inc(1);
    c.duration?.observe(r.durationMs);
    c.requestBytes?.observe(r.bytesReceived);
    c.responseBytes?.observe(r.bytesSent);
    // Istio counts gRPC messages for gRPC requests only.
    if (r.grpcMessages) this.messages(r, c);
    if (r.rbacDryRun) this.rbac.observe(r.rbacDryRun);
  }

  /** The messages of a gRPC request not counted yet: all of them, or those since the last periodic report. */
  private messages(r: RequestRecord, c: HttpChildren): void {
    const m = r.grpcMessages!;
    const done = (r.grpcReported ??= { request: 0, response: 0 });
    if (typeof c.messages === 'function') c.messages = c.messages();
    c.messages[0]?.inc(m.request.count - done.request);
    c.messages[1]?.inc(m.response.count - done.response);
    done.request = m.request.count;
    done.response = m.response.count;
  }

  /**
   * A gRPC stream still open: its messages so far (periodic-report.ts). Only the peer labels name
   * these series, and those are known once the request is routed.
   */
  grpcMessagesSoFar(r: RequestRecord): void {
    const m = r.grpcMessages;
    if (!m || (m.request.count === (r.grpcReported?.request ?? 0) && m.response.count === (r.grpcReported?.response ?? 0))) return;
    this.messages(r, this.keyed(r, this.modeOf(r.reporter)));
  }

  /** A TCP connection still open: the bytes it carried since the last report. */
  tcpSoFar(c: Pick<TcpConnectionRecord, 'reporter' | 'cluster' | 'upstreamPeer' | 'downstreamPeer'>, sent: number, received: number): void {
    this.tcp({ ...c, flags: '-', bytesReceived: received, bytesSent: sent }, [['istio_tcp_sent_bytes_total', sent], ['istio_tcp_received_bytes_total', received]]);
  }

  /** The request's children through the per-part index; what it has not seen yet comes from keyed(). */
  private indexed(r: RequestRecord, mode: ModeMetricsPolicy): HttpChildren {
    const server = r.reporter === 'destination';
    const peer = (server ? r.downstreamPeer : r.upstreamPeer) ?? NO_PEER;
    const mtls = r.upstreamMtls === true;
    const cluster = r.upstreamCluster ?? '';
    const l = this.last;
    if (l.children && !r.grpc && l.peer === peer && l.mtls === mtls && l.cluster === cluster && l.code === r.responseCode && l.flags === r.flags && l.reporter === r.reporter && (l.outbound || l.authority === r.authority)) return l.children;
    // A client's source_principal depends on whether the endpoint was reached over Istio mutual TLS.
    const byPeer = server ? this.fast.destination : mtls ? this.fast.sourceMtls : this.fast.source;
    let byCluster = byPeer.get(peer);
    if (!byCluster) byPeer.set(peer, (byCluster = new Map()));
    let byHost = byCluster.get(cluster);
    if (!byHost) byCluster.set(cluster, (byHost = new Map()));
    const outbound = cluster.startsWith('outbound|');
    const host = hostLabelOf(r, this.ctx);
    let byCode = byHost.get(host);
    if (!byCode) byHost.set(host, (byCode = new Map()));
    let byOutcome = byCode.get(r.responseCode);
    if (!byOutcome) byCode.set(r.responseCode, (byOutcome = new Map()));
    const outcome = r.grpc ? `${r.flags}|g${grpcStatusLabel(r.grpcStatus)}` : r.flags;
    let c = byOutcome.get(outcome);
    if (!c) byOutcome.set(outcome, (c = this.keyed(r, mode)));
    if (!r.grpc) {
      l.children = c;
      l.reporter = r.reporter;
      l.peer = peer;
      l.mtls = mtls;
      l.cluster = cluster;
      l.outbound = outbound;
      l.authority = r.authority;
      l.code = r.responseCode;
      l.flags = r.flags;
    }
    return c;
  }

  /** The request's children by the content of its label-relevant parts (and expression values), made when new. */
  private keyed(request: RequestRecord, mode: ModeMetricsPolicy): HttpChildren {
    // Past the cap neither the Host header, an expression nor a peer's metadata names a series: what
    // is left is bounded by configuration and the mesh's identities.
    const full = this.children.size >= this.maxSeries;
    const r = full && request.downstreamPeer ? { ...request, downstreamPeer: provenPeer(request.downstreamPeer) } : request;
    const values = mode.expressions.length > 0 ? evaluate(mode, full ? undefined : requestAttributes(r, this.ctx)) : NO_VALUES;
    const host = full ? '' : hostLabelOf(r, this.ctx);
    const key = values.length > 0 ? `${requestKey(r, host)}|${values.join('\u0001')}` : requestKey(r, host);
    let c = this.children.get(key);
    if (!c) {
      c = this.childrenFor(mode, requestLabels(r, this.ctx, !full), values);
      this.children.set(key, c);
    }
    return c;
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

  private tcp(connection: TcpConnectionRecord, counts: readonly (readonly [IstioMetricName, number])[]): void {
    const mode = this.modeOf(connection.reporter);
    // The same cap as requests': past it, expression values (an SNI, a client's address) and a peer's metadata name no series.
    const full = this.tcpSeries() >= this.maxSeries;
    const c = full && connection.downstreamPeer ? { ...connection, downstreamPeer: provenPeer(connection.downstreamPeer) } : connection;
    const labels = tcpLabels(c, this.ctx);
    const values = mode.expressions.length > 0 ? evaluate(mode, full ? undefined : connectionAttributes(c, this.ctx)) : NO_VALUES;
    for (const [name, v] of counts) this.counterCell(mode, name, labels, values)?.inc(v);
  }

  /** The most series any TCP metric holds. */
  private tcpSeries(): number {
    let most = 0;
    for (const [name, , , subset] of SERIES) if (subset === 'tcp') most = Math.max(most, this.tables[name]!.size);
    return most;
  }

  private labelsFor(mode: ModeMetricsPolicy, name: IstioMetricName, labels: IstioLabels | TcpLabels, values: readonly string[]): Record<string, string> {
    return applyTagRules(labels, mode.tags.get(name), values);
  }

  private counterCell(mode: ModeMetricsPolicy, name: IstioMetricName, labels: IstioLabels | TcpLabels, values: readonly string[], peerOnly = false): CounterCell | undefined {
    if (mode.disabled.has(name) || HISTOGRAMS.has(name)) return undefined;
    let l = this.labelsFor(mode, name, labels, values);
    if (peerOnly) l = Object.fromEntries(Object.entries(l).filter(([k]) => !NON_PEER.has(k)));
    return (this.tables[name] as CellTable<CounterCell>).cellFor(l);
  }

  private histogramCell(mode: ModeMetricsPolicy, name: IstioMetricName, labels: IstioLabels, values: readonly string[]): HistogramCell | undefined {
    if (mode.disabled.has(name) || !HISTOGRAMS.has(name)) return undefined;
    return (this.tables[name] as CellTable<HistogramCell>).cellFor(this.labelsFor(mode, name, labels, values));
  }

  private childrenFor(mode: ModeMetricsPolicy, labels: IstioLabels, values: readonly string[]): HttpChildren {
    return {
      total: this.counterCell(mode, 'istio_requests_total', labels, values),
      duration: this.histogramCell(mode, 'istio_request_duration_milliseconds', labels, values),
      requestBytes: this.histogramCell(mode, 'istio_request_bytes', labels, values),
      responseBytes: this.histogramCell(mode, 'istio_response_bytes', labels, values),
      messages: () => [this.counterCell(mode, 'istio_request_messages_total', labels, values, true), this.counterCell(mode, 'istio_response_messages_total', labels, values, true)],
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

/** Everything requestLabels() reads that varies per request, as one string; `host`: hostLabelOf's, or '' past the cap. */
function requestKey(r: RequestRecord, host: string): string {
  const peer = r.reporter === 'destination' ? r.downstreamPeer : r.upstreamPeer;
  return `${r.reporter}|${r.upstreamMtls ? 'm' : ''}|${peer?.principal ?? ''}|${peer?.workload ?? ''}|${peer?.namespace ?? ''}|${peer?.version ?? ''}|${peer?.app ?? ''}|${r.upstreamCluster ?? ''}|${host}|${r.responseCode}|${r.flags}|${r.grpc ? `g${grpcStatusLabel(r.grpcStatus)}` : ''}`;
}
