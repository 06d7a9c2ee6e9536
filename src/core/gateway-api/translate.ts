// The Gateway API → the Istio model the route compiler already serves: Gateways of meshgate's
// classes become Istio Gateways (one per listener, listeners.ts), and the routes attached to them
// become VirtualServices (one per listener host, its entries in Gateway API precedence), so TLS,
// policies, retries, rate limits, metrics and `explain` apply unchanged. Alongside comes the status
// the API asks for (conditions.ts). Istio translates its own Gateway API support the same way.
// Routes attached to Services become mesh-bound VirtualServices for sidecars (mesh-services.ts,
// and mesh-l4.ts for TCPRoutes and TLSRoutes).

import type { Problem } from '../config/problem.js';
import {
  K8S_GATEWAY_KIND, type BackendRef, type GatewayClassSpec, type GRPCRouteSpec, type HTTPRouteSpec, type K8sGatewaySpec, type L4RouteSpec, type ReferenceGrantSpec, type RouteKind,
} from '../model/gateway-api.js';
import type { GatewaySpec, RouteDestination, VirtualServiceSpec } from '../model/istio.js';
import type { Origin, Resource } from '../model/resource.js';
import type { Registry } from '../registry/types.js';
import { attachRoute, attachToServices, type Attachment, type NamespaceLabels } from './attach.js';
import type { BackendContext } from './backends.js';
import { resolveBackendTls } from './backend-tls.js';
import { l4RuleDestinations, meshL4VirtualServices } from './mesh-l4.js';
import { condition, statusProblems, type Condition, type GatewayApiStatus, type RouteStatus } from './conditions.js';
import { ruleAction, ruleEntries, type RuleAction, type RuleInput } from './http-rules.js';
import { ourClasses, serveListeners, type ServedListener } from './listeners.js';
import { ownService } from './deployment-objects.js';
import { MeshRoutes } from './mesh-services.js';
import { compareRoutes, type RankedEntry } from './precedence.js';
import { ReferenceGrants } from './reference-grants.js';
import { recordSources } from './route-sources.js';
import { entriesOrigin, rankedHttp, synthetic } from './virtual-services.js';

export interface GatewayApiInput {
  readonly resources: readonly Resource[];
  readonly registry: Registry;
  readonly domain: string;
  /** The gateway Service's ports (Gateway port → listen port): plaintext listeners share a route config per listen port. */
  readonly servicePorts?: ReadonlyMap<number, number>;
  /** Serve only these Gateways (`ns/name`); undefined: every Gateway of meshgate's classes. */
  readonly only?: ReadonlySet<string>;
  /** `mesh` (a sidecar): only routes attached to Services; default `gateway`: Gateways and, for status, Services too. */
  readonly scope?: 'gateway' | 'mesh';
}

export interface GatewayApiTranslation {
  readonly gateways: readonly Resource<GatewaySpec>[];
  readonly virtualServices: readonly Resource<VirtualServiceSpec>[];
  /** Bound to `mesh`: what routes attached to Services mean to sidecars. */
  readonly meshVirtualServices: readonly Resource<VirtualServiceSpec>[];
  readonly status: GatewayApiStatus;
  /** The status conditions that report something wrong, as warnings at file:line. */
  readonly problems: readonly Problem[];
}

const HTTP_KINDS: readonly RouteKind[] = ['HTTPRoute', 'GRPCRoute'];

