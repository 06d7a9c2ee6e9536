// Where a sidecar sends a TCP connection its app opened to a mesh service (docs/tasks/tcp-traffic.md):
// the outbound side learns the address and port the app dialled (a Service's cluster IP, a
// ServiceEntry address, found through capture) or the name (`CONNECT host:port`), and this table
// answers with the service port, its protocol and the weighted destinations, as Istio builds a
// sidecar's outbound TCP filter chains:
// - the first mesh-bound VirtualService (in the proxy's order) naming the service, exactly or by the
//   most specific wildcard, that has `tcp` rules; its first rule whose match applies (`port`,
//   `sourceLabels`, `sourceNamespace`, `gateways` naming `mesh`; no match list matches everything);
// - else, or when no rule applies, the service's own cluster `outbound|<port>||<host>`.
// That VirtualService's `tls` rules (Istio's routes for TLS the app speaks itself) whose match
// applies to the proxy and port become an SNI table on the target: the connection's ClientHello
// picks by `sniHosts` (exact, then the longest wildcard, then `*`), and a hello no rule names, or no
// TLS at all, takes the route above.
// A headless Service has no address of its own: each endpoint's address is one (the app resolved
// the name to a pod), and the target says to keep that endpoint (Istio's ORIGINAL_DST cluster), as
// it does for a ServiceEntry with `resolution: NONE`, whose `addresses` may be CIDR blocks: a
// destination IP is matched exactly, else by the longest prefix that contains it (address-table.ts).
// Built with the snapshot, for every service port that can carry TCP (anything but a declared
// HTTP-family or UDP port), so the connection path only looks things up.

import type { L4MatchAttributes, VirtualServiceSpec } from '../model/istio.js';
import type { Resource } from '../model/resource.js';
import { isRecord } from '../config/load.js';
import { compareHostSpecificity, isWildcardHost, mostSpecificHost, resolveShortName } from '../registry/hostname.js';
import { selectorMatches } from '../registry/labels.js';
import type { Registry, Service, ServicePort } from '../registry/types.js';
import { compileDestinations } from './actions.js';
import { orderForProxy } from './compile.js';
import { exportedTo, MESH_GATEWAY, vsGateways } from './gateway-binding.js';
import { registryAtPort } from './mesh-routes.js';
import type { MeshCompileInput } from './compile-mesh.js';
import { buildTlsRouteTable } from './tls-routes.js';
import { AddressTable } from './address-table.js';
import type { AllocatedAddresses } from '../registry/auto-allocate.js';
import { keepsOriginalDestination } from '../policy/original-dst.js';
import type { L4Route, L4RouteSource, TlsRoute, TlsRouteTable } from './types.js';

/** What the sidecar's HTTP routes are compiled from, plus the resources that give services their addresses. */
export interface MeshTcpInput extends MeshCompileInput {
  readonly resources: readonly Resource[];
  /** Addresses given to ServiceEntries that declare none (DNS auto-allocation), by host. */
  readonly autoAllocated?: AllocatedAddresses;
}

/** A service port a connection was meant for, and where its bytes go. */
export interface MeshTcpTarget {
  readonly service: Service;
  readonly port: ServicePort;
  readonly route: L4Route;
  /** The VirtualService's `tls` rules for this port, by SNI; absent when it has none. */
  readonly sni?: TlsRouteTable;
  /**
   * Set for a headless Service and a ServiceEntry with `resolution: NONE`: the connection goes to the
   * address and port the app dialled (the route's cluster's endpoint there; for resolution NONE,
   * which has none, that address itself) instead of an endpoint its load balancer picks.
   */
  readonly originalDestination?: true;
}

export interface MeshTcpTable {
  /** The target for a connection to `address:port` (a cluster IP or ServiceEntry address). */
  byAddress(address: string, port: number): MeshTcpTarget | undefined;
  /** The target for a connection to a service by name (FQDN or a short name in the proxy's namespace). */
  byHost(host: string, port: number): MeshTcpTarget | undefined;
  /**
   * The target for a captured connection to an address no entry holds, whose ClientHello names
   * `host`: byHost, but a ServiceEntry only on a TLS or HTTPS port and when it declares no addresses.
   */
  bySni(host: string, port: number): MeshTcpTarget | undefined;
}

export const EMPTY_MESH_TCP: MeshTcpTable = Object.freeze({ byAddress: () => undefined, byHost: () => undefined, bySni: () => undefined });

/** Declared protocols whose ports carry HTTP only: never routed as TCP. */
const HTTP_ONLY = new Set(['HTTP', 'HTTP2', 'GRPC', 'GRPC-WEB', 'HTTP_PROXY', 'UDP', 'UNSUPPORTED']);

const DEFAULT_SOURCE: L4RouteSource = Object.freeze({ virtualService: '', file: '', line: 0, kind: 'tcp', routeIndex: -1, matchIndex: -1 });

