// One proxy's observe step: the sink every request record ends in (logWhenDone) writes the access-log
// line, counts Istio's metrics and ends the trace span, all from the same record, so the three never
// disagree. TCP connections report here too. What each part does is decided by the mesh config and
// Telemetry resources of the current snapshot (telemetry-policy.ts).

import type { Snapshot } from '../snapshot/snapshot.js';
import type { AccessLog, RequestRecord } from './access-log.js';
import { AccessLogFiles } from './access-log-files.js';
import type { IstioMetrics, ServiceName, TcpConnectionRecord } from './istio-metrics.js';
import { serviceOfHost } from './istio-labels.js';
import { nodeIdOf, type WorkloadInfo } from './workload.js';
import { peerMetadataOf, type PeerMetadata } from './peer-metadata.js';
import type { MetricsServer } from './metrics-server.js';
import { DEFAULT_TELEMETRY_POLICY, telemetryPolicyFor, type TelemetryPolicy } from './telemetry-policy.js';
import { ProxyTracer } from './tracing.js';
import { ServiceGraphBuilder } from './service-graph.js';
import type { DashboardData } from './dashboard-page.js';
import { nodeDetails } from './dashboard-details.js';
import { DEFAULT_REPORTING_INTERVAL_MS, PeriodicReports } from './periodic-report.js';
import { whenNeeded } from '../runtime/when-needed.js';
import { logsConnection, logsRequest, readsUpstreamConnection } from './access-log-policy.js';
import { watchUpstreamSockets } from '../proxy/upstream-socket.js';
import type { EventLog } from './export-failures.js';
import type { OtelAccessLogs } from './otel-access-log.js';

// Istio's metrics, their overrides and the /stats/prometheus server, loaded only by a proxy that counts
// (runtime/when-needed.ts): `--metrics-port 0` holds none of their code.
const istioMetrics = whenNeeded<typeof import('./istio-metrics.js')>('./istio-metrics.js', import.meta.url);
const metricsServer = whenNeeded<typeof import('./metrics-server.js')>('./metrics-server.js', import.meta.url);
// Access lines to OpenTelemetry collectors over gRPC, with the logs SDK and @grpc/grpc-js: loaded by
// a proxy whose policy names an `envoyOtelAls` provider, never by one that does not (its memory).
const otelAccessLog = whenNeeded<typeof import('./otel-access-log.js')>('./otel-access-log.js', import.meta.url);

export interface ProxyTelemetryOptions {
  /** `off`, `stdout` or a file path: where the access log's `/dev/stdout` goes (access-log-files.ts). */
  readonly accessLog: string;
  readonly self: WorkloadInfo;
  readonly role: 'gateway' | 'sidecar';
  /**
   * The port of `/stats/prometheus` (0 = any free port; absent = no metrics at all, which the CLI's
   * `--metrics-port 0` means). `'primary'`: count, and let the `--workers` primary serve the sum.
   */
  readonly metricsPort?: number | 'primary';
  /** The current snapshot: the mesh config and Telemetry resources, and a sidecar's own Service. */
  readonly snapshot?: () => Snapshot | undefined;
  /** The workload's labels, for Telemetry selectors and to find its Service in the registry. */
  readonly labels?: Readonly<Record<string, string>>;
  readonly random?: () => number;
  /** How often open TCP connections and gRPC streams report what they carried so far, unless a Telemetry's reportingInterval says (default 5 s, Istio's). */
  readonly reportingIntervalMs?: number;
  /** Where failed exports to a collector (spans, access logs) are said, at most once a minute each. */
  readonly events?: EventLog;
}

export interface ProxyTelemetry extends AccessLog {
  readonly self: WorkloadInfo;
  readonly tracer: ProxyTracer;
  /** The telemetry policy of the current snapshot. */
  policy(): TelemetryPolicy;
  /** This proxy's own traffic as the dashboard's graph (undefined without metrics). */
  readonly dashboard?: () => Promise<DashboardData>;
  /** What this proxy tells mesh peers about itself (peer-metadata.ts). */
  readonly peerMetadata: PeerMetadata;
  readonly metrics?: IstioMetrics;
  /**
   * Opens the metrics port (when there is one); resolves to the port bound, 0 for none. A port that
   * cannot be opened is logged and leaves the proxy serving without it: traffic matters more.
   */
  listen(host: string, log: { error(o: object, msg: string): void }): Promise<number>;
  close(): Promise<void>;
  /** A TCP connection was opened / closed by the TCP proxy. */
  tcpOpened(c: Pick<TcpConnectionRecord, 'reporter' | 'cluster' | 'upstreamPeer' | 'downstreamPeer'>): void;
  tcpClosed(c: TcpConnectionRecord): void;
}

