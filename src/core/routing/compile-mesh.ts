// The route compiler for a sidecar's outbound side (docs/reference/routing.md 3 and 9): one route config
// per port, named by the number ('80', '9080'). Every visible service with an HTTP-family port gets a
// virtual host there that sends everything to `outbound|<port>||<fqdn>`; a mesh-bound VirtualService
// takes over the hosts it names instead. Unlike gateways, VirtualServices are not merged: for one host
// the first one wins and later ones are dropped with a warning. Follows Istio's
// BuildSidecarOutboundVirtualHosts and BuildSidecarVirtualHostWrapper.

import type { Labels, VirtualServiceSpec } from '../model/istio.js';
import type { Resource } from '../model/resource.js';
import { problemAt, type Problem } from '../config/problem.js';
import type { Cluster } from '../policy/types.js';
import { compareHostSpecificity, hostMatches, isWildcardHost, mostSpecificHost, resolveShortName } from '../registry/hostname.js';
import { isHttpCapable } from '../registry/protocol.js';
import type { Registry, Service } from '../registry/types.js';
import type { Snapshot } from '../snapshot/snapshot.js';
import { translatedSource } from '../gateway-api/route-sources.js';
import { compileAction } from './actions.js';
import { orderForProxy } from './compile.js';
import { exportedTo, MESH_GATEWAY, vsGateways } from './gateway-binding.js';
import { indexVirtualHosts } from './host-index.js';
import { hasPortSuffix, plainHostDomains, serviceDomains, type HostDomains } from './mesh-hosts.js';
import { compileMeshHttpRoutes, registryAtPort, type MeshProxy } from './mesh-routes.js';
import type { CompiledRoute, RouteConfig, VirtualHost } from './types.js';

export interface MeshCompileInput {
  readonly virtualServices: readonly Resource<VirtualServiceSpec>[];
  readonly registry: Registry;
  readonly proxyLabels: Labels;
  /** The sidecar's namespace: service and VirtualService visibility (exportTo) and short names follow it. */
  readonly proxyNamespace: string;
  readonly domain: string;
  cluster(host: string, port: number, subset: string): Cluster | undefined;
}

export interface CompiledMesh {
  readonly routeConfigs: ReadonlyMap<string, RouteConfig>;
  readonly problems: readonly Problem[];
}

/** A sidecar virtual host: `domain` is the FQDN (or VirtualService host) it was built for. */
export interface MeshVirtualHost extends VirtualHost {
  /** Every Host form it answers to, `name:port` forms included; lookups ignore the port. */
  readonly domains: readonly string[];
}

/** The outbound route config a sidecar uses for a request to `port`; undefined for gateways and unknown ports. */
export function outboundRouteConfig(snapshot: Snapshot, port: number): RouteConfig | undefined {
  if (snapshot.role.kind !== 'sidecar') return undefined;
  return snapshot.routeConfigs.get(String(port));
}

/** A mesh-bound VirtualService with its hosts resolved. */
interface MeshVs {
  readonly resource: Resource<VirtualServiceSpec>;
  readonly ref: string;
  /** Lower-case, short names expanded in the VirtualService's namespace, each once. */
  readonly hosts: readonly string[];
  /** Position of each host in `spec.hosts`, for problems. */
  readonly hostIndex: ReadonlyMap<string, number>;
  /** Ports its routes name explicitly in `destination.port`. */
  readonly destinationPorts: ReadonlySet<number>;
}

/** What one VirtualService (or one service's default route) contributes on one port. */
interface Wrapper {
  readonly services: readonly Service[];
  /** VirtualService hosts that are not services on this port: virtual hosts of their own. */
  readonly hosts: readonly string[];
  readonly routes: readonly CompiledRoute[];
}