export function compileMeshTcp(input: MeshTcpInput): MeshTcpTable {
  const visible = new Map<string, Service>();
  for (const [host, s] of input.registry.services) if (exportedTo(s.exportTo, s.namespace, input.proxyNamespace)) visible.set(host, s);

  // VirtualServices with tcp or tls rules, bound to the mesh and visible here, in the proxy's order.
  const tcpVs = orderForProxy(
    input.virtualServices.filter((vs) => (vs.spec.tcp?.length ?? 0) + (vs.spec.tls?.length ?? 0) > 0 && exportedTo(vs.spec.exportTo, vs.metadata.namespace, input.proxyNamespace) && vsGateways(vs.spec, vs.metadata.namespace).has(MESH_GATEWAY)),
    input.proxyNamespace,
  );
  const exact = new Map<string, Resource<VirtualServiceSpec>>();
  const wild = new Map<string, Resource<VirtualServiceSpec>>();
  for (const vs of tcpVs) {
    for (const h of vs.spec.hosts ?? []) {
      const host = resolveShortName(h, vs.metadata.namespace, input.domain).toLowerCase();
      const into = isWildcardHost(host) ? wild : exact;
      if (!into.has(host)) into.set(host, vs);
    }
  }
  const wildcards = [...wild].sort((a, b) => compareHostSpecificity(a[0], b[0]));

  const targets = new Map<string, MeshTcpTarget>(); // `host|port`
  const portRegistries = new Map<number, Registry>();
  for (const [host, service] of visible) {
    // A wildcard host is a destination only where the app's own address says where to go
    // (resolution NONE: Istio's ORIGINAL_DST cluster `outbound|443||*.wikipedia.org`).
    if (isWildcardHost(host) && !keepsOriginalDestination(service)) continue;
    const owner = mostSpecificHost(host, exact, wildcards);
    for (const port of service.ports) {
      if (HTTP_ONLY.has(port.protocol)) continue;
      let registry = portRegistries.get(port.number);
      if (!registry) portRegistries.set(port.number, (registry = registryAtPort(visible, input.registry, port.number)));
      const route = (owner && ruleRoute(owner, port.number, input, registry)) || defaultRoute(service, port.number, input, registry);
      const sni = owner && sniRoutes(owner, port.number, input, registry);
      targets.set(`${host}|${port.number}`, Object.freeze({ service, port, route, ...(sni ? { sni } : {}), ...(keepsOriginalDestination(service) ? { originalDestination: true as const } : {}) }));
    }
  }

  // Addresses the app may dial: Kubernetes cluster IPs (a headless Service's endpoint addresses),
  // ServiceEntry addresses (IPs and CIDR blocks, the longest prefix first), and the ones DNS
  // auto-allocation gave entries that declare none.
  const addresses = new AddressTable();
  const add = (address: string, host: string): void => addresses.add(address, host);
  // ServiceEntry hosts that declare addresses: reached at those addresses only, never by SNI elsewhere.
  const addressed = new Set<string>();
  for (const r of input.resources) {
    const spec = r.spec;
    if (!isRecord(spec)) continue;
    if (r.kind === 'Service') {
      const host = `${r.metadata.name}.${r.metadata.namespace}.svc.${input.domain}`.toLowerCase();
      const ips = new Set<string>([...(typeof spec.clusterIP === 'string' ? [spec.clusterIP] : []), ...(Array.isArray(spec.clusterIPs) ? spec.clusterIPs.filter((x): x is string => typeof x === 'string') : [])]);
      for (const ip of ips) if (ip && ip !== 'None') add(ip, host);
      const service = visible.get(host);
      if (service?.headless) for (const e of service.endpoints) add(e.address, host);
    } else if (r.kind === 'ServiceEntry' && Array.isArray(spec.addresses) && Array.isArray(spec.hosts)) {
      for (const a of spec.addresses) if (typeof a === 'string') for (const h of spec.hosts) if (typeof h === 'string') add(a, h.toLowerCase());
      if (spec.addresses.length > 0) for (const h of spec.hosts) if (typeof h === 'string') addressed.add(h.toLowerCase());
    }
  }
  for (const [host, ips] of input.autoAllocated ?? []) for (const ip of ips) add(ip, host);
  addresses.seal();

  const byHostPort = (host: string, port: number): MeshTcpTarget | undefined => targets.get(`${host}|${port}`);
  /** A ServiceEntry's TLS or HTTPS port without addresses: on Istio's 0.0.0.0:<port> listener, matched by SNI. */
  const onWildcardListener = (t: MeshTcpTarget): boolean => t.service.kind === 'ServiceEntry' && !addressed.has(t.service.hostname) && SNI_PROTOCOLS.has(t.port.protocol.toUpperCase());
  const wildcardListener = new Map<number, MeshTcpTarget[]>();
  for (const t of targets.values()) if (onWildcardListener(t) && t.sni) wildcardListener.set(t.port.number, [...(wildcardListener.get(t.port.number) ?? []), t]);
  return Object.freeze({
    byAddress(address: string, port: number): MeshTcpTarget | undefined {
      for (const host of addresses.hostsFor(address)) {
        const t = byHostPort(host, port);
        if (t) return t;
      }
      return undefined;
    },
    byHost(host: string, port: number): MeshTcpTarget | undefined {
      const name = host.toLowerCase().replace(/\.$/, '');
      const found = input.registry.lookup(name.includes('.') ? name : resolveShortName(name, input.proxyNamespace, input.domain));
      return found ? byHostPort(found.hostname, port) : undefined;
    },
    bySni(host: string, port: number): MeshTcpTarget | undefined {
      const target = this.byHost(host, port);
      // Istio matches a ServiceEntry's hosts by SNI only on its TLS and HTTPS ports, and only when it
      // declares no addresses (then its listener is on those addresses alone). Anything else named by
      // SNI at some other address would let an app reach that address through the entry, which under
      // resolution NONE forwards to whatever was dialled.
      if (target?.service.kind === 'ServiceEntry') return onWildcardListener(target) ? target : undefined;
      if (target) return target;
      // No entry names the host, but a VirtualService's tls rule on this port does (its sniHosts,
      // `*.wikipedia.org`): Istio puts that rule on the port's 0.0.0.0 listener, which the entries
      // without addresses share, so any SNI the rule names is routed by it.
      return wildcardListener.get(port)?.find((t) => t.sni?.lookup(host) !== undefined && t.sni.lookup(host)!.sniHost !== '*');
    },
  });
}