export function translateGatewayApi(input: GatewayApiInput): GatewayApiTranslation {
  const of = <S>(kind: string): Resource<S>[] => input.resources.filter((r) => r.kind === kind) as Resource<S>[];
  const mesh = input.scope === 'mesh';
  const grants = new ReferenceGrants(of<ReferenceGrantSpec>('ReferenceGrant'));
  const classes = ourClasses(mesh ? [] : of<GatewayClassSpec>('GatewayClass'));
  const k8sGateways = mesh ? [] : of<K8sGatewaySpec>(K8S_GATEWAY_KIND);
  // Without --gateway-name, a gateway serves the Gateways that have no deployment of their own.
  const only = input.only ?? new Set(k8sGateways.filter((g) => !ownService(g, input.resources)).map((g) => `${g.metadata.namespace}/${g.metadata.name}`));
  const served = serveListeners(k8sGateways, classes.names, grants, only);
  const namespaces: NamespaceLabels = new Map(of('Namespace').map((n) => [n.metadata.name, n.metadata.labels]));

  const routes: RouteStatus[] = [];
  const groups = new Map<string, Group>();
  const meshRoutes = new MeshRoutes();
  const l4: Resource<VirtualServiceSpec>[] = [];
  const meshL4: Resource<VirtualServiceSpec>[] = [];
  // Which Gateways send to which Services, for the ancestors of BackendTLSPolicies: kept only when there are some.
  const gatewaysByService = !mesh && input.resources.some((r) => r.kind === 'BackendTLSPolicy') ? new Map<string, Set<string>>() : undefined;
  for (const kind of ['HTTPRoute', 'GRPCRoute', 'TLSRoute', 'TCPRoute'] as const) {
    for (const route of of<HTTPRouteSpec & GRPCRouteSpec & L4RouteSpec>(kind).sort(compareRoutes)) {
      const { attachments, parents } = attachRoute(route, kind, served.listeners, namespaces);
      if (gatewaysByService && attachments.length > 0) noteBackends(route, attachments, gatewaysByService);
      const services = attachToServices(route, kind, input.registry, input.domain);
      if (parents.length + services.parents.length === 0) continue;
      routes.push({ resource: route, parents: [...parents, ...services.parents] });
      const ctx: BackendContext = { routeKind: kind, routeNamespace: route.metadata.namespace, registry: input.registry, grants, domain: input.domain };
      // A Service parent (mesh) needs no ReferenceGrant for its backends, a Gateway's does: each is resolved on its own.
      const meshCtx: BackendContext = { ...ctx, grants: undefined };
      let refProblems: Condition[] = [];
      let meshRefProblems: Condition[] = [];
      if (HTTP_KINDS.includes(kind)) {
        const rules = ruleInputs(route, kind);
        if (parents.length > 0) {
          const actions = rules.map((r) => ruleAction(r, ctx));
          refProblems = actions.flatMap((a) => a.refProblems);
          addHttpEntries(route, rules, actions, attachments, groups, input.servicePorts);
        }
        if (services.attachments.length > 0) {
          const actions = rules.map((r) => ruleAction(r, meshCtx));
          meshRefProblems = actions.flatMap((a) => a.refProblems);
          meshRoutes.add(route, services.attachments, rules.flatMap((r, i) => ruleEntries(r, actions[i]!, undefined)));
        }
      } else {
        if (parents.length > 0) {
          const l4Rules = l4RuleDestinations(route, ctx);
          refProblems = l4Rules.refProblems;
          addL4Route(route, kind, attachments, l4Rules.rules, l4);
        }
        if (services.attachments.length > 0) {
          const l4Rules = l4RuleDestinations(route, meshCtx);
          meshRefProblems = l4Rules.refProblems;
          meshL4.push(...meshL4VirtualServices(route, kind, services.attachments, l4Rules.rules));
        }
      }
      const resolved = (problems: readonly Condition[]): Condition => problems[0] ?? condition('ResolvedRefs', true, 'ResolvedRefs');
      for (const p of parents) p.conditions.push(resolved(refProblems));
      for (const p of services.parents) p.conditions.push(resolved(meshRefProblems));
    }
  }

  // A request for a listener's own hostname is that listener's, routes or not: it must not reach a
  // wildcard listener's routes on the same port, so each specific HTTP(S) listener host gets a vhost
  // that ends in 404.
  for (const l of served.listeners) {
    if (!l.istioGateway || l.hostname === '*' || (l.listener.protocol !== 'HTTP' && l.listener.protocol !== 'HTTPS')) continue;
    const gkey = `${groupKey(l, input.servicePorts)}|${l.hostname}`;
    const group = groups.get(gkey) ?? { listener: l, domain: l.hostname, entries: [] };
    groups.set(gkey, group);
    group.closedBy ??= l;
  }
  const virtualServices = [...[...groups.values()].map(groupVirtualService), ...l4];
  // A sidecar's BackendTLSPolicies become rules (backend-tls-rules.ts); their status is a gateway's to write.
  const policies = gatewaysByService ? resolveBackendTls(input.resources, gatewaysByService).statuses : [];
  const status: GatewayApiStatus = { gatewayClasses: classes.statuses, gateways: served.gateways, routes, policies };
  return {
    gateways: served.listeners.flatMap((l) => (l.istioGateway ? [l.istioGateway] : [])),
    virtualServices,
    meshVirtualServices: [...meshRoutes.virtualServices(), ...meshL4],
    status,
    problems: statusProblems(status),
  };
}