export function createProxyTelemetry(o: ProxyTelemetryOptions): ProxyTelemetry {
  const files = new AccessLogFiles(o.accessLog, o.events);
  const selfService = o.role === 'sidecar' && o.snapshot ? serviceFinder(o.snapshot, o.self.namespace, o.labels ?? {}) : undefined;
  const policies = new WeakMap<Snapshot, TelemetryPolicy>();
  // Read twice per request (the span's start, the record's end): the last snapshot's answer is kept at hand.
  let lastSnapshot: Snapshot | undefined;
  let lastPolicy: TelemetryPolicy = DEFAULT_TELEMETRY_POLICY;
  // Requests note the socket they go out on only while a log this proxy writes prints its ends; the
  // policy is read at each request's start (its span), before it goes upstream.
  const self = {};
  const watch = (p: TelemetryPolicy): void => watchUpstreamSockets(self, readsUpstreamConnection(p.accessLog, (path) => files.accepts(path)));
  watch(DEFAULT_TELEMETRY_POLICY);
  const policy = (): TelemetryPolicy => {
    const s = o.snapshot?.();
    if (!s) return DEFAULT_TELEMETRY_POLICY;
    if (s === lastSnapshot) return lastPolicy;
    let p = policies.get(s);
    if (!p) {
      p = telemetryPolicyFor(s.resources, { namespace: o.self.namespace, labels: o.labels ?? {} });
      policies.set(s, p);
      const provider = p.traceProvider;
      if (provider && p.samplingPercent > 0) setImmediate(() => tracer.prepare(provider));
      for (const sink of p.accessLog.otel) setImmediate(() => otelLogs().prepare(sink.provider));
    }
    if (p !== lastPolicy) watch(p);
    lastSnapshot = s;
    lastPolicy = p;
    return p;
  };
  const tracer = new ProxyTracer({ self: o.self, role: o.role, policy, ...(selfService ? { selfService } : {}), ...(o.random ? { random: o.random } : {}), ...(o.events ? { events: o.events } : {}) });
  let otelLogsMade: OtelAccessLogs | undefined;
  const otelLogs = (): OtelAccessLogs => (otelLogsMade ??= new (otelAccessLog().OtelAccessLogs)({ self: o.self, role: o.role, ...(o.events ? { events: o.events } : {}) }));
  const port = o.metricsPort;
  const metrics = port !== undefined ? new (istioMetrics().IstioMetrics)({ self: o.self, role: o.role, ...(selfService ? { selfService } : {}) }) : undefined;
  if (metrics && port === 'primary') metricsServer().offerToPrimary([metrics.registry]);
  const reportingIntervalMs = o.reportingIntervalMs ?? DEFAULT_REPORTING_INTERVAL_MS;
  const reports = metrics ? new PeriodicReports(metrics, reportingIntervalMs) : undefined;
  let server: MetricsServer | undefined;
  const graph = new ServiceGraphBuilder();
  const dashboard = metrics
    ? async (): Promise<DashboardData> => {
      const g = graph.update([await metrics.registry.getMetricsAsJSON()]);
      const s = o.snapshot?.();
      return { ...g, title: `meshgate ${o.role} ${o.self.workload} · its own traffic`, details: nodeDetails(g.nodes, s?.resources ?? [], s?.problems ?? []) };
    }
    : undefined;
  return {
    ...(dashboard ? { dashboard } : {}),
    self: o.self,
    tracer,
    policy,
    peerMetadata: peerMetadataOf(o.self, nodeIdOf(o.role, o.self)),
    ...(metrics ? { metrics } : {}),
    async listen(host, logger) {
      if (!metrics || typeof port !== 'number') return 0;
      try {
        server = await metricsServer().serveMetrics(() => [metrics.registry], port, host);
      } catch (err) {
        logger.error({ port, host, error: (err as Error).message }, 'metrics port (--metrics-port) cannot listen; serving without /stats/prometheus');
        return 0;
      }
      return server.port;
    },
    close: async () => {
      watchUpstreamSockets(self, false);
      reports?.stop();
      await server?.close();
      await tracer.close();
      await otelLogsMade?.close();
      files.flush();
    },
    startSpan: (req, record) => {
      tracer.start(req, record);
      if (record.grpc && reports) {
        reports.setInterval(policy().reportingIntervalMs ?? reportingIntervalMs);
        reports.streamStarted(record);
      }
    },
    write(r: RequestRecord) {
      const p = policy();
      for (const sink of p.accessLog.files) if (files.accepts(sink.provider.path) && logsRequest(sink, r)) files.write(sink.provider.path, sink.provider.format.format(r));
      for (const sink of p.accessLog.otel) if (logsRequest(sink, r)) otelLogs().write(sink.provider, r);
      if (metrics) {
        if (r.grpc) reports?.streamEnded(r);
        reports?.setInterval(p.reportingIntervalMs ?? reportingIntervalMs);
        metrics.setPolicy(p.metrics);
        metrics.observeRequest(r);
      }
      r.span?.end(r);
    },
    flush: () => files.flush(),
    tcpOpened: (c) => {
      const p = policy();
      metrics?.setPolicy(p.metrics);
      reports?.setInterval(p.reportingIntervalMs ?? reportingIntervalMs);
      metrics?.tcpOpenedNow(c);
      reports?.tcpOpened(c);
    },
    tcpClosed: (c) => metrics?.tcpClosedNow(reports ? reports.tcpClosed(c) : c),
    writeTcp: (c) => {
      const p = policy().accessLog;
      for (const sink of p.files) if (files.accepts(sink.provider.path) && logsConnection(sink, c)) files.write(sink.provider.path, sink.provider.format.format(c));
      for (const sink of p.otel) if (logsConnection(sink, c)) otelLogs().write(sink.provider, c);
    },
  };
}

/**
 * The Service whose endpoints are this workload (its pods' labels match ours), as Istio's inbound
 * cluster metadata names it; looked up once per snapshot.
 */
function serviceFinder(snapshot: () => Snapshot | undefined, namespace: string, labels: Readonly<Record<string, string>>): () => ServiceName | undefined {
  const cache = new WeakMap<Snapshot, ServiceName | null>();
  return () => {
    const s = snapshot();
    if (!s) return undefined;
    let found = cache.get(s);
    if (found === undefined) {
      found = null;
      for (const svc of s.registry.services.values()) {
        if (svc.namespace !== namespace || svc.kind !== 'Service') continue;
        if (svc.endpoints.some((e) => e.namespace === namespace && Object.entries(labels).every(([k, v]) => e.labels[k] === v))) {
          found = serviceOfHost(svc.hostname);
          break;
        }
      }
      cache.set(s, found);
    }
    return found ?? undefined;
  };
}
