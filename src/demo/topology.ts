// The demo's workloads: which service, version and pod each demo backend plays, and the fixed loopback
// ports of the pod: its sidecar's inbound port (what the EndpointSlice names, as a pod's port is
// redirected to its sidecar in a cluster), the app behind it, and the sidecar's outbound port the
// app uses as its HTTP proxy. gateway-config/services.yaml describes exactly these (a test keeps the
// two in step).

import { DEFAULT_GATEWAY_SERVICE_ACCOUNT } from '../core/model/gateway-names.js';

export interface DemoWorkload {
  /** Kubernetes Service name (and the pods' `app` label). */
  readonly service: string;
  /** The pods' `version` label, which DestinationRule subsets select on. */
  readonly version: string;
  /** Pod name: which instance answered. */
  readonly instance: string;
  /** Loopback port; the EndpointSlice's port for this pod: its sidecar's inbound (mTLS) port. */
  readonly port: number;
  /** Where the app itself listens, reached only through its sidecar. */
  readonly appPort: number;
  /** The sidecar's outbound port: the app's HTTP proxy. */
  readonly outboundPort: number;
  /** The sidecar's Prometheus port (`/stats/prometheus`); 0 = any free port. */
  readonly metricsPort: number;
  /** The pod's service account, hence its SPIFFE identity. */
  readonly serviceAccount: string;
  /** Services the app calls on every request, by name, through its sidecar. */
  readonly calls: readonly string[];
}

export const DEMO_NAMESPACE = 'default';
export const DEMO_ADDRESS = '127.0.0.1';

// Fixed rather than ephemeral: the embedded config is static YAML that has to name them.
export const DEMO_WORKLOADS: readonly DemoWorkload[] = Object.freeze([
  { service: 'user-service', version: 'v1', instance: 'user-service-v1-0', port: 19081, appPort: 19181, outboundPort: 19281, metricsPort: 19381, serviceAccount: 'user-service', calls: [] },
  { service: 'product-service', version: 'v1', instance: 'product-service-v1-0', port: 19082, appPort: 19182, outboundPort: 19282, metricsPort: 19382, serviceAccount: 'product-service', calls: ['http://user-service/users/1'] },
  { service: 'product-service', version: 'v2', instance: 'product-service-v2-0', port: 19083, appPort: 19183, outboundPort: 19283, metricsPort: 19383, serviceAccount: 'product-service', calls: ['http://user-service/users/1'] },
]);

/** The hosts the demo Gateway serves, in the order the banner shows them. */
export const DEMO_HOSTS = ['user.example.com', 'product.example.com', 'api.example.com'] as const;

/** The gateway's own mesh identity, as Istio's ingress gateway has one. */
export const DEMO_GATEWAY_IDENTITY = { namespace: 'istio-system', serviceAccount: DEFAULT_GATEWAY_SERVICE_ACCOUNT } as const;

/** Where the demo's control plane listens (Istio's istiod port). */
export const DEMO_CONTROL_PORT = 15012;
