// Which RateLimitPolicy limits apply to which compiled route, worked out once per snapshot, so that
// a request only looks its (virtual host, route) pair up. A policy's target is resolved against the
// compiled routing table: a VirtualService (or one of its named http routes) means the routes it
// contributed; a Gateway (optionally one host) means every route of the virtual hosts its servers serve.

import { parseDuration } from '../config/duration.js';
import { problemAt, type Problem } from '../config/problem.js';
import type { GatewaySpec, VirtualServiceSpec } from '../model/istio.js';
import type { RateLimitPolicySpec, RateLimitStore } from '../model/rate-limit.js';
import type { Resource } from '../model/resource.js';
import { hostSubsetOf } from '../registry/hostname.js';
import type { CompiledRoute, Listener, RouteConfig, VirtualHost } from '../routing/types.js';
import type { ProxyRole } from '../snapshot/snapshot.js';
import { bindEnvoyFilterLimits, type InboundBinding } from './envoy-filter-limits.js';
import type { LimitPosition } from './envoy-filter-position.js';
import type { TokenBucket } from './envoy-local-rate-limit.js';

export type RateLimitKeyKind =
  | { readonly kind: 'clientIp' }
  | { readonly kind: 'header'; /** Lower-case. */ readonly name: string }
  | { readonly kind: 'principal' }
  /** One count for every request (an EnvoyFilter local rate limit's token bucket). */
  | { readonly kind: 'proxy' }
  /** One count per downstream connection (local_rate_limit_per_downstream_connection). */
  | { readonly kind: 'connection' };

/**
 * An EnvoyFilter bucket's filter instance: a route config's (`http.80`, `9080` outbound), a virtual
 * host's or route's own configuration in it, or a sidecar's inbound side (one port, or `*`: every one).
 */
export interface BucketScope {
  readonly routeConfig?: string;
  readonly virtualHost?: string;
  readonly route?: string;
  readonly inboundPort?: number | '*';
}

/** How an EnvoyFilter local rate limit answers, where it differs from a RateLimitPolicy's. */
export interface EnvoyReplyStyle {
  /** status.code (429 unless set to 400 or more). */
  readonly status: number;
  /** response_headers_to_add, on refused requests' replies. */
  readonly responseHeaders: Readonly<Record<string, string>>;
  /** filter_enabled: the fraction of requests counted at all. */
  readonly enabled: number;
  /** filter_enforced: the fraction of refusals that are enforced (the others go on). */
  readonly enforced: number;
  /** Where the HTTP_FILTER patch put the filter: `INSERT_BEFORE envoy.filters.http.router`. */
  readonly placement: string;
  /** Whose bucket it is: the filter's (a route config's, or the inbound side's), or a virtual host's or route's own. */
  readonly bucket: BucketScope;
  readonly tokenBucket: TokenBucket;
  /** enable_x_ratelimit_headers DRAFT_VERSION_03: Envoy's x-ratelimit-* headers on every response counted. */
  readonly xRateLimitHeaders: boolean;
}

/** One `limits[]` entry of one policy, with everything the request path needs already computed. */
export interface RateLimitRule {
  /** `namespace/name[index]`: logs, the access log's response details, and the admin page. */
  readonly id: string;
  /** `namespace/name` of the policy. */
  readonly policy: string;
  readonly key: RateLimitKeyKind;
  readonly requests: number;
  readonly intervalSeconds: number;
  readonly burst: number;
  /** How long the burst reserve takes to come back once spent (docs/tasks/rate-limiting.md). */
  readonly burstSeconds: number;
  readonly store: RateLimitStore;
  /** Where in the request pipeline it counts (an EnvoyFilter's: where its patch put the filter). */
  readonly position: LimitPosition;
  /**
   * Everything that shapes the counters. Equal settings across snapshots mean the same counters,
   * so a reload that leaves a limit alone does not reset it.
   */
  readonly settings: string;
  /** Set for an EnvoyFilter's local rate limit: Envoy's reply, no x-ratelimit-* headers. */
  readonly envoy?: EnvoyReplyStyle;
}