/** Protocols whose connections start with a ClientHello that names the host. */
const SNI_PROTOCOLS: ReadonlySet<string> = new Set(['TLS', 'HTTPS']);

/** The first tcp rule of `vs` that applies to this proxy on `port`, as a route; undefined when none does. */
function ruleRoute(vs: Resource<VirtualServiceSpec>, port: number, input: MeshTcpInput, registry: Registry): L4Route | undefined {
  const ns = vs.metadata.namespace;
  const rules = vs.spec.tcp ?? [];
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!;
    if (!rule.route || rule.route.length === 0) continue;
    const matches = rule.match ?? [];
    const k = matches.length === 0 ? -1 : matches.findIndex((m) => l4MatchesProxy(m, port, input));
    if (matches.length > 0 && k < 0) continue;
    const destinations = compileDestinations(rule.route, { namespace: ns, listenerPort: port, registry, domain: input.domain, cluster: input.cluster });
    const source: L4RouteSource = {
      virtualService: `${ns}/${vs.metadata.name}`,
      file: vs.origin.file,
      line: vs.origin.lineOf(k >= 0 ? ['spec', 'tcp', i, 'match', k] : ['spec', 'tcp', i]),
      kind: 'tcp',
      routeIndex: i,
      matchIndex: k,
    };
    return { source, destinations, totalWeight: destinations.reduce((s, d) => s + d.weight, 0) };
  }
  return undefined;
}

/** The `tls` rules of `vs` whose match applies to this proxy on `port`, keyed by SNI; undefined when none does. */
function sniRoutes(vs: Resource<VirtualServiceSpec>, port: number, input: MeshTcpInput, registry: Registry): TlsRouteTable | undefined {
  const ns = vs.metadata.namespace;
  const routes: TlsRoute[] = [];
  (vs.spec.tls ?? []).forEach((rule, i) => {
    if (!rule.route || rule.route.length === 0) return;
    (rule.match ?? []).forEach((m, k) => {
      if (!l4MatchesProxy(m, port, input)) return;
      const destinations = compileDestinations(rule.route!, { namespace: ns, listenerPort: port, registry, domain: input.domain, cluster: input.cluster });
      const source: L4RouteSource = { virtualService: `${ns}/${vs.metadata.name}`, file: vs.origin.file, line: vs.origin.lineOf(['spec', 'tls', i, 'match', k]), kind: 'tls', routeIndex: i, matchIndex: k };
      const totalWeight = destinations.reduce((s, d) => s + d.weight, 0);
      for (const sniHost of new Set(m.sniHosts.map((h) => h.toLowerCase()))) routes.push({ sniHost, source, destinations, totalWeight });
    });
  });
  return routes.length > 0 ? buildTlsRouteTable(routes) : undefined;
}

/** Istio's sidecar L4 match: `port` (0 = any), then `gateways` (must name mesh) or the source fields. */
function l4MatchesProxy(m: L4MatchAttributes, port: number, input: MeshTcpInput): boolean {
  if (m.port && m.port !== port) return false;
  if (m.gateways && m.gateways.length > 0) return m.gateways.includes(MESH_GATEWAY);
  if (!selectorMatches(m.sourceLabels, input.proxyLabels)) return false;
  return !m.sourceNamespace || m.sourceNamespace === input.proxyNamespace;
}

function defaultRoute(s: Service, port: number, input: MeshTcpInput, registry: Registry): L4Route {
  const destinations = compileDestinations([{ destination: { host: s.hostname, port: { number: port } } }], { namespace: s.namespace, listenerPort: port, registry, domain: input.domain, cluster: input.cluster });
  return { source: DEFAULT_SOURCE, destinations, totalWeight: destinations.reduce((sum, d) => sum + d.weight, 0) };
}
