// TCPRoutes and TLSRoutes attached to a Service (the Gateway API's mesh support, GAMMA) → the
// mesh-bound VirtualServices with `tcp` and `tls` rules that sidecars already route by
// (routing/mesh-tcp-routes.ts), as Istio translates them: one per route and Service host,
// `gateways: [mesh]`; each rule in order, a parentRef `port` written as the rule's match port; a
// TLSRoute rule matches its `hostnames` by SNI (the Service's own name when it lists none, and of
// several only those that cover the Service's name); a rule with no backend of weight above zero
// refuses the connection. A consumer's route (in another namespace than the Service's) applies to
// its own namespace only (`exportTo: ['.']`), like HTTPRoutes (mesh-services.ts).

import type { BackendRef, L4RouteSpec, RouteKind } from '../model/gateway-api.js';
import type { RouteDestination, TCPRoute, TLSRoute, VirtualServiceSpec } from '../model/istio.js';
import type { Origin, Resource } from '../model/resource.js';
import { hostMatches } from '../registry/hostname.js';
import { MESH_GATEWAY } from '../routing/gateway-binding.js';
import type { ServiceAttachment } from './attach.js';
import { resolveBackend, type BackendContext } from './backends.js';
import { condition, type Condition } from './conditions.js';
import { INVALID_BACKEND_HOST } from './route-sources.js';
import { synthetic } from './virtual-services.js';

/** Each rule's destinations (backends that resolve, weight above zero), and what did not resolve. */
export function l4RuleDestinations(route: Resource<L4RouteSpec>, ctx: BackendContext): { rules: RouteDestination[][]; refProblems: Condition[] } {
  const refProblems: Condition[] = [];
  const rules = (route.spec.rules ?? []).map((rule) => {
    const dests: RouteDestination[] = [];
    for (const ref of rule.backendRefs ?? []) {
      const r = resolveBackend(ref as BackendRef, ctx);
      if (!r.ok) {
        refProblems.push(condition('ResolvedRefs', false, r.reason, r.message));
        continue;
      }
      if ((ref.weight ?? 1) > 0) dests.push({ destination: { host: r.host, port: { number: r.port } }, weight: ref.weight ?? 1 });
    }
    return dests;
  });
  return { rules, refProblems };
}

/** A destination with no cluster: the connection is refused, as the API asks of a rule without backends. */
const REFUSED: readonly RouteDestination[] = Object.freeze([{ destination: { host: INVALID_BACKEND_HOST, port: { number: 65535 } } }]);

/** The VirtualServices of one TCPRoute or TLSRoute for the Services it is attached to. */
export function meshL4VirtualServices(route: Resource<L4RouteSpec>, kind: RouteKind, attachments: readonly ServiceAttachment[], rules: readonly RouteDestination[][]): Resource<VirtualServiceSpec>[] {
  const byHost = new Map<string, ServiceAttachment[]>();
  for (const att of attachments) byHost.set(att.host, [...(byHost.get(att.host) ?? []), att]);
  const out: Resource<VirtualServiceSpec>[] = [];
  for (const [host, atts] of byHost) {
    const ports = [...new Set(atts.map((a) => a.port))];
    // A parentRef without a port covers every port: no match port for it, and one set of rules.
    const portList = ports.includes(undefined) ? [undefined] : ports;
    const ruleIndex: number[] = [];
    const tcp: TCPRoute[] = [];
    const tls: TLSRoute[] = [];
    for (const port of portList) {
      rules.forEach((dests, i) => {
        const to = dests.length > 0 ? dests : REFUSED;
        if (kind === 'TCPRoute') tcp.push({ ...(port !== undefined ? { match: [{ port }] } : {}), route: to });
        else {
          const sniHosts = sniHostsFor(route.spec.hostnames ?? [], host);
          if (sniHosts.length === 0) return;
          tls.push({ match: [{ sniHosts, ...(port !== undefined ? { port } : {}) }], route: to });
        }
        ruleIndex.push(i);
      });
    }
    const consumer = atts[0]!.serviceNamespace !== route.metadata.namespace;
    const spec: VirtualServiceSpec = { hosts: [host], gateways: [MESH_GATEWAY], ...(kind === 'TCPRoute' ? { tcp } : { tls }), ...(consumer ? { exportTo: ['.'] } : {}) };
    // Problems about the VirtualService's rules point at the route rule they came from.
    const origin: Origin = { ...route.origin, lineOf: (p) => route.origin.lineOf((p[1] === 'tcp' || p[1] === 'tls') && typeof p[2] === 'number' ? ['spec', 'rules', ruleIndex[p[2]] ?? 0] : p) };
    out.push(synthetic(route, `${kind}:${route.metadata.name}:mesh:${host}`, spec, origin));
  }
  return out;
}

/** The route's hostnames as SNI names for one Service: its own name without any; of several, those that cover it. */
function sniHostsFor(hostnames: readonly string[], serviceHost: string): string[] {
  const names = hostnames.map((h) => h.toLowerCase());
  if (names.length === 0) return [serviceHost];
  return names.length > 1 ? names.filter((h) => hostMatches(serviceHost, h)) : names;
}
