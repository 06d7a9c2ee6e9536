// Routes for connections a gateway pipes without parsing (docs/reference/routing.md): VirtualService
// `tls` rules for PASSTHROUGH servers, keyed by the SNI of the ClientHello, and the single `tcp`
// rule of a TCP server. Destinations resolve exactly as for HTTP routes (actions.ts).

import type { L4MatchAttributes, RouteDestination, VirtualServiceSpec } from '../model/istio.js';
import type { Resource } from '../model/resource.js';
import { problemAt, type Problem } from '../config/problem.js';
import { hostMatches, resolveShortName } from '../registry/hostname.js';
import type { Registry } from '../registry/types.js';
import type { Cluster } from '../policy/types.js';
import { compileDestinations, type ActionContext } from './actions.js';
import { exportedTo, hostsVisibleTo, vsGateways, type BoundServer } from './gateway-binding.js';
import type { L4Route, L4RouteSource, TlsRoute, TlsRouteTable } from './types.js';

/** What compiling tls/tcp routes needs from the gateway compile input. */
export interface L4CompileInput {
  readonly registry: Registry;
  /** The gateway proxy's namespace: `exportTo` is checked against it. */
  readonly proxyNamespace: string;
  readonly domain: string;
  cluster(host: string, port: number, subset: string): Cluster | undefined;
  /** The subset names of the DestinationRule that applies to a host (AUTO_PASSTHROUGH names them in SNI). */
  subsetsOf?(host: string, serviceNamespace: string): readonly string[];
}

/**
 * The SNI table of one PASSTHROUGH server (AUTO_PASSTHROUGH servers: auto-passthrough.ts). `virtualServices` must already be in the proxy's order
 * (creation time, own namespace first), as compile.ts orders them. Each matching `tls[].match[]`
 * contributes its `sniHosts`; a match naming an SNI already taken on this server is skipped whole,
 * as Istio skips the filter chain (with a warning).
 */
export function compileTlsRoutes(
  server: BoundServer,
  virtualServices: readonly Resource<VirtualServiceSpec>[],
  input: L4CompileInput,
  problems: Problem[],
): TlsRouteTable {
  const routes: TlsRoute[] = [];
  const port = server.server.port.number;
  // SNI → the rule that claimed it, for the duplicate warning.
  const claimed = new Map<string, string>();
  for (const vs of virtualServices) {
    const tls = vs.spec.tls;
    if (!tls || tls.length === 0 || !bindsToServer(vs, server, input)) continue;
    const ns = vs.metadata.namespace;
    const ref = `${ns}/${vs.metadata.name}`;
    tls.forEach((rule, i) => {
      if (!rule.route || rule.route.length === 0) return;
      (rule.match ?? []).forEach((m, k) => {
        if (!l4Matches(m, vs.spec, ns, server)) return;
        const snis = [...new Set((m.sniHosts ?? []).map((h) => h.toLowerCase()))];
        const taken = snis.filter((s) => claimed.has(s));
        if (taken.length > 0) {
          const by = [...new Set(taken.map((s) => claimed.get(s)!))].join(', ');
          problems.push(
            problemAt(
              vs,
              ['spec', 'tls', i, 'match', k, 'sniHosts'],
              `SNI ${taken.join(', ')} already routed on port ${port} of gateway ${server.gatewayRef} by ${by}; this match is skipped`,
              'warning',
            ),
          );
          return;
        }
        const source = sourceOf(vs, 'tls', i, k);
        const { destinations, totalWeight } = destinationsOf(rule.route!, ns, port, input);
        for (const sniHost of snis) {
          claimed.set(sniHost, `${ref} tls[${i}].match[${k}]`);
          routes.push({ sniHost, source, destinations, totalWeight });
        }
      });
    });
  }
  return buildTlsRouteTable(routes);
}

/**
 * The `tcp` route of a TCP server: the first VirtualService (in the proxy's order) bound to it whose
 * first `tcp` rule matching the server port and gateway has destinations. One route per server.
 */
