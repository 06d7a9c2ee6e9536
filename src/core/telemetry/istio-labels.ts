// The label values of Istio's standard metrics for one request or connection, as Istio's stats filter
// computes them (docs/reference/metrics.md): which side reports, what it knows of its peer, and where
// a value is `unknown` or `latest`. Values come from configuration, the registry, certificates and
// peer metadata, never from a path or a request id.

import type { RequestRecord } from './access-log.js';
import type { WorkloadInfo } from './workload.js';

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

/**
 * The labels of the gRPC message counters: who and where only. Istio reports them before it adds the
 * protocol, code, status, flags and security labels (they are also sent while a stream is open).
 */
export const PEER_LABELS: readonly IstioLabel[] = ISTIO_LABELS.slice(0, ISTIO_LABELS.indexOf('request_protocol'));

/**
 * The labels of the four TCP series: Istio's TCP stats have no response code and no gRPC status, as
 * a connection has neither.
 */
export const TCP_LABELS: readonly IstioLabel[] = ISTIO_LABELS.filter((l) => l !== 'response_code' && l !== 'grpc_response_status');
export type TcpLabels = Omit<IstioLabels, 'response_code' | 'grpc_response_status'>;

const UNKNOWN = 'unknown';

/**
 * Longest label value taken from what a request carries (a Host, an UPSERT expression's value):
 * longer values are cut, so a client's 60 KiB header cannot make a 60 KiB series.
 */
export const MAX_REQUEST_LABEL_VALUE = 256;

/**
 * grpc_response_status as Istio's stats write it: Envoy reads `grpc-status` as a number, and one that
 * is not a number or not one of gRPC's codes (0–16) is its InvalidCode, `-1`. So an upstream's
 * `grpc-status` can make at most 18 values, never a series per distinct string.
 */
export function grpcStatusLabel(status: string | undefined): string {
  if (status === undefined || status === '') return '';
  const s = status.trim();
  return /^\+?\d{1,3}$/.test(s) && Number(s) <= 16 ? String(Number(s)) : '-1';
}

/**
 * The Host a sidecar client names a destination outside the registry by (passthrough, blackhole, no
 * route): lower case, without its port, cut to MAX_REQUEST_LABEL_VALUE. '' wherever the Host names
 * no series: at a gateway (Istio turns the fallback off there, as any client chooses the Host), at
 * a server, and for a cluster of the registry.
 */
export function hostLabelOf(r: Pick<RequestRecord, 'reporter' | 'upstreamCluster' | 'authority'>, ctx: ReporterContext): string {
  if (ctx.role !== 'sidecar' || r.reporter === 'destination' || r.upstreamCluster?.startsWith('outbound|')) return '';
  const host = r.authority.replace(/:\d+$/, '').toLowerCase();
  return host.length > MAX_REQUEST_LABEL_VALUE ? host.slice(0, MAX_REQUEST_LABEL_VALUE) : host;
}

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

type SourceLabels = Pick<IstioLabels, 'source_workload' | 'source_workload_namespace' | 'source_principal' | 'source_app' | 'source_version' | 'source_canonical_service' | 'source_canonical_revision' | 'source_cluster'>;
type DestinationLabels = Pick<IstioLabels, 'destination_workload' | 'destination_workload_namespace' | 'destination_principal' | 'destination_app' | 'destination_version' | 'destination_service' | 'destination_service_name' | 'destination_service_namespace' | 'destination_canonical_service' | 'destination_canonical_revision' | 'destination_cluster'>;

// A missing canonical revision is `latest` on either side, with or without a peer (Istio's default).
// `principal`: the source's SPIFFE ID as the connection proved it, else `unknown`.
function sourceLabels(w: WorkloadInfo | undefined, principal: string | undefined): SourceLabels {
  return {
    source_workload: w?.workload || UNKNOWN,
    source_workload_namespace: w?.namespace || UNKNOWN,
    source_principal: principal || UNKNOWN,
    source_app: w?.app || UNKNOWN,
    source_version: w?.version || UNKNOWN,
    source_canonical_service: w?.canonicalService || UNKNOWN,
    source_canonical_revision: w?.canonicalRevision || 'latest',
    source_cluster: w?.cluster || UNKNOWN,
  };
}

