// Istio's standard metrics (docs/observability.md) with prom-client: the names, label names, label values
// and histogram buckets Istio's proxies emit, so Prometheus queries, Grafana dashboards and Kiali work
// unchanged. Fed from the request record the access log is written from (one observe step) and
// from the TCP proxy's connection record. Label values come from configuration and the registry,
// never from a path or a request id; a series cap keeps a flood of Host headers (passthrough) from
// growing the registry without bound.

import type { Counter, Histogram, Registry } from 'prom-client';
import { promClient } from './prom-client-module.js';
import type { RequestRecord } from './access-log.js';
import type { WorkloadInfo } from './workload.js';

/** Envoy's default histogram buckets, the same for milliseconds and bytes. */
export const ISTIO_BUCKETS: readonly number[] = Object.freeze([0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000]);

/** Istio's label names, in the order its stats filter defines them. */
export const ISTIO_LABELS = [
  'reporter',
  'source_workload',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_canonical_service',
  'source_canonical_revision',
  'source_cluster',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_service_name',
  'destination_service_namespace',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_cluster',
  'request_protocol',
  'response_code',
  'grpc_response_status',
  'response_flags',
  'connection_security_policy',
] as const;
export type IstioLabel = (typeof ISTIO_LABELS)[number];
export type IstioLabels = Record<IstioLabel, string>;

export const HTTP_METRICS = ['istio_requests_total', 'istio_request_duration_milliseconds', 'istio_request_bytes', 'istio_response_bytes'] as const;
export const TCP_METRICS = ['istio_tcp_sent_bytes_total', 'istio_tcp_received_bytes_total', 'istio_tcp_connections_opened_total', 'istio_tcp_connections_closed_total'] as const;
export type IstioMetricName = (typeof HTTP_METRICS)[number] | (typeof TCP_METRICS)[number];

/** A bound on distinct label sets; past it, the Host header no longer names destinations. */
const MAX_SERIES = 10_000;

const UNKNOWN = 'unknown';

/** What a proxy knows of itself and its own service when it reports. */
export interface ReporterContext {
  readonly self: WorkloadInfo;
  /** The proxy's role: a sidecar client falls back to the Host header for destination_service. */
  readonly role: 'gateway' | 'sidecar';
  /** The service(s) this workload serves, for the server side's destination_service (sidecars only). */
  selfService?(): ServiceName | undefined;
}

export interface ServiceName {
  readonly host: string;
  readonly name: string;
  readonly namespace: string;
}

/** `outbound|port|subset|fqdn` → the service; PassthroughCluster / BlackHoleCluster as Istio names them. */
export function serviceOfCluster(cluster: string | undefined): ServiceName | undefined {
  if (!cluster) return undefined;
  if (cluster === 'PassthroughCluster' || cluster === 'BlackHoleCluster') return { host: UNKNOWN, name: cluster, namespace: UNKNOWN };
  if (!cluster.startsWith('outbound|')) return undefined;
  const host = cluster.slice(cluster.lastIndexOf('|') + 1);
  return serviceOfHost(host);
}

export function serviceOfHost(host: string): ServiceName {
  const m = /^([^.]+)\.([^.]+)\.svc\./.exec(host);
  return m ? { host, name: m[1]!, namespace: m[2]! } : { host, name: host, namespace: UNKNOWN };
}

function sourceLabels(w: WorkloadInfo | undefined): Pick<IstioLabels, 'source_workload' | 'source_workload_namespace' | 'source_principal' | 'source_app' | 'source_version' | 'source_canonical_service' | 'source_canonical_revision' | 'source_cluster'> {
  return {
    source_workload: w?.workload || UNKNOWN,
    source_workload_namespace: w?.namespace || UNKNOWN,
    source_principal: w?.principal || UNKNOWN,
    source_app: w?.app || UNKNOWN,
    source_version: w?.version || UNKNOWN,
    source_canonical_service: w?.canonicalService || UNKNOWN,
    source_canonical_revision: w?.canonicalRevision || (w ? 'latest' : UNKNOWN),
    source_cluster: w?.cluster || UNKNOWN,
  };
}

function destinationLabels(w: WorkloadInfo | undefined, svc: ServiceName | undefined): Pick<IstioLabels, 'destination_workload' | 'destination_workload_namespace' | 'destination_principal' | 'destination_app' | 'destination_version' | 'destination_service' | 'destination_service_name' | 'destination_service_namespace' | 'destination_canonical_service' | 'destination_canonical_revision' | 'destination_cluster'> {
  return {
    destination_workload: w?.workload || UNKNOWN,
    destination_workload_namespace: w?.namespace || UNKNOWN,
    destination_principal: w?.principal || UNKNOWN,
    destination_app: w?.app || UNKNOWN,
    destination_version: w?.version || UNKNOWN,
    destination_service: svc?.host || UNKNOWN,
    destination_service_name: svc?.name || UNKNOWN,
    destination_service_namespace: svc?.namespace || UNKNOWN,
    destination_canonical_service: w?.canonicalService || UNKNOWN,
    destination_canonical_revision: w?.canonicalRevision || (w ? 'latest' : UNKNOWN),
    destination_cluster: w?.cluster || UNKNOWN,
  };
}