export function compileMesh(input: MeshCompileInput): CompiledMesh {
  const problems: Problem[] = [];
  const proxy: MeshProxy = { labels: input.proxyLabels, namespace: input.proxyNamespace };
  const visible = new Map<string, Service>();
  for (const [host, s] of input.registry.services) if (exportedTo(s.exportTo, s.namespace, input.proxyNamespace)) visible.set(host, s);

  const bound = input.virtualServices.filter((vs) => appliesToMesh(vs, input.proxyNamespace));
  const meshVs = orderForProxy(bound, input.proxyNamespace, true).map((vs) => prepare(vs, input.domain));
  const owners = ownerIndex(meshVs, visible, problems);

  const servicePorts = new Set<number>();
  // Ports Istio listens on at 0.0.0.0 for HTTP: declared HTTP-family, or undeclared on a ServiceEntry
  // (a Kubernetes Service's undeclared port is sniffed on its own addresses instead).
  const anyAddress = new Set<number>();
  for (const s of visible.values()) {
    for (const p of s.ports) {
      if (!isHttpCapable(p.protocol)) continue;
      servicePorts.add(p.number);
      if (p.protocol !== 'UNKNOWN' || s.kind === 'ServiceEntry') anyAddress.add(p.number);
    }
  }
  const ports = new Set(servicePorts);
  // Istio offers every mesh VirtualService to the port-80 route config, whatever its hosts.
  if (meshVs.length > 0) ports.add(80);
  for (const vs of meshVs) if (vs.hosts.some((h) => !inRegistry(h, visible))) for (const p of vs.destinationPorts) ports.add(p);

  const failed = new Set<MeshVs>();
  const routeConfigs = new Map<string, RouteConfig>();
  for (const port of [...ports].sort((a, b) => a - b)) {
    const compileRoutes = (vs: MeshVs, registry: Registry): CompiledRoute[] => {
      try {
        return compileMeshHttpRoutes(vs.resource, port, proxy, { registry, domain: input.domain, cluster: input.cluster });
      } catch (err) {
        // A compile bug must not take the sidecar down: report it once against the resource.
        if (!failed.has(vs)) problems.push(problemAt(vs.resource, ['spec'], `internal error while compiling for sidecars: ${(err as Error).message}`));
        failed.add(vs);
        return [];
      }
    };
    const vhosts = virtualHostsForPort(port, meshVs, owners, visible, input, compileRoutes);
    if (vhosts.length === 0 && !servicePorts.has(port)) continue;
    const name = String(port);
    routeConfigs.set(name, indexMeshVirtualHosts(name, vhosts, anyAddress.has(port)));
  }
  return { routeConfigs, problems };
}

/** Bound to `mesh` (gateways omitted or listing it), visible from the proxy's namespace, with http routes. */
function appliesToMesh(vs: Resource<VirtualServiceSpec>, proxyNamespace: string): boolean {
  const ns = vs.metadata.namespace;
  if (!vs.spec.http || vs.spec.http.length === 0) return false;
  if (!exportedTo(vs.spec.exportTo, ns, proxyNamespace)) return false;
  return vsGateways(vs.spec, ns).has(MESH_GATEWAY);
}

function prepare(vs: Resource<VirtualServiceSpec>, domain: string): MeshVs {
  const ns = vs.metadata.namespace;
  const hostIndex = new Map<string, number>();
  (vs.spec.hosts ?? []).forEach((h, i) => {
    const host = resolveShortName(h, ns, domain).toLowerCase();
    if (!hostIndex.has(host)) hostIndex.set(host, i);
  });
  const destinationPorts = new Set<number>();
  for (const r of vs.spec.http ?? []) for (const d of r.route ?? []) if (d.destination.port?.number) destinationPorts.add(d.destination.port.number);
  // Made from HTTPRoutes: messages name the route, not a VirtualService nobody wrote.
  const ref = translatedSource(vs, 0)?.virtualService ?? `VirtualService ${ns}/${vs.metadata.name}`;
  return { resource: vs, ref, hosts: [...hostIndex.keys()], hostIndex, destinationPorts };
}

/**
 * Istio's most-specific VirtualService per service: the first VirtualService naming the exact host,
 * else the first one naming the most specific wildcard covering it. A later VirtualService naming a
 * host an earlier one already names is reported: sidecars ignore it for that host.
 */
function ownerIndex(meshVs: readonly MeshVs[], visible: ReadonlyMap<string, Service>, problems: Problem[]): Map<string, MeshVs> {
  const byHost = new Map<string, MeshVs>();
  for (const vs of meshVs) {
    for (const host of vs.hosts) {
      const first = byHost.get(host);
      if (!first) {
        byHost.set(host, vs);
        continue;
      }
      problems.push(
        problemAt(
          vs.resource,
          ['spec', 'hosts', vs.hostIndex.get(host) ?? 0],
          `host ${host} is also a host of ${first.ref}, which comes first; sidecars use only that one for it and ignore ${vs.ref} there`,
          'warning',
        ),
      );
    }
  }
  const wildcards = [...byHost].filter(([h]) => isWildcardHost(h)).sort((a, b) => compareHostSpecificity(a[0], b[0]));
  const exact = new Map([...byHost].filter(([h]) => !isWildcardHost(h)));
  const owners = new Map<string, MeshVs>();
  for (const host of visible.keys()) {
    const owner = mostSpecificHost(host, exact, wildcards);
    if (owner) owners.set(host, owner);
  }
  return owners;
}

/** A registry service of that exact name, or, for a wildcard, any service it covers. */
function inRegistry(host: string, services: ReadonlyMap<string, Service>): boolean {
  if (!isWildcardHost(host)) return services.has(host);
  for (const h of services.keys()) if (hostMatches(h, host)) return true;
  return false;
}

function hasHttpPort(s: Service, port: number): boolean {
  return s.ports.some((p) => p.number === port && isHttpCapable(p.protocol));
}

