// Where an Ingress backend goes: the Service `<name>.<Ingress namespace>.svc.<domain>` (an Ingress
// reaches Services of its own namespace only), at its port number, or at the number of the Service's
// port of that name. Shared by the translation and `analyze`, so the two cannot disagree.

import type { IngressBackend } from '../model/ingress.js';
import type { Resource } from '../model/resource.js';
import type { Registry } from '../registry/types.js';

export function ingressBackendHost(ingress: Resource, service: string, domain: string): string {
  return `${service}.${ingress.metadata.namespace}.svc.${domain}`;
}

/** The backend's Service port number; undefined when it names a port the Service does not have (or is no Service). */
export function ingressBackendPort(ingress: Resource, backend: IngressBackend, registry: Registry, domain: string): number | undefined {
  const svc = backend.service;
  if (!svc) return undefined;
  if (svc.port?.number !== undefined && svc.port.number > 0) return svc.port.number;
  const name = svc.port?.name;
  if (name === undefined) return undefined;
  return registry.lookup(ingressBackendHost(ingress, svc.name, domain))?.ports.find((p) => p.name === name)?.number;
}