/** The labels of one request as Istio's stats filter writes them for this reporter. */
export function requestLabels(r: RequestRecord, ctx: ReporterContext, hostFallback = true): IstioLabels {
  const server = r.reporter === 'destination';
  let svc: ServiceName | undefined;
  if (server) svc = ctx.selfService?.();
  else {
    svc = serviceOfCluster(r.upstreamCluster);
    // A sidecar client names an unknown destination by the Host it asked for; a gateway does not.
    if (hostFallback && ctx.role === 'sidecar' && (!svc || svc.host === UNKNOWN)) {
      const host = r.authority.replace(/:\d+$/, '').toLowerCase();
      if (host) svc = { host, name: svc?.name ?? host, namespace: svc?.namespace ?? UNKNOWN };
    }
  }
  return {
    reporter: r.reporter,
    ...sourceLabels(server ? r.downstreamPeer : ctx.self),
    ...destinationLabels(server ? ctx.self : r.upstreamPeer, svc),
    request_protocol: r.grpc ? 'grpc' : 'http',
    response_code: String(r.responseCode),
    grpc_response_status: r.grpc ? (r.grpcStatus ?? '') : '',
    response_flags: r.flags || '-',
    connection_security_policy: server ? (r.downstreamPeer ? 'mutual_tls' : 'none') : UNKNOWN,
  };
}

/** One TCP connection the proxy carried (tcp_proxy), for the four TCP metrics. */
export interface TcpConnectionRecord {
  readonly reporter: 'source' | 'destination';
  readonly cluster: string;
  readonly flags: string;
  readonly bytesReceived: number;
  readonly bytesSent: number;
  readonly upstreamPeer?: WorkloadInfo;
  readonly downstreamPeer?: WorkloadInfo;
}

export function tcpLabels(c: TcpConnectionRecord, ctx: ReporterContext): IstioLabels {
  const server = c.reporter === 'destination';
  return {
    reporter: c.reporter,
    ...sourceLabels(server ? c.downstreamPeer : ctx.self),
    ...destinationLabels(server ? ctx.self : c.upstreamPeer, server ? ctx.selfService?.() : serviceOfCluster(c.cluster)),
    request_protocol: 'tcp',
    response_code: '0',
    grpc_response_status: '',
    response_flags: c.flags || '-',
    connection_security_policy: server ? (c.downstreamPeer ? 'mutual_tls' : 'none') : UNKNOWN,
  };
}

/** Labels a Telemetry `metrics.overrides[].tagOverrides` removes (REMOVE), per metric. */
export type RemovedTags = ReadonlyMap<IstioMetricName, ReadonlySet<string>>;

/** What Telemetry resources decide for this proxy's metrics. */
export interface MetricsPolicy {
  readonly disabled: ReadonlySet<IstioMetricName>;
  readonly removedTags: RemovedTags;
}

export const DEFAULT_METRICS_POLICY: MetricsPolicy = Object.freeze({ disabled: new Set<IstioMetricName>(), removedTags: new Map() });

interface HttpChildren {
  readonly total: { inc(v?: number): void };
  readonly duration: { observe(v: number): void };
  readonly requestBytes: { observe(v: number): void };
  readonly responseBytes: { observe(v: number): void };
}

/**
 * The Istio series of one proxy process. Children are cached by label set, so a request costs one
 * key and one map lookup per metric rather than prom-client hashing 25 labels four times.
 */
export class IstioMetrics {
  readonly registry: Registry = new (promClient().Registry)();
  private readonly requests: Counter<IstioLabel>;
  private readonly duration: Histogram<IstioLabel>;
  private readonly requestBytes: Histogram<IstioLabel>;
  private readonly responseBytes: Histogram<IstioLabel>;
  private readonly tcpSent: Counter<IstioLabel>;
  private readonly tcpReceived: Counter<IstioLabel>;
  private readonly tcpOpened: Counter<IstioLabel>;
  private readonly tcpClosed: Counter<IstioLabel>;
  private readonly children = new Map<string, HttpChildren>();
  private policy: MetricsPolicy = DEFAULT_METRICS_POLICY;

  private readonly maxSeries: number;