export interface RateLimitBinding {
  readonly rule: RateLimitRule;
  /** A Gateway target's host inside a wildcard virtual host: the request's host must equal it. */
  readonly onlyHost?: string;
}

export interface RateLimitTable {
  /** Every rule bound to at least one route. */
  readonly rules: readonly RateLimitRule[];
  lookup(virtualHost: VirtualHost, route: CompiledRoute): readonly RateLimitBinding[] | undefined;
  /**
   * A sidecar's inbound side, which has no route table: the EnvoyFilter limits of requests reaching
   * the app on `ports` (its own port, and the inbound port callers dial).
   */
  inbound(ports: readonly number[]): readonly RateLimitBinding[] | undefined;
  /** The rules of the inbound side, whatever its ports (their bucket names the port). */
  readonly inboundRules: readonly RateLimitRule[];
}

export const NO_RATE_LIMITS: RateLimitTable = Object.freeze({ rules: [], lookup: () => undefined, inbound: () => undefined, inboundRules: [] });

export interface RateLimitCompileInput {
  readonly policies: readonly Resource<RateLimitPolicySpec>[];
  readonly virtualServices: readonly Resource<VirtualServiceSpec>[];
  readonly gateways: readonly Resource<GatewaySpec>[];
  readonly listeners: ReadonlyMap<number, Listener>;
  readonly routeConfigs: ReadonlyMap<string, RouteConfig>;
  /** EnvoyFilters, with the proxy they are compiled for and the mesh's root namespace. */
  readonly envoyFilters?: readonly Resource[];
  readonly role?: ProxyRole;
  readonly rootNamespace?: string;
  /** A sidecar's: the service ports its workload is published on through `ports` (registry/workload-port-protocol.ts). */
  readonly servicePorts?: (ports: readonly number[]) => ReadonlySet<number>;
}

export function compileRateLimits(input: RateLimitCompileInput): { table: RateLimitTable; problems: Problem[] } {
  const problems: Problem[] = [];
  const envoyFilters = input.role ? (input.envoyFilters ?? []) : [];
  if (input.policies.length === 0 && envoyFilters.length === 0) return { table: NO_RATE_LIMITS, problems };
  const byVhost = new Map<VirtualHost, Map<CompiledRoute, RateLimitBinding[]>>();
  const used = new Set<RateLimitRule>();
  const bind = (vhost: VirtualHost, route: CompiledRoute, rules: readonly RateLimitRule[], onlyHost?: string): void => {
    const routes = byVhost.get(vhost) ?? new Map<CompiledRoute, RateLimitBinding[]>();
    byVhost.set(vhost, routes);
    const list = routes.get(route) ?? [];
    routes.set(route, list);
    for (const rule of rules) {
      if (list.some((b) => b.rule === rule)) continue;
      list.push(onlyHost === undefined ? { rule } : { rule, onlyHost });
      used.add(rule);
    }
  };
  for (const policy of input.policies) {
    try {
      const rules = rulesOf(policy);
      const ref = policy.spec.targetRef;
      if (ref.kind === 'VirtualService') bindVirtualService(policy, rules, input, bind, problems);
      else if (ref.kind === 'HTTPRoute') bindHttpRoute(policy, rules, input, bind, problems);
      else bindGateway(policy, rules, input, bind, problems);
    } catch (err) {
      // A bug here must not cost the gateway its configuration: report it against the policy.
      problems.push(problemAt(policy, ['spec'], `internal error while compiling: ${(err as Error).message}`));
    }
  }
  const inbound: InboundBinding[] = [];
  if (input.role && envoyFilters.length > 0) {
    // A gateway's virtual hosts are named by the Gateway server's port (`bookinfo.com:80`), whatever port it listens on.
    const serverPorts = new Map<string, number>();
    for (const l of input.listeners.values()) for (const server of l.servers) if (server.routeConfig) serverPorts.set(server.routeConfig, server.port);
    bindEnvoyFilterLimits({ filters: envoyFilters, role: input.role, rootNamespace: input.rootNamespace ?? 'istio-system', routeConfigs: input.routeConfigs, serverPorts }, bind, inbound, problems);
    for (const b of inbound) used.add(b.binding.rule);
  }
  const table: RateLimitTable = {
    rules: [...used],
    lookup: (vhost, route) => byVhost.get(vhost)?.get(route),
    inbound: inbound.length === 0 ? () => undefined : inboundLookup(inbound, input.servicePorts ?? (() => new Set())),
    inboundRules: inbound.map((b) => b.binding.rule),
  };
  return { table, problems };
}

