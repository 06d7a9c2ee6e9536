// The demo's workloads: which service, version and pod each demo backend plays, and the fixed loopback
// port it listens on. gateway-config/services.yaml describes exactly these (a test keeps the two in step).

export interface DemoWorkload {
  /** Kubernetes Service name (and the pods' `app` label). */
  readonly service: string;
  /** The pods' `version` label, which DestinationRule subsets select on. */
  readonly version: string;
  /** Pod name: which instance answered. */
  readonly instance: string;
  /** Loopback port; the EndpointSlice's port for this pod. */
  readonly port: number;
}

export const DEMO_NAMESPACE = 'default';
export const DEMO_ADDRESS = '127.0.0.1';

// Fixed rather than ephemeral: the embedded config is static YAML that has to name them.
export const DEMO_WORKLOADS: readonly DemoWorkload[] = Object.freeze([
  { service: 'user-service', version: 'v1', instance: 'user-service-v1-0', port: 19081 },
  { service: 'product-service', version: 'v1', instance: 'product-service-v1-0', port: 19082 },
  { service: 'product-service', version: 'v2', instance: 'product-service-v2-0', port: 19083 },
]);

/** The hosts the demo Gateway serves, in the order the banner shows them. */
export const DEMO_HOSTS = ['user.example.com', 'product.example.com', 'api.example.com'] as const;