  constructor(private readonly ctx: ReporterContext, opts: { version?: string; maxSeries?: number } = {}) {
    this.maxSeries = opts.maxSeries ?? MAX_SERIES;
    const version = opts.version ?? '1.0';
    const labelNames = [...ISTIO_LABELS];
    const registers = [this.registry];
    const buckets = [...ISTIO_BUCKETS];
    const { Counter, Gauge, Histogram } = promClient();
    this.requests = new Counter({ name: 'istio_requests_total', help: 'Requests handled, by Istio standard labels.', labelNames, registers });
    this.duration = new Histogram({ name: 'istio_request_duration_milliseconds', help: 'Request duration in milliseconds.', labelNames, buckets, registers });
    this.requestBytes = new Histogram({ name: 'istio_request_bytes', help: 'Request body sizes in bytes.', labelNames, buckets, registers });
    this.responseBytes = new Histogram({ name: 'istio_response_bytes', help: 'Response body sizes in bytes.', labelNames, buckets, registers });
    this.tcpSent = new Counter({ name: 'istio_tcp_sent_bytes_total', help: 'Bytes sent to the downstream over TCP connections.', labelNames, registers });
    this.tcpReceived = new Counter({ name: 'istio_tcp_received_bytes_total', help: 'Bytes received from the downstream over TCP connections.', labelNames, registers });
    this.tcpOpened = new Counter({ name: 'istio_tcp_connections_opened_total', help: 'TCP connections opened.', labelNames, registers });
    this.tcpClosed = new Counter({ name: 'istio_tcp_connections_closed_total', help: 'TCP connections closed.', labelNames, registers });
    const build = new Gauge({ name: 'istio_build', help: 'Istio component build info.', labelNames: ['component', 'tag'], registers, aggregator: 'first' });
    build.set({ component: 'proxy', tag: version }, 1);
  }

  /** Telemetry resources changed: disabled metrics and removed tags. Cached children are rebuilt. */
  setPolicy(policy: MetricsPolicy): void {
    if (policy === this.policy) return;
    this.policy = policy;
    this.children.clear();
  }

  /** The observe step for one finished HTTP request. */
  observeRequest(r: RequestRecord): void {
    // Past the cap the Host header no longer names a series: what is left is bounded by configuration.
    const full = this.children.size >= this.maxSeries;
    const key = requestKey(r, !full);
    let c = this.children.get(key);
    if (!c) {
      c = this.childrenFor(requestLabels(r, this.ctx, !full));
      this.children.set(key, c);
    }
    c.total.inc();
    c.duration.observe(r.durationMs);
    c.requestBytes.observe(r.bytesReceived);
    c.responseBytes.observe(r.bytesSent);
  }

  /** A TCP connection opened (counted at once) … */
  tcpOpenedNow(c: Pick<TcpConnectionRecord, 'reporter' | 'cluster' | 'upstreamPeer' | 'downstreamPeer'>): void {
    this.inc(this.tcpOpened, 'istio_tcp_connections_opened_total', tcpLabels({ ...c, flags: '-', bytesReceived: 0, bytesSent: 0 }, this.ctx), 1);
  }

  /** … and closed, with what it carried. */
  tcpClosedNow(c: TcpConnectionRecord): void {
    const labels = tcpLabels(c, this.ctx);
    this.inc(this.tcpClosed, 'istio_tcp_connections_closed_total', labels, 1);
    this.inc(this.tcpSent, 'istio_tcp_sent_bytes_total', labels, c.bytesSent);
    this.inc(this.tcpReceived, 'istio_tcp_received_bytes_total', labels, c.bytesReceived);
  }

  private inc(counter: Counter<IstioLabel>, name: IstioMetricName, labels: IstioLabels, v: number): void {
    if (this.policy.disabled.has(name)) return;
    counter.inc(this.trim(name, labels), v);
  }

  private trim(name: IstioMetricName, labels: IstioLabels): IstioLabels {
    const removed = this.policy.removedTags.get(name);
    if (!removed || removed.size === 0) return labels;
    const out = { ...labels };
    // A removed tag is absent from the series: prom-client needs every declared label, so it is empty.
    for (const t of removed) if (t in out) out[t as IstioLabel] = '';
    return out;
  }

  private childrenFor(labels: IstioLabels): HttpChildren {
    const off = this.policy.disabled;
    const noop = { inc: () => undefined, observe: () => undefined };
    return {
      total: off.has('istio_requests_total') ? noop : this.requests.labels(this.trim('istio_requests_total', labels)),
      duration: off.has('istio_request_duration_milliseconds') ? noop : this.duration.labels(this.trim('istio_request_duration_milliseconds', labels)),
      requestBytes: off.has('istio_request_bytes') ? noop : this.requestBytes.labels(this.trim('istio_request_bytes', labels)),
      responseBytes: off.has('istio_response_bytes') ? noop : this.responseBytes.labels(this.trim('istio_response_bytes', labels)),
    };
  }
}

/** Everything requestLabels() reads that varies per request, as one string. */
function requestKey(r: RequestRecord, withHost: boolean): string {
  const peer = r.reporter === 'destination' ? r.downstreamPeer : r.upstreamPeer;
  return `${r.reporter}|${peer?.principal ?? ''}|${peer?.workload ?? ''}|${peer?.namespace ?? ''}|${peer?.version ?? ''}|${peer?.app ?? ''}|${r.upstreamCluster ?? ''}|${withHost && !r.upstreamCluster?.startsWith('outbound|') ? r.authority : ''}|${r.responseCode}|${r.flags}|${r.grpc ? `g${r.grpcStatus ?? ''}` : ''}`;
}