function virtualHostsForPort(
  port: number,
  meshVs: readonly MeshVs[],
  owners: ReadonlyMap<string, MeshVs>,
  visible: ReadonlyMap<string, Service>,
  input: MeshCompileInput,
  compileRoutes: (vs: MeshVs, registry: Registry) => CompiledRoute[],
): MeshVirtualHost[] {
  const registry = registryAtPort(visible, input.registry, port);
  const atPort = registry.services;
  const wrappers: Wrapper[] = [];
  for (const vs of meshVs) {
    const services: Service[] = [];
    const others: string[] = [];
    for (const host of vs.hosts) {
      if (!isWildcardHost(host)) {
        const s = atPort.get(host);
        if (s) services.push(s);
        else others.push(host);
        continue;
      }
      // A wildcard takes the services it covers for which it is the most specific VirtualService host;
      // it is a virtual host of its own only when it covers no service on this port at all.
      let covers = false;
      for (const [h, s] of atPort) {
        if (!hostMatches(h, host)) continue;
        covers = true;
        if (owners.get(h) === vs) services.push(s);
      }
      if (!covers) others.push(host);
    }
    const http = services.filter((s) => hasHttpPort(s, port));
    let hosts: readonly string[];
    if (http.length > 0 || port === 80) hosts = others;
    else if (vs.destinationPorts.has(port)) hosts = others.filter((h) => !inRegistry(h, visible));
    else continue;
    if (http.length === 0 && hosts.length === 0) continue;
    const routes = compileRoutes(vs, registry);
    // No route exists for this proxy on this port: its services keep their default routes.
    if (routes.length === 0) continue;
    wrappers.push({ services: http, hosts, routes });
  }

  const covered = new Set(wrappers.flatMap((w) => w.services.map((s) => s.hostname)));
  const rest = [...atPort.values()].filter((s) => hasHttpPort(s, port) && !covered.has(s.hostname)).sort((a, b) => (a.hostname < b.hostname ? -1 : 1));
  for (const s of rest) wrappers.push({ services: [s], hosts: [], routes: [defaultRoute(s, port, registry, input)] });

  return buildVirtualHosts(port, wrappers, input);
}

/**
 * Virtual hosts in wrapper order. A host already given a virtual host on this port is skipped (the
 * first VirtualService wins), and any single domain already taken is left out of later virtual hosts;
 * a shortened form never shadows a service whose FQDN is spelled that way.
 */
function buildVirtualHosts(port: number, wrappers: readonly Wrapper[], input: MeshCompileInput): MeshVirtualHost[] {
  const knownFqdn = new Set<string>();
  for (const w of wrappers) for (const s of w.services) knownFqdn.add(s.hostname).add(`${s.hostname}:${port}`);
  const names = new Set<string>();
  const taken = new Set<string>();
  const out: MeshVirtualHost[] = [];
  const build = (host: string, forms: HostDomains, routes: readonly CompiledRoute[]): void => {
    const name = `${host}:${port}`;
    if (names.has(name)) return;
    names.add(name);
    const domains = forms.domains.filter((d) => !taken.has(d) && !(forms.shortForms.has(d) && knownFqdn.has(d)));
    for (const d of domains) taken.add(d);
    if (domains.length > 0) out.push({ domain: host, domains, routes, requireTls: false });
  };
  for (const w of wrappers) {
    for (const h of w.hosts) build(h, plainHostDomains(h, port), w.routes);
    for (const s of w.services) build(s.hostname, serviceDomains(s, port, input.proxyNamespace, input.domain), w.routes);
  }
  return out;
}

/** Istio's route `default`: any request to `outbound|<port>||<fqdn>`, default retries, no timeout. */
function defaultRoute(s: Service, port: number, registry: Registry, input: MeshCompileInput): CompiledRoute {
  const route = { route: [{ destination: { host: s.hostname, port: { number: port } } }] };
  return {
    name: 'default',
    source: { virtualService: '', file: '', line: 0, httpIndex: -1, matchIndex: -1 },
    conditions: [],
    catchAll: true,
    action: compileAction(route, undefined, { namespace: s.namespace, listenerPort: port, registry, domain: input.domain, cluster: input.cluster }),
  };
}

/** Indexes every port-less domain of every virtual host; a lookup answers with the virtual host itself. */
function indexMeshVirtualHosts(name: string, vhosts: readonly MeshVirtualHost[], anyAddress: boolean): RouteConfig {
  const aliases: VirtualHost[] = [];
  const owner = new Map<VirtualHost, MeshVirtualHost>();
  for (const vh of vhosts) {
    for (const d of vh.domains) {
      if (hasPortSuffix(d)) continue;
      const alias: VirtualHost = { domain: d, routes: vh.routes, requireTls: false };
      aliases.push(alias);
      owner.set(alias, vh);
    }
  }
  const index = indexVirtualHosts(name, aliases);
  return {
    name,
    virtualHosts: vhosts,
    anyAddress,
    findVirtualHost: (host) => {
      const hit = index.findVirtualHost(host);
      return hit ? owner.get(hit) : undefined;
    },
  };
}
