// Which HTTP version a request goes upstream in, as Istio sets up Envoy's clusters:
//   - a port declared http2 or grpc (by name or appProtocol; a ServiceEntry's HTTP2/GRPC) speaks
//     HTTP/2, and so does an HTTP port whose DestinationRule asks `h2UpgradePolicy: UPGRADE`;
//   - a port whose protocol is left to detection (UNKNOWN) speaks whatever the client spoke, on a
//     sidecar's clusters (USE_DOWNSTREAM_PROTOCOL; a gateway does not detect protocols), and so does a
//     cluster whose DestinationRule sets `useClientProtocol`, and the PassthroughCluster;
//   - anything else speaks HTTP/1.1.
// So a gRPC or h2c client behind a sidecar keeps HTTP/2 between the sidecars on an undeclared port,
// where an HTTP/1.1 hop in between would turn its trailers-only errors into INTERNAL.
// A sidecar's inbound side gives the app HTTP/2 when its port is declared grpc or http2, and HTTP/1.1
// otherwise, gRPC requests aside (relay.ts): Istio would give an undeclared port the caller's
// protocol, but then any peer that negotiates HTTP/2 by ALPN inside mutual TLS would reach an
// HTTP/1.1-only app over h2c, where it reached it over HTTP/1.1 before.

import type { IncomingMessage } from 'node:http';

/** What a cluster speaks upstream: HTTP/2, HTTP/1.1, or the client's protocol. */
export type UpstreamProtocol = 'h2' | 'http1' | 'downstream';

/** Service port protocols spoken as HTTP/2 upstream (Istio's port naming: http2-*, grpc-*). */
const H2_PROTOCOLS = new Set(['HTTP2', 'GRPC']);

interface ClusterLike {
  readonly port: { readonly protocol: string };
  readonly policy?: { readonly connectionPool?: { readonly http?: { readonly h2UpgradePolicy?: string; readonly useClientProtocol?: boolean } } };
}

/**
 * Whether a cluster's upstream connections speak HTTP/2 whatever the client spoke: its port is
 * declared http2 or grpc, or its DestinationRule asks `h2UpgradePolicy: UPGRADE` for an HTTP port.
 */
export function speaksH2(cluster: ClusterLike): boolean {
  if (H2_PROTOCOLS.has(cluster.port.protocol)) return true;
  const upgrade = cluster.policy?.connectionPool?.http?.h2UpgradePolicy;
  return upgrade === 'UPGRADE' && (cluster.port.protocol === 'HTTP' || cluster.port.protocol === 'UNKNOWN');
}

/** A cluster's upstream protocol; `detects`: the proxy detects protocols (a sidecar, not a gateway). */
export function clusterProtocol(cluster: ClusterLike, detects: boolean): UpstreamProtocol {
  if (speaksH2(cluster)) return 'h2';
  if (cluster.policy?.connectionPool?.http?.useClientProtocol === true) return 'downstream';
  return detects && cluster.port.protocol === 'UNKNOWN' ? 'downstream' : 'http1';
}

/** A sidecar's inbound cluster for an app port declared with `protocol` (UNKNOWN when undeclared). */
export function appPortProtocol(protocol: string): UpstreamProtocol {
  return H2_PROTOCOLS.has(protocol) ? 'h2' : 'http1';
}

/** Whether this request goes upstream over HTTP/2. */
export function upstreamH2(protocol: UpstreamProtocol, req: IncomingMessage): boolean {
  return protocol === 'h2' || (protocol === 'downstream' && req.httpVersionMajor === 2);
}
