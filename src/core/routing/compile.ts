// The route compiler for a gateway: Gateway servers × bound VirtualServices → listeners and route
// configs with virtual hosts, in Istio's order (docs/reference/routing.md): routes of several
// VirtualServices for one host appended by creation time, catch-alls moved last.

import type { GatewaySpec, HTTPMatchRequest, HTTPRoute, Labels, VirtualServiceSpec } from '../model/istio.js';
import { compareByCreation, type Resource } from '../model/resource.js';
import { problemAt, type Problem } from '../config/problem.js';
import { hostIntersection, resolveShortName } from '../registry/hostname.js';
import type { Registry } from '../registry/types.js';
import type { Cluster } from '../policy/types.js';
import { compileAction } from './actions.js';
import { isTranslated, translatedSource } from '../gateway-api/route-sources.js';
import { bindServers, exportedTo, hostsVisibleTo, selectsProxy, vsGateways, type BoundServer } from './gateway-binding.js';
import { indexVirtualHosts } from './host-index.js';
import { reuseRoutes } from './route-reuse.js';
import { compileTcpRoute, compileTlsRoutes } from './tls-routes.js';
import { compileAutoPassthrough } from './auto-passthrough.js';
import { compileMatch, isCatchAll } from './match.js';
import type { CompiledRoute, Listener, RouteConfig, ServerConfig, VirtualHost } from './types.js';

export interface GatewayCompileInput {
  readonly gateways: readonly Resource<GatewaySpec>[];
  readonly virtualServices: readonly Resource<VirtualServiceSpec>[];
  readonly registry: Registry;
  readonly proxyLabels: Labels;
  /** The gateway proxy's namespace: exportTo visibility and VirtualService precedence follow it. */
  readonly proxyNamespace: string;
  readonly domain: string;
  /** The gateway Service's ports, port → targetPort; a server port not in it listens as-is. */
  readonly servicePorts?: ReadonlyMap<number, number>;
  cluster(host: string, port: number, subset: string): Cluster | undefined;
  /** The subset names of the DestinationRule for a host (AUTO_PASSTHROUGH servers route to each). */
  subsetsOf?(host: string, serviceNamespace: string): readonly string[];
}

export interface CompiledGateway {
  /** By listen port. */
  readonly listeners: ReadonlyMap<number, Listener>;
  readonly routeConfigs: ReadonlyMap<string, RouteConfig>;
  readonly problems: readonly Problem[];
}

interface VhostDraft {
  routes: CompiledRoute[];
  requireTls: boolean;
}

export function compileGateway(input: GatewayCompileInput): CompiledGateway {
  const problems: Problem[] = [];
  const gateways = input.gateways.filter((g) => selectsProxy(g, input.proxyLabels)).sort(compareByCreation);
  const servers = bindServers(gateways, problems, input.servicePorts);
  const virtualServices = orderForProxy(input.virtualServices, input.proxyNamespace);

  // route config name → domain → draft
  const drafts = new Map<string, Map<string, VhostDraft>>();
  for (const bound of servers) {
    if (!bound.routeConfig) continue;
    const vhosts = drafts.get(bound.routeConfig) ?? new Map<string, VhostDraft>();
    drafts.set(bound.routeConfig, vhosts);
    for (const vs of virtualServices) {
      try {
        bindVirtualService(vs, bound, vhosts, input);
      } catch (err) {
        // A compile bug must not take the whole gateway down: report it against the resource.
        problems.push(problemAt(vs, ['spec'], `internal error while compiling: ${(err as Error).message}`));
      }
    }
    if (bound.server.tls?.httpsRedirect) {
      for (const h of bound.hosts) {
        const draft = vhosts.get(h.host) ?? { routes: [], requireTls: false };
        draft.requireTls = true;
        vhosts.set(h.host, draft);
      }
    }
  }

  const routeConfigs = new Map<string, RouteConfig>();
  for (const [name, vhosts] of drafts) {
    const list: VirtualHost[] = [];
    for (const [domain, d] of vhosts) list.push({ domain, routes: catchAllsLast(d.routes), requireTls: d.requireTls });
    routeConfigs.set(name, indexVirtualHosts(name, list));
  }
  return { listeners: buildListeners(servers, (b) => l4Routes(b, virtualServices, input, problems)), routeConfigs, problems };
}

function bindVirtualService(vs: Resource<VirtualServiceSpec>, bound: BoundServer, vhosts: Map<string, VhostDraft>, input: GatewayCompileInput): void {
  const spec = vs.spec;
  const ns = vs.metadata.namespace;
  if (!spec.http || spec.http.length === 0) return;
  if (!exportedTo(spec.exportTo, ns, input.proxyNamespace)) return;
  const vsHosts = (spec.hosts ?? []).map((h) => resolveShortName(h, ns, input.domain).toLowerCase());
  const domains = [...new Set(hostIntersection(hostsVisibleTo(bound.hosts, ns), vsHosts))];
  if (domains.length === 0) return;
  // Only the gateway's name and the server's port reach the routes (compileHttpRoutes).
  const routes = reuseRoutes(vs, `${bound.gatewayRef}|${bound.server.port.number}|${input.domain}`, input, (lookups) => compileHttpRoutes(vs, bound, lookups));
  if (routes.length === 0) return;
  for (const domain of domains) {
    const draft = vhosts.get(domain) ?? { routes: [], requireTls: false };
    draft.routes.push(...routes);
    vhosts.set(domain, draft);
  }
}