/**
 * The inbound bindings for the ports of one app, worked out on its first request and kept for the
 * snapshot. A patch names a port as Istio's inbound virtual host does: the service port, which may
 * differ from the port the app listens on.
 */
function inboundLookup(inbound: readonly InboundBinding[], servicePorts: (ports: readonly number[]) => ReadonlySet<number>): (ports: readonly number[]) => readonly RateLimitBinding[] | undefined {
  const byPorts = new Map<string, readonly RateLimitBinding[] | undefined>();
  return (ports) => {
    const key = ports.join(',');
    if (byPorts.has(key)) return byPorts.get(key);
    const published = servicePorts(ports);
    const names = (p: number | undefined) => p !== undefined && (ports.includes(p) || published.has(p));
    const found = inbound.filter((b) => (b.port === undefined || names(b.port)) && ![...(b.exceptPorts ?? [])].some(names)).map((b) => b.binding);
    const list = found.length > 0 ? found : undefined;
    byPorts.set(key, list);
    return list;
  };
}

type Bind = (vhost: VirtualHost, route: CompiledRoute, rules: readonly RateLimitRule[], onlyHost?: string) => void;

function rulesOf(policy: Resource<RateLimitPolicySpec>): RateLimitRule[] {
  const ref = `${policy.metadata.namespace}/${policy.metadata.name}`;
  const store = policy.spec.store ?? 'memory';
  return policy.spec.limits.map((limit, i) => {
    const key: RateLimitKeyKind = limit.key.header ? { kind: 'header', name: limit.key.header.name.toLowerCase() } : limit.key.principal ? { kind: 'principal' } : { kind: 'clientIp' };
    const intervalSeconds = Math.round((parseDuration(limit.interval) ?? 0) / 1000);
    const burst = limit.burst ?? 0;
    const burstSeconds = burst > 0 ? burstWindowSeconds(limit.requests, intervalSeconds, burst) : 0;
    const keyText = key.kind === 'header' ? `header:${key.name}` : key.kind;
    return {
      id: `${ref}[${i}]`,
      policy: ref,
      key,
      requests: limit.requests,
      intervalSeconds,
      burst,
      burstSeconds,
      store,
      position: 'after-authz',
      settings: `${ref}[${i}] ${keyText} ${limit.requests}/${intervalSeconds}s burst ${burst}/${burstSeconds}s ${store}`,
    };
  });
}

/**
 * A token bucket refilling `requests` per interval earns `burst` tokens back in burst × interval /
 * requests; the reserve comes back after that long, and never sooner than one interval.
 */
export function burstWindowSeconds(requests: number, intervalSeconds: number, burst: number): number {
  return Math.max(intervalSeconds, Math.ceil((burst * intervalSeconds) / requests));
}