/** The Services a route attached to Gateways sends traffic to: a BackendTLSPolicy of theirs reports those Gateways as ancestors. */
function noteBackends(route: Resource<{ rules?: ReadonlyArray<{ backendRefs?: readonly BackendRef[] }> }>, attachments: readonly Attachment[], out: Map<string, Set<string>>): void {
  for (const rule of route.spec.rules ?? []) {
    for (const b of rule.backendRefs ?? []) {
      if ((b.group ?? '') !== '' || (b.kind ?? 'Service') !== 'Service') continue;
      const key = `${b.namespace ?? route.metadata.namespace}/${b.name}`;
      const gateways = out.get(key) ?? new Set<string>();
      for (const a of attachments) gateways.add(a.listener.gatewayKey);
      out.set(key, gateways);
    }
  }
}

function ruleInputs(route: Resource<HTTPRouteSpec & GRPCRouteSpec>, kind: RouteKind): RuleInput[] {
  return (route.spec.rules ?? []).map((r, ruleIndex): RuleInput => ({
    kind,
    ruleIndex,
    ...(r.name ? { name: r.name } : {}),
    matches: r.matches ?? [],
    filters: r.filters ?? [],
    backendRefs: r.backendRefs ?? [],
    ...('timeouts' in r && r.timeouts ? { timeouts: r.timeouts } : {}),
  }));
}

function addHttpEntries(
  route: Resource,
  rules: readonly RuleInput[],
  actions: readonly RuleAction[],
  attachments: readonly Attachment[],
  groups: Map<string, Group>,
  servicePorts: ReadonlyMap<number, number> | undefined,
): void {
  for (const att of attachments) {
    const l = att.listener.listener;
    const key = groupKey(att.listener, servicePorts);
    for (const domain of att.hostnames) {
      const gkey = `${key}|${domain}`;
      const group = groups.get(gkey) ?? { listener: att.listener, domain, entries: [] };
      groups.set(gkey, group);
      rules.forEach((rule, i) => {
        for (const entry of ruleEntries(rule, actions[i]!, l.port)) group.entries.push({ route, entry });
      });
    }
  }
}

/** The rules meant for one host of one route config, and the listener whose host closes it with a 404. */
interface Group {
  readonly listener: ServedListener;
  readonly domain: string;
  readonly entries: RankedEntry[];
  closedBy?: ServedListener;
}

/**
 * Plaintext listeners on one listen port share a route config (Istio's `http.<port>`): one
 * VirtualService per host there keeps the precedence across all of them. A TLS listener has its own.
 */
function groupKey(l: ServedListener, servicePorts: ReadonlyMap<number, number> | undefined): string {
  return l.listener.protocol === 'HTTP' ? `http|${servicePorts?.get(l.listener.port) ?? l.listener.port}` : l.ref;
}

function groupVirtualService(g: Group): Resource<VirtualServiceSpec> {
  const { http, sources, ranked } = rankedHttp(g.entries);
  if (g.closedBy) {
    const l = g.closedBy;
    http.push({ name: 'no-route', directResponse: { status: 404 } });
    sources.push({
      virtualService: `Gateway ${l.gateway.metadata.namespace}/${l.gateway.metadata.name} listener ${l.listener.name} (no route matched)`,
      file: l.gateway.origin.file,
      line: l.gateway.origin.lineOf(['spec', 'listeners', l.index]),
      httpIndex: l.index,
      matchIndex: -1,
    });
  }
  const gw = g.listener.gateway;
  const first = ranked[0]?.route ?? gw;
  const vs = synthetic(gw, `${g.listener.ref.split('/')[1]}:${g.domain}`, { hosts: [g.domain], gateways: [g.listener.ref], http }, entriesOrigin(first, gw.origin.order, sources));
  recordSources(vs, sources);
  return vs;
}

/** TLSRoute on a passthrough listener (routes by SNI) or TCPRoute (one per listener, the oldest wins). */
function addL4Route(route: Resource<L4RouteSpec>, kind: RouteKind, attachments: readonly Attachment[], rules: readonly RouteDestination[][], out: Resource<VirtualServiceSpec>[]): void {
  const dests = rules.flat();
  // No usable backend: the connection is refused (there is no status code to answer with).
  if (dests.length === 0) return;
  attachments.forEach((att, i) => {
    const origin: Origin = { ...route.origin, lineOf: (p) => route.origin.lineOf(p[1] === 'tls' || p[1] === 'tcp' ? ['spec', 'rules', 0] : p) };
    const spec: VirtualServiceSpec =
      kind === 'TLSRoute'
        ? { hosts: [...att.hostnames], gateways: [att.listener.ref], tls: [{ match: [{ sniHosts: [...att.hostnames] }], route: dests }] }
        : { hosts: [att.listener.hostname], gateways: [att.listener.ref], tcp: [{ route: dests }] };
    out.push(synthetic(route, `${kind}:${route.metadata.name}${attachments.length > 1 ? `:${i}` : ''}`, spec, origin));
  });
}