export function compileTcpRoute(server: BoundServer, virtualServices: readonly Resource<VirtualServiceSpec>[], input: L4CompileInput): L4Route | undefined {
  const port = server.server.port.number;
  for (const vs of virtualServices) {
    const tcp = vs.spec.tcp;
    if (!tcp || tcp.length === 0 || !bindsToServer(vs, server, input)) continue;
    const ns = vs.metadata.namespace;
    for (let i = 0; i < tcp.length; i++) {
      const rule = tcp[i]!;
      const matches = rule.match ?? [];
      // No match list matches every connection; otherwise any one match will do.
      const k = matches.length === 0 ? -1 : matches.findIndex((m) => l4Matches(m, vs.spec, ns, server));
      if (matches.length > 0 && k < 0) continue;
      if (!rule.route || rule.route.length === 0) continue;
      return { source: sourceOf(vs, 'tcp', i, k), ...destinationsOf(rule.route, ns, port, input) };
    }
  }
  return undefined;
}

/** Exact SNI first, then the wildcard with the longest suffix, then a `*` rule (which also takes no SNI). */
export function buildTlsRouteTable(routes: readonly TlsRoute[]): TlsRouteTable {
  const exact = new Map<string, TlsRoute>();
  const wildcards: Array<{ suffix: string; route: TlsRoute }> = [];
  let any: TlsRoute | undefined;
  for (const r of routes) {
    if (r.sniHost === '*') any ??= r;
    else if (r.sniHost.startsWith('*.')) wildcards.push({ suffix: r.sniHost.slice(1), route: r });
    else if (!exact.has(r.sniHost)) exact.set(r.sniHost, r);
  }
  // Stable sort keeps declaration order between equal suffix lengths.
  wildcards.sort((a, b) => b.suffix.length - a.suffix.length);
  return {
    routes,
    lookup(sni: string | undefined): TlsRoute | undefined {
      if (sni === undefined || sni === '') return any;
      const name = sni.toLowerCase();
      const hit = exact.get(name);
      if (hit) return hit;
      // `*.com` takes `example.com` and `foo.example.com` alike: the suffix is `.com` (docs/reference/routing.md).
      for (const w of wildcards) if (name.length > w.suffix.length && name.endsWith(w.suffix)) return w.route;
      return any;
    },
  };
}

/** Istio's pickMatchingGatewayHosts: some VirtualService host overlaps some server host visible to its namespace. */
function bindsToServer(vs: Resource<VirtualServiceSpec>, server: BoundServer, input: L4CompileInput): boolean {
  const ns = vs.metadata.namespace;
  if (!exportedTo(vs.spec.exportTo, ns, input.proxyNamespace)) return false;
  const vsHosts = (vs.spec.hosts ?? []).map((h) => resolveShortName(h, ns, input.domain).toLowerCase());
  const serverHosts = hostsVisibleTo(server.hosts, ns);
  return serverHosts.some((s) => vsHosts.some((v) => hostMatches(s, v)));
}

/** `port` absent or 0 matches any server port; `gateways` on the match narrow the VirtualService's. */
function l4Matches(m: L4MatchAttributes, spec: VirtualServiceSpec, ns: string, server: BoundServer): boolean {
  if (m.port !== undefined && m.port !== 0 && m.port !== server.server.port.number) return false;
  return vsGateways(spec, ns, m.gateways).has(server.gatewayRef);
}

function destinationsOf(route: readonly RouteDestination[], namespace: string, listenerPort: number, input: L4CompileInput): Pick<L4Route, 'destinations' | 'totalWeight'> {
  const ctx: ActionContext = { namespace, listenerPort, registry: input.registry, domain: input.domain, cluster: input.cluster };
  const destinations = compileDestinations(route, ctx);
  return { destinations, totalWeight: destinations.reduce((s, d) => s + d.weight, 0) };
}

function sourceOf(vs: Resource<VirtualServiceSpec>, kind: 'tls' | 'tcp', routeIndex: number, matchIndex: number): L4RouteSource {
  return {
    virtualService: `${vs.metadata.namespace}/${vs.metadata.name}`,
    file: vs.origin.file,
    line: vs.origin.lineOf(matchIndex >= 0 ? ['spec', kind, routeIndex, 'match', matchIndex] : ['spec', kind, routeIndex]),
    kind,
    routeIndex,
    matchIndex,
  };
}
