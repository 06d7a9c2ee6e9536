// The service registry's shapes: every service the mesh knows (Kubernetes Services and ServiceEntries
// alike), its ports, and its endpoints with the labels, locality and weight that subsets and load
// balancers select on.

import type { Labels, Location, Resolution } from '../model/istio.js';

/** Upper-case protocol as Istio names it: HTTP, HTTP2, GRPC, GRPC-WEB, HTTPS, TLS, TCP, MONGO, REDIS, MYSQL, UNKNOWN. */
export type Protocol = string;

export interface ServicePort {
  readonly number: number;
  readonly name: string;
  readonly protocol: Protocol;
  /** Numeric target port when the Service/ServiceEntry declares one; endpoints may still override it. */
  readonly targetPort?: number;
  /** Named target port (Kubernetes `targetPort: http`), resolved per endpoint. */
  readonly targetPortName?: string;
}

export interface Endpoint {
  /** IP address, or a host name for DNS resolution (undici resolves it per connection). */
  readonly address: string;
  /** Endpoint port for each service port number; absent entries fall back to targetPort, then the port number. */
  readonly ports: ReadonlyMap<number, number>;
  readonly labels: Labels;
  /** `region/zone/subzone`, any part may be empty. */
  readonly locality: string;
  readonly weight: number;
  readonly serviceAccount?: string;
  readonly namespace: string;
  /** True when the endpoint runs a sidecar (label `security.istio.io/tlsMode: istio`): auto mTLS applies. */
  readonly meshTls: boolean;
  /** Not ready endpoints are kept for display but never picked. */
  readonly ready: boolean;
  /** Its DNS label under a headless Service (StatefulSet pods): `<hostname>.<service host>` names it alone. */
  readonly hostname?: string;
}

export interface Service {
  /** Lower-case FQDN, e.g. `user-service.default.svc.cluster.local`, or a ServiceEntry host (may be a wildcard). */
  readonly hostname: string;
  readonly namespace: string;
  readonly ports: readonly ServicePort[];
  readonly endpoints: readonly Endpoint[];
  readonly resolution: Resolution;
  readonly location: Location;
  readonly kind: 'Service' | 'ServiceEntry';
  /**
   * A Kubernetes Service with `clusterIP: None`: it has no address of its own, its name resolves to
   * every endpoint, and a connection to one endpoint's address goes to that endpoint (Istio's
   * original-destination cluster) rather than to one the load balancer picks.
   */
  readonly headless?: true;
  /**
   * A Kubernetes Service's cluster IPs. Istio lists a service's addresses among its virtual host's
   * domains, so a request whose Host is the cluster IP (`curl 10.96.0.5:8080`) reaches the service.
   */
  readonly addresses?: readonly string[];
  /** `.`, `*`, `~` or namespace names; default `*`. */
  readonly exportTo: readonly string[];
  readonly subjectAltNames: readonly string[];
  /** The resource(s) that defined it, `Kind ns/name`, for tools. */
  readonly sources: readonly string[];
}

export interface Registry {
  readonly services: ReadonlyMap<string, Service>;
  /** Exact lookup by lower-case FQDN; falls back to the most specific wildcard ServiceEntry host. */
  lookup(hostname: string): Service | undefined;
}

/** The port an endpoint listens on for one service port. */
export function endpointPort(endpoint: Endpoint, port: ServicePort): number {
  return endpoint.ports.get(port.number) ?? port.targetPort ?? port.number;
}
