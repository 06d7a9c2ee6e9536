// The Host header forms a sidecar's outbound route config answers to for one service port
// (docs/reference/routing.md 9): the FQDN, and for a Kubernetes Service the shorter names a pod's DNS
// search path resolves. The bare `name` only resolves, and so only routes, from the service's own
// namespace. Every form is also listed with `:<port>`; lookups ignore the port (hasPortSuffix), as
// Istio's sidecar route configs set ignore_port_in_host_matching.

import type { Service } from '../registry/types.js';

export interface HostDomains {
  /** Every domain in order: each name followed by its `name:port` form. */
  readonly domains: readonly string[];
  /** The shortened forms among them: a real FQDN spelled the same way takes precedence over these. */
  readonly shortForms: ReadonlySet<string>;
}

/** `host` and `host:port`, for a host that is not a Kubernetes Service (a ServiceEntry or VirtualService host). */
export function plainHostDomains(host: string, port: number): HostDomains {
  return { domains: [host, `${host}:${port}`], shortForms: new Set() };
}

/**
 * For `reviews.default.svc.cluster.local` on 9080, seen from namespace `default`: the FQDN,
 * `reviews.default.svc.cluster`, `reviews.default.svc`, `reviews.default` and `reviews`, each with and
 * without `:9080`. From another namespace `reviews` is left out: it would name that namespace's own service.
 * A headless Service's pod `web-0.web.default.svc.cluster.local` is `web-0.web` in its namespace.
 * A Service's cluster IP is one more name for it.
 */
export function serviceDomains(service: Service, port: number, proxyNamespace: string, clusterDomain: string): HostDomains {
  const fqdn = service.hostname;
  const suffix = `.svc.${clusterDomain}`;
  if (service.kind !== 'Service' || !fqdn.endsWith(suffix)) return plainHostDomains(fqdn, port);
  const nameNs = fqdn.slice(0, -suffix.length);
  const dot = nameNs.indexOf('.');
  if (dot <= 0) return plainHostDomains(fqdn, port);
  const short: string[] = [];
  const firstLabel = clusterDomain.split('.')[0] ?? '';
  if (firstLabel !== '' && firstLabel !== clusterDomain) short.push(`${nameNs}.svc.${firstLabel}`);
  short.push(`${nameNs}.svc`, nameNs);
  // The name before `.<namespace>`: `reviews`, or for a headless Service's pod `web-0.web`.
  const inNamespace = nameNs.endsWith(`.${service.namespace}`) ? nameNs.slice(0, -service.namespace.length - 1) : nameNs.slice(0, dot);
  if (service.namespace === proxyNamespace) short.push(inNamespace);
  const domains: string[] = [];
  // Its cluster IPs too, as Istio lists a service's addresses; an IPv6 one as a Host writes it,
  // in brackets (`[fd00::10]:8080`; normalizeHost keeps them). A CIDR is no Host.
  const ips = (service.addresses ?? []).filter((ip) => !ip.includes('/')).map((ip) => (ip.includes(':') ? `[${ip.toLowerCase()}]` : ip));
  for (const h of [fqdn, ...short, ...ips]) domains.push(h, `${h}:${port}`);
  return { domains, shortForms: new Set(short.flatMap((h) => [h, `${h}:${port}`])) };
}

/** True for `name:8080`: such a domain is listed for people and tools; lookups use the port-less form. */
export function hasPortSuffix(domain: string): boolean {
  return /:\d+$/.test(domain);
}
