// What the data path needs from a DestinationRule once merges and defaults are resolved: a cluster
// (service × port × subset) with its endpoints, its effective traffic policy and its load balancer.

import type { IncomingHttpHeaders } from 'node:http';
import type { ClientTlsSettings, ConnectionPoolSettings, LoadBalancerSettings, OutlierDetection } from '../model/istio.js';
import type { Endpoint, Service, ServicePort } from '../registry/types.js';
import type { ClusterBreaker } from './circuit-breaker.js';
import type { ConnectionLimits } from './connection-limits.js';
import type { OutlierDetector, OutlierSettings } from './outlier-detection.js';

/** The policy that applies to one cluster after subset and portLevelSettings replacement (docs/concepts/resilience.md). */
export interface EffectiveTrafficPolicy {
  readonly loadBalancer?: LoadBalancerSettings;
  readonly connectionPool?: ConnectionPoolSettings;
  readonly outlierDetection?: OutlierDetection;
  readonly tls?: ClientTlsSettings;
  /** `DestinationRule ns/name` that supplied it, if any. */
  readonly source?: string;
}

/** What a load balancer may look at to choose an endpoint. */
export interface PickContext {
  readonly headers: IncomingHttpHeaders;
  readonly sourceIp: string;
  /** Query parameters of the request (first value per name). */
  readonly query: ReadonlyMap<string, string>;
  /** Endpoints already tried by earlier attempts of this request (Envoy's previous-hosts predicate). */
  readonly exclude?: ReadonlySet<Endpoint>;
}

export interface Pick {
  readonly endpoint: Endpoint;
  /** A cookie the response must set (consistentHash.httpCookie with a ttl, when the request had none). */
  readonly setCookie?: string;
}

export interface LoadBalancer {
  readonly algorithm: string;
  pick(ctx: PickContext): Pick | undefined;
}

/** Live per-endpoint counters that outlive snapshots (keyed by `address:port`), read by LEAST_REQUEST. */
export interface EndpointLoad {
  active(key: string): number;
}

export interface Cluster {
  /** Envoy-style name: `outbound|<port>|<subset>|<fqdn>`. */
  readonly name: string;
  readonly service: Service;
  readonly port: ServicePort;
  readonly subset: string;
  /** Ready endpoints selected by the subset's labels. */
  readonly endpoints: readonly Endpoint[];
  readonly policy: EffectiveTrafficPolicy;
  readonly lb: LoadBalancer;
  /** Circuit breaking and outlier detection; absent only in clusters made by hand (tests). */
  readonly traffic?: ClusterTraffic;
  /**
   * Endpoints that run a sidecar whose effective PeerAuthentication is DISABLE on this cluster's
   * port: auto mTLS sends them plaintext, as their sidecar accepts nothing else.
   */
  readonly plaintextSidecars?: ReadonlySet<Endpoint>;
  /**
   * Trust domains besides the proxy's own that an endpoint's identity may name (the mesh config's
   * trustDomain and trustDomainAliases): auto mTLS accepts its service account in each, as Istio
   * expands a service's accounts with the aliases.
   */
  readonly trustDomainAliases?: readonly string[];
}

/** A cluster's connectionPool and outlierDetection, resolved, with the live state they act on. */
export interface ClusterTraffic {
  readonly limits: ConnectionLimits;
  /** Shared by every snapshot's cluster of the same name. */
  readonly breaker: ClusterBreaker;
  /** Present when the policy sets outlierDetection. */
  readonly outlier?: { readonly settings: OutlierSettings; readonly detector: OutlierDetector };
  /** `address:port` of every endpoint, in the order of `endpoints`. */
  readonly hostKeys: readonly string[];
}

export function clusterName(port: number, subset: string, hostname: string): string {
  return `outbound|${port}|${subset}|${hostname}`;
}