/** One compiled route per (http route × match), as Envoy holds them; Istio stops after a catch-all route. */
function compileHttpRoutes(vs: Resource<VirtualServiceSpec>, bound: BoundServer, input: GatewayCompileInput): CompiledRoute[] {
  const out: CompiledRoute[] = [];
  const ns = vs.metadata.namespace;
  const port = bound.server.port.number;
  const http = vs.spec.http ?? [];
  for (let i = 0; i < http.length; i++) {
    const route = http[i]!;
    const matches: Array<HTTPMatchRequest | undefined> = route.match && route.match.length > 0 ? [...route.match] : [undefined];
    // Istio drops routes whose redirect code it cannot express (validation warned about it).
    if (route.redirect?.redirectCode !== undefined && !REDIRECT_CODES.has(route.redirect.redirectCode)) continue;
    let sawCatchAll = false;
    for (let k = 0; k < matches.length && !sawCatchAll; k++) {
      const m = matches[k];
      if (!vsGateways(vs.spec, ns, m?.gateways).has(bound.gatewayRef)) continue;
      if (m?.port !== undefined && m.port !== port) continue;
      const catchAll = isCatchAll(m);
      sawCatchAll = catchAll;
      out.push({
        name: routeName(route, m),
        // A VirtualService made from Gateway API routes names the route rule it came from.
        source: translatedSource(vs, i) ?? { virtualService: `${ns}/${vs.metadata.name}`, file: vs.origin.file, line: vs.origin.lineOf(['spec', 'http', i]), httpIndex: i, matchIndex: m ? k : -1 },
        conditions: m ? compileMatch(m) : [],
        catchAll,
        action: compileAction(route, m, {
          namespace: ns,
          listenerPort: port,
          registry: input.registry,
          domain: input.domain,
          cluster: input.cluster,
        }),
      });
    }
    if (sawCatchAll) break;
  }
  return out;
}

export const REDIRECT_CODES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/**
 * Istio's VirtualServicesForGateway order: those private to the proxy's namespace, then those
 * exported to it by name, then public ones; creation order within each group.
 */
export function orderForProxy(list: readonly Resource<VirtualServiceSpec>[], proxyNamespace: string, gatewayApiOfNamespace = false): Resource<VirtualServiceSpec>[] {
  const tier = (vs: Resource<VirtualServiceSpec>): number => {
    // Sidecars: Gateway API routes of the proxy's own namespace (consumer routes) come after the
    // private and explicitly exported VirtualServices and before every public one, as in Istio.
    if (gatewayApiOfNamespace && vs.metadata.namespace === proxyNamespace && isTranslated(vs)) return 1.5;
    const e = vs.spec.exportTo;
    if (!e || e.length === 0 || e.includes('*')) return 2;
    if (vs.metadata.namespace === proxyNamespace && e.includes('.')) return 0;
    return e.includes(proxyNamespace) ? 1 : 2;
  };
  return [...list].sort((a, b) => tier(a) - tier(b) || compareByCreation(a, b));
}

export function routeName(route: HTTPRoute, m: HTTPMatchRequest | undefined): string {
  if (route.name && m?.name) return `${route.name}.${m.name}`;
  return route.name ?? m?.name ?? '';
}

/** Istio's SortVHostRoutes: catch-all routes go to the end, everything else keeps its order. */
function catchAllsLast(routes: CompiledRoute[]): CompiledRoute[] {
  // concat makes a list of exactly the length: a virtual host's routes are kept by the snapshot.
  return routes.filter((r) => !r.catchAll).concat(routes.filter((r) => r.catchAll));
}

/** SNI routes of a PASSTHROUGH server, or the tcp route of a TCP server (tls-routes.ts). */
function l4Routes(b: BoundServer, virtualServices: readonly Resource<VirtualServiceSpec>[], input: GatewayCompileInput, problems: Problem[]): Pick<ServerConfig, 'tlsRoutes' | 'tcpRoute'> {
  try {
    if (b.kind === 'passthrough' && b.server.tls?.mode === 'AUTO_PASSTHROUGH') return { tlsRoutes: compileAutoPassthrough(b, input, problems) };
    if (b.kind === 'passthrough') return { tlsRoutes: compileTlsRoutes(b, virtualServices, input, problems) };
    if (b.kind !== 'tcp') return {};
    const tcpRoute = compileTcpRoute(b, virtualServices, input);
    return tcpRoute ? { tcpRoute } : {};
  } catch (err) {
    problems.push(problemAt(b.gateway, ['spec', 'servers', b.index], `internal error while compiling tls/tcp routes: ${(err as Error).message}`));
    return {};
  }
}

function buildListeners(servers: readonly BoundServer[], l4: (b: BoundServer) => Pick<ServerConfig, 'tlsRoutes' | 'tcpRoute'>): Map<number, Listener> {
  const byPort = new Map<number, { protocol: string; servers: ServerConfig[]; http?: string }>();
  for (const b of servers) {
    const entry = byPort.get(b.listenPort) ?? { protocol: b.server.port.protocol.toUpperCase(), servers: [] };
    byPort.set(b.listenPort, entry);
    if (b.kind === 'http') entry.http = b.routeConfig;
    entry.servers.push({
      gateway: b.gatewayRef,
      serverIndex: b.index,
      port: b.server.port.number,
      portName: b.server.port.name,
      protocol: b.server.port.protocol.toUpperCase(),
      hosts: b.hosts.map((h) => h.host),
      scopedHosts: b.hosts,
      ...(b.server.tls ? { tls: b.server.tls } : {}),
      ...(b.routeConfig ? { routeConfig: b.routeConfig } : {}),
      ...l4(b),
    });
  }
  const out = new Map<number, Listener>();
  for (const [port, e] of byPort) {
    out.set(port, { port, protocol: e.protocol, servers: e.servers, ...(e.http ? { httpRouteConfig: e.http } : {}) });
  }
  return out;
}