function bindVirtualService(policy: Resource<RateLimitPolicySpec>, rules: readonly RateLimitRule[], input: RateLimitCompileInput, bind: Bind, problems: Problem[]): void {
  const ref = policy.spec.targetRef as { kind: 'VirtualService'; name: string; route?: string };
  const ns = policy.metadata.namespace;
  const vs = input.virtualServices.find((v) => v.metadata.namespace === ns && v.metadata.name === ref.name);
  if (!vs) {
    problems.push(problemAt(policy, ['spec', 'targetRef', 'name'], `VirtualService ${ns}/${ref.name} does not exist; this policy limits nothing`, 'warning'));
    return;
  }
  const http = vs.spec.http ?? [];
  let wanted: Set<number> | undefined;
  if (ref.route !== undefined) {
    wanted = new Set(http.flatMap((r, i) => (r.name === ref.route ? [i] : [])));
    if (wanted.size === 0) {
      const names = http.map((r) => r.name).filter((n): n is string => !!n);
      const have = names.length > 0 ? `its http routes are named ${names.join(', ')}` : 'none of its http routes has a name';
      problems.push(problemAt(policy, ['spec', 'targetRef', 'route'], `VirtualService ${ns}/${ref.name} has no http route named ${JSON.stringify(ref.route)} (${have}); this policy limits nothing`, 'warning'));
      return;
    }
  }
  const source = `${ns}/${ref.name}`;
  for (const config of input.routeConfigs.values()) {
    for (const vhost of config.virtualHosts) {
      for (const route of vhost.routes) {
        if (route.source.virtualService !== source) continue;
        if (wanted && !wanted.has(route.source.httpIndex)) continue;
        bind(vhost, route, rules);
      }
    }
  }
}

/** A Gateway API HTTPRoute (or one named rule of it): every compiled route that came from it. */
function bindHttpRoute(policy: Resource<RateLimitPolicySpec>, rules: readonly RateLimitRule[], input: RateLimitCompileInput, bind: Bind, problems: Problem[]): void {
  const ref = policy.spec.targetRef as { kind: 'HTTPRoute'; name: string; route?: string };
  const source = `HTTPRoute ${policy.metadata.namespace}/${ref.name}`;
  let found = false;
  for (const config of input.routeConfigs.values()) {
    for (const vhost of config.virtualHosts) {
      for (const route of vhost.routes) {
        if (route.source.virtualService !== source) continue;
        found = true;
        if (ref.route === undefined || route.name === ref.route) bind(vhost, route, rules);
      }
    }
  }
  if (!found) problems.push(problemAt(policy, ['spec', 'targetRef', 'name'], `${source} is not served by this gateway (missing, or attached to no Gateway it serves); this policy limits nothing`, 'warning'));
}

function bindGateway(policy: Resource<RateLimitPolicySpec>, rules: readonly RateLimitRule[], input: RateLimitCompileInput, bind: Bind, problems: Problem[]): void {
  const ref = policy.spec.targetRef as { kind: 'Gateway'; name: string; host?: string };
  const ns = policy.metadata.namespace;
  const gatewayRef = `${ns}/${ref.name}`;
  const gateway = input.gateways.find((g) => g.metadata.namespace === ns && g.metadata.name === ref.name);
  if (!gateway) {
    problems.push(problemAt(policy, ['spec', 'targetRef', 'name'], `Gateway ${gatewayRef} does not exist; this policy limits nothing`, 'warning'));
    return;
  }
  const host = ref.host?.toLowerCase();
  if (host !== undefined) {
    const declared = gateway.spec.servers.flatMap((s) => s.hosts.map((h) => h.slice(h.indexOf('/') + 1).toLowerCase()));
    if (!declared.some((h) => hostSubsetOf(host, h))) {
      problems.push(problemAt(policy, ['spec', 'targetRef', 'host'], `Gateway ${gatewayRef} serves no host ${host} (its hosts are ${declared.join(', ')}); this policy limits nothing`, 'warning'));
      return;
    }
  }
  // A Gateway that does not select this proxy has no servers here: nothing to bind, and nothing wrong.
  for (const listener of input.listeners.values()) {
    for (const server of listener.servers) {
      if (server.gateway !== gatewayRef || !server.routeConfig) continue;
      const config = input.routeConfigs.get(server.routeConfig);
      if (!config) continue;
      for (const vhost of config.virtualHosts) {
        // Plaintext servers of several Gateways share one route config; only this Gateway's hosts count.
        if (!server.hosts.some((h) => hostSubsetOf(vhost.domain, h))) continue;
        let onlyHost: string | undefined;
        if (host !== undefined) {
          if (vhost.domain === host) onlyHost = undefined;
          else if (hostSubsetOf(host, vhost.domain)) onlyHost = host;
          else continue;
        }
        for (const route of vhost.routes) bind(vhost, route, rules, onlyHost);
      }
    }
  }
}