/**
 * The service comes from the routed cluster (client) or the workload's own Service (server). Its
 * namespace is the service's where the cluster names one, else the destination workload's, as
 * Istio's stats filter writes it: a client's reply to a host outside the registry that reached no
 * endpoint says `unknown` there.
 */
function destinationLabels(w: WorkloadInfo | undefined, svc: ServiceName | undefined, principal: string | undefined): DestinationLabels {
  return {
    destination_workload: w?.workload || UNKNOWN,
    destination_workload_namespace: w?.namespace || UNKNOWN,
    destination_principal: principal || UNKNOWN,
    destination_app: w?.app || UNKNOWN,
    destination_version: w?.version || UNKNOWN,
    destination_service: svc?.host || UNKNOWN,
    destination_service_name: svc?.name || UNKNOWN,
    destination_service_namespace: (svc && svc.namespace !== UNKNOWN ? svc.namespace : w?.namespace) || UNKNOWN,
    destination_canonical_service: w?.canonicalService || UNKNOWN,
    destination_canonical_revision: w?.canonicalRevision || 'latest',
    destination_cluster: w?.cluster || UNKNOWN,
  };
}

/** A server's own service: its Service, else (a workload no Service selects) its canonical name, as Istio writes it. */
function ownService(ctx: ReporterContext): ServiceName {
  const own = ctx.selfService?.();
  if (own) return own;
  const name = ctx.self.canonicalService || UNKNOWN;
  return { host: name, name, namespace: ctx.self.namespace || UNKNOWN };
}

/**
 * Who the two sides are, by reporter. Principals are what the connection's certificates proved, as
 * Istio reads them from the TLS session: a server names itself and its caller only over mutual TLS;
 * a client names itself only when it went to the endpoint over Istio mutual TLS (not for a local
 * reply that reached none, nor for a plaintext endpoint), and the endpoint by its identity.
 */
function peers(server: boolean, ctx: ReporterContext, downstreamPeer: WorkloadInfo | undefined, upstreamPeer: WorkloadInfo | undefined, upstreamMtls: boolean | undefined, svc: ServiceName | undefined): SourceLabels & DestinationLabels {
  return server
    ? { ...sourceLabels(downstreamPeer, downstreamPeer?.principal), ...destinationLabels(ctx.self, svc, downstreamPeer ? ctx.self.principal : undefined) }
    : { ...sourceLabels(ctx.self, upstreamMtls ? ctx.self.principal : undefined), ...destinationLabels(upstreamPeer, svc, upstreamPeer?.principal) };
}

/** The labels of one request as Istio's stats filter writes them for this reporter. */
export function requestLabels(r: RequestRecord, ctx: ReporterContext, hostFallback = true): IstioLabels {
  const server = r.reporter === 'destination';
  let svc: ServiceName | undefined;
  if (server) svc = ownService(ctx);
  else {
    svc = serviceOfCluster(r.upstreamCluster);
    // A sidecar client names an unknown destination by the Host it asked for; a gateway does not.
    const host = hostFallback ? hostLabelOf(r, ctx) : '';
    if (host && (!svc || svc.host === UNKNOWN)) svc = { host, name: svc?.name ?? host, namespace: svc?.namespace ?? UNKNOWN };
  }
  return {
    reporter: r.reporter,
    ...peers(server, ctx, r.downstreamPeer, r.upstreamPeer, r.upstreamMtls, svc),
    request_protocol: r.grpc ? 'grpc' : 'http',
    response_code: String(r.responseCode),
    grpc_response_status: r.grpc ? grpcStatusLabel(r.grpcStatus) : '',
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
  readonly upstreamMtls?: boolean;
  readonly downstreamPeer?: WorkloadInfo;
}

export function tcpLabels(c: TcpConnectionRecord, ctx: ReporterContext): TcpLabels {
  const server = c.reporter === 'destination';
  return {
    reporter: c.reporter,
    ...peers(server, ctx, c.downstreamPeer, c.upstreamPeer, c.upstreamMtls, server ? ownService(ctx) : serviceOfCluster(c.cluster)),
    request_protocol: 'tcp',
    response_flags: c.flags || '-',
    connection_security_policy: server ? (c.downstreamPeer ? 'mutual_tls' : 'none') : UNKNOWN,
  };
}
