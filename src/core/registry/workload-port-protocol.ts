// The protocol a workload's own port is declared with, for its sidecar's inbound side: Istio builds
// inbound filter chains from the services that select the workload, by their target ports. Here the
// services are found through their endpoints (the workload's namespace, its labels), and the port by
// the endpoint port the service publishes: the app's port (under capture) or the sidecar's inbound
// port (when callers are sent to the sidecar directly). UNKNOWN when no service declares it.

import { selectorMatches } from './labels.js';
import { endpointPort, type Registry } from './types.js';

export interface Workload {
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** The declared protocol of the first service port published on one of `ports` by an endpoint of this workload. */
export function workloadPortProtocol(registry: Registry, workload: Workload, ports: readonly number[]): string {
  for (const service of registry.services.values()) {
    for (const endpoint of service.endpoints) {
      if (endpoint.namespace !== workload.namespace || !selectorMatches(workload.labels, endpoint.labels)) continue;
      for (const port of service.ports) if (ports.includes(endpointPort(endpoint, port))) return port.protocol;
    }
  }
  return 'UNKNOWN';
}

/**
 * The service port numbers published on one of `ports` by an endpoint of this workload: the port an
 * inbound virtual host is named by (`inbound|http|9080`) when callers reach the workload on another.
 */
export function workloadServicePorts(registry: Registry, workload: Workload, ports: readonly number[]): Set<number> {
  const out = new Set<number>();
  for (const service of registry.services.values()) {
    for (const endpoint of service.endpoints) {
      if (endpoint.namespace !== workload.namespace || !selectorMatches(workload.labels, endpoint.labels)) continue;
      for (const port of service.ports) if (ports.includes(endpointPort(endpoint, port))) out.add(port.number);
    }
  }
  return out;
}
