// buildRegistry(): every service the mesh knows, from Kubernetes Services and ServiceEntries, keyed by
// lower-case host name, with the precedence Istio applies when two sources claim one host.

import type { Problem } from '../config/problem.js';
import { problemAt } from '../config/problem.js';
import type { Resource } from '../model/resource.js';
import { compareByCreation } from '../model/resource.js';
import { compareHostSpecificity, isWildcardHost, mostSpecificHost } from './hostname.js';
import { kubeServices } from './kube-services.js';
import { PodIndex, isRecord } from './pods.js';
import { serviceEntryHosts } from './service-entries.js';
import type { Registry, Service } from './types.js';

export interface RegistryOptions {
  /** Cluster domain of Kubernetes Service host names; `cluster.local` unless told. */
  readonly domain?: string;
}

export function buildRegistry(resources: readonly Resource[], opts: RegistryOptions = {}): { registry: Registry; problems: Problem[] } {
  const domain = opts.domain ?? 'cluster.local';
  const problems: Problem[] = [];
  const pods = new PodIndex(resources);
  const services = new Map<string, Service>();

  for (const s of kubeServices(resources, pods, domain, problems)) {
    if (!services.has(s.hostname)) services.set(s.hostname, s);
  }

  // Oldest first, so that a ServiceEntry created later cannot take over a host another one already holds.
  const entries = resources.filter((r) => r.kind === 'ServiceEntry').sort(compareByCreation);
  for (const entry of entries) {
    for (const { service } of serviceEntryHosts(entry, resources, pods)) {
      const existing = services.get(service.hostname);
      if (!existing) {
        services.set(service.hostname, service);
      } else if (existing.kind === 'Service') {
        // A Kubernetes Service keeps its host; the entry may only add names its certificates carry.
        services.set(service.hostname, merged(existing, { subjectAltNames: service.subjectAltNames, sources: service.sources }));
      } else if (existing.namespace === service.namespace) {
        // Same host in one namespace: the oldest entry defines the service, later ones add endpoints.
        const known = new Set(existing.endpoints.map((e) => e.address));
        const extra = service.endpoints.filter((e) => !known.has(e.address));
        services.set(service.hostname, merged(existing, { endpoints: extra, sources: service.sources }));
      } else {
        problems.push(
          problemAt(
            entry,
            ['spec', 'hosts', hostIndex(entry, service.hostname)],
            `host ${service.hostname} is already defined by ${existing.sources[0]}; this entry is ignored for it`,
            'warning',
          ),
        );
      }
    }
  }

  const wildcards = [...services.keys()]
    .filter(isWildcardHost)
    .sort(compareHostSpecificity)
    .map((h) => [h, services.get(h)!] as const);

  const lookup = (hostname: string): Service | undefined => {
    const found = mostSpecificHost(hostname, services, wildcards);
    if (found !== undefined) return found;
    const lower = hostname.toLowerCase();
    return lower === hostname ? undefined : mostSpecificHost(lower, services, wildcards);
  };

  return { registry: Object.freeze({ services, lookup }), problems };
}

function merged(base: Service, add: { subjectAltNames?: readonly string[]; endpoints?: Service['endpoints']; sources: readonly string[] }): Service {
  const sans = add.subjectAltNames ?? [];
  return Object.freeze({
    ...base,
    endpoints: add.endpoints && add.endpoints.length > 0 ? [...base.endpoints, ...add.endpoints] : base.endpoints,
    subjectAltNames: sans.length > 0 ? [...new Set([...base.subjectAltNames, ...sans])] : base.subjectAltNames,
    sources: [...base.sources, ...add.sources],
  });
}

function hostIndex(entry: Resource, hostname: string): number {
  const hosts = isRecord(entry.spec) && Array.isArray(entry.spec.hosts) ? (entry.spec.hosts as unknown[]) : [];
  const i = hosts.findIndex((h) => typeof h === 'string' && h.toLowerCase() === hostname);
  return i < 0 ? 0 : i;
}
