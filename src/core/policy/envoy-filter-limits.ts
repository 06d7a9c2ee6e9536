// EnvoyFilter local rate limits as RateLimitPolicy rules, so that they count in the same limiters
// (rate-limiters.ts) and refuse through the same pipeline stage (proxy/stages/rate-limit.ts).
//
// Envoy's local rate limit filter holds one token bucket per filter instance: one per HTTP connection
// manager it was inserted into (a gateway's route configuration, a sidecar's outbound port), shared
// by every request through it, and one per virtual host or route that has its own configuration
// (typed_per_filter_config), which then replaces the filter's for those requests. A bucket of
// `max_tokens`, refilled with `tokens_per_fill` every `fill_interval`, becomes a rule of
// min(tokens_per_fill, max_tokens) requests per fill_interval with the rest of max_tokens as burst.
// A sidecar's inbound side has no route table here: its rules are kept by port (the inbound virtual
// host is `inbound|http|<port>`, its one route `default`, as Istio names them).

import { Checker } from '../config/validate-common.js';
import type { Problem } from '../config/problem.js';
import { problemAt } from '../config/problem.js';
import type { Resource } from '../model/resource.js';
import { selectorMatches } from '../registry/labels.js';
import type { CompiledRoute, RouteConfig, VirtualHost } from '../routing/types.js';
import type { ProxyRole } from '../snapshot/snapshot.js';
import { readEnvoyFilter, type LimitFilterPatch, type LimitRoutePatch, type PatchContext } from './envoy-filter-patches.js';
import type { LocalRateLimitConfig } from './envoy-local-rate-limit.js';
import type { ChainPosition } from './envoy-filter-position.js';
import { burstWindowSeconds, type BucketScope, type RateLimitBinding, type RateLimitRule } from './rate-limit-table.js';

type Bind = (vhost: VirtualHost, route: CompiledRoute, rules: readonly RateLimitRule[]) => void;

/** Inbound rules and the port they are for (none: every inbound port). */
export interface InboundBinding {
  readonly binding: RateLimitBinding;
  readonly port?: number;
  /** Ports whose inbound route has a configuration of its own, which replaces this one there. */
  readonly exceptPorts?: ReadonlySet<number | undefined>;
}

export interface EnvoyFilterLimitsInput {
  readonly filters: readonly Resource[];
  readonly role: ProxyRole;
  readonly rootNamespace: string;
  readonly routeConfigs: ReadonlyMap<string, RouteConfig>;
  /** A gateway's route configs: the Gateway server port each serves (its virtual hosts are named by it). */
  readonly serverPorts?: ReadonlyMap<string, number>;
}

/** Whether an EnvoyFilter selects a proxy: its namespace (or the root namespace: all) and its selector or targetRefs. */
export function envoyFilterSelects(filter: Resource, proxy: { namespace: string; labels: Readonly<Record<string, string>>; gateways?: ReadonlySet<string> }, root: string): boolean {
  const ns = filter.metadata.namespace;
  const spec = filter.spec as { workloadSelector?: { labels?: Record<string, string> }; targetRefs?: Array<{ kind?: string; name?: string }> } | undefined;
  if (Array.isArray(spec?.targetRefs)) {
    // A Gateway API Gateway's pods carry its name in this label, as Istio deploys them.
    return spec.targetRefs.some((t) => t?.kind === 'Gateway' && (proxy.gateways?.has(`${ns}/${t.name}`) || (ns === proxy.namespace && proxy.labels['gateway.networking.k8s.io/gateway-name'] === t.name)));
  }
  if (ns !== proxy.namespace && ns !== root) return false;
  return selectorMatches(spec?.workloadSelector?.labels, proxy.labels);
}

export function bindEnvoyFilterLimits(input: EnvoyFilterLimitsInput, bind: Bind, inbound: InboundBinding[], problems: Problem[]): void {
  const { role } = input;
  for (const filter of input.filters) {
    if (!envoyFilterSelects(filter, { namespace: role.namespace, labels: role.labels, ...(role.kind === 'gateway' && role.gatewayNames ? { gateways: role.gatewayNames } : {}) }, input.rootNamespace)) continue;
    // Validation reported this reading's problems already; here only the outcome counts.
    const reading = readEnvoyFilter(new Checker(filter), (filter.spec ?? {}) as Record<string, unknown>);
    const contexts: readonly PatchContext[] = role.kind === 'gateway' ? ['GATEWAY', 'ANY'] : ['SIDECAR_OUTBOUND', 'ANY'];
    const ref = `${filter.metadata.namespace}/${filter.metadata.name}`;
    // A virtual host's or route's configuration is used by the filter the chain has: it counts where that filter is.
    const rule = (patch: LimitFilterPatch | LimitRoutePatch, scope: BucketScope, at: ChainPosition) => ruleOf(ref, patch.index, scope, patch.config, at);
    const inChain = (patch: LimitRoutePatch, ctxs: readonly PatchContext[]) => reading.filters.some((f) => ctxs.includes(f.context) && (patch.context === 'ANY' || f.context === 'ANY' || f.context === patch.context));
    // Gateway, or a sidecar's outbound side: every route config the patch's port matches.
    for (const [name, config] of input.routeConfigs) {
      const port = input.serverPorts?.get(name) ?? portOf(name);
      const filters = reading.filters.filter((f) => contexts.includes(f.context) && (f.portNumber === undefined || f.portNumber === port));
      const routes = reading.routes.filter((r) => contexts.includes(r.context) && inChain(r, contexts) && (r.portNumber === undefined || r.portNumber === port) && (r.routeConfigName === undefined || r.routeConfigName === name));
      if (filters.length === 0) continue;
      const shared = filters.flatMap((f) => rule(f, { routeConfig: name }, f.position) ?? []);
      const at = filters[0]!.position;
      for (const vhost of config.virtualHosts) {
        const vhostName = `${vhost.domain}:${port}`;
        const own = routes.filter((r) => r.vhostName === undefined || r.vhostName === vhostName);
        const vhostRules = own.filter((r) => r.level === 'VIRTUAL_HOST').flatMap((r) => rule(r, { routeConfig: name, virtualHost: vhostName }, at) ?? []);
        for (const route of vhost.routes) {
          const routeRules = own.filter((r) => r.level === 'HTTP_ROUTE' && (r.routeName === undefined || r.routeName === route.name) && actionMatches(r.action, route)).flatMap((r) => rule(r, { routeConfig: name, virtualHost: vhostName, route: route.name || String(vhost.routes.indexOf(route)) }, at) ?? []);
          // The most specific configuration replaces the others: route, then virtual host, then the filter's.
          const rules = routeRules.length > 0 ? routeRules : vhostRules.length > 0 ? vhostRules : shared;
          if (rules.length > 0) bind(vhost, route, rules);
        }
      }
    }
    if (role.kind === 'sidecar') bindInbound(reading.filters, reading.routes, rule, inbound);
    for (const r of reading.routes) {
      const ctxs: readonly PatchContext[] = r.context === 'ANY' ? ['ANY', 'GATEWAY', 'SIDECAR_INBOUND', 'SIDECAR_OUTBOUND'] : [r.context, 'ANY'];
      if (!inChain(r, ctxs)) problems.push(problemAt(filter, ['spec', 'configPatches', r.index], `no HTTP_FILTER patch of this EnvoyFilter inserts envoy.filters.http.local_ratelimit for context ${r.context}: this configuration limits nothing`, 'warning'));
    }
  }
}

/** The inbound side: the filter's bucket per patch (every port, or its portNumber), or the inbound route's own. */
function bindInbound(filters: readonly LimitFilterPatch[], routes: readonly LimitRoutePatch[], rule: (p: LimitFilterPatch | LimitRoutePatch, scope: BucketScope, at: ChainPosition) => RateLimitRule | undefined, inbound: InboundBinding[]): void {
  const inContext = (c: PatchContext) => c === 'SIDECAR_INBOUND' || c === 'ANY';
  const own = filters.filter((f) => inContext(f.context));
  if (own.length === 0) return;
  const perRoute = routes.filter((r) => inContext(r.context) && (r.routeName === undefined || r.routeName === 'default') && r.action !== 'REDIRECT' && r.action !== 'DIRECT_RESPONSE');
  const portOfRoute = (r: LimitRoutePatch): number | undefined => r.portNumber ?? (r.vhostName ? inboundVhostPort(r.vhostName) : undefined) ?? (r.routeConfigName ? inboundConfigPort(r.routeConfigName) : undefined);
  const overridden = new Set<number | undefined>();
  for (const r of perRoute) {
    if (r.vhostName !== undefined && inboundVhostPort(r.vhostName) === undefined) continue; // an outbound virtual host
    const port = portOfRoute(r);
    overridden.add(port);
    const made = rule(r, { inboundPort: port ?? '*' }, own[0]!.position);
    if (made) inbound.push({ binding: { rule: made }, ...(port !== undefined ? { port } : {}) });
  }
  // A route configuration for every port replaces the filter's everywhere; for one port, only there.
  if (overridden.has(undefined)) return;
  for (const f of own) {
    const made = rule(f, { inboundPort: f.portNumber ?? '*' }, f.position);
    if (made) inbound.push({ binding: { rule: made }, ...(f.portNumber !== undefined ? { port: f.portNumber } : {}), ...(overridden.size > 0 ? { exceptPorts: overridden } : {}) });
  }
}

function ruleOf(ref: string, index: number, scope: BucketScope, config: LocalRateLimitConfig, at: ChainPosition): RateLimitRule | undefined {
  const bucket = config.tokenBucket;
  // No bucket, or a filter enabled for no request: it limits nothing (Envoy's "disabled" filter).
  if (!bucket || config.enabled <= 0) return undefined;
  const requests = Math.min(bucket.tokensPerFill, bucket.maxTokens);
  const burst = Math.max(0, bucket.maxTokens - bucket.tokensPerFill);
  const intervalSeconds = bucket.fillIntervalMs / 1000;
  const burstSeconds = burst > 0 ? burstWindowSeconds(requests, intervalSeconds, burst) : 0;
  const key = config.perConnection ? ({ kind: 'connection' } as const) : ({ kind: 'proxy' } as const);
  const id = `EnvoyFilter ${ref} configPatches[${index}]`;
  return {
    id,
    policy: `EnvoyFilter ${ref}`,
    key,
    requests,
    intervalSeconds,
    burst,
    burstSeconds,
    store: 'memory',
    position: at.position,
    settings: `${id} ${bucketKey(scope)} ${key.kind} ${requests}/${intervalSeconds}s burst ${burst}/${burstSeconds}s`,
    envoy: { status: config.status, responseHeaders: config.responseHeaders, enabled: config.enabled, enforced: config.enforced, placement: at.placement, bucket: scope, tokenBucket: bucket, xRateLimitHeaders: config.xRateLimitHeaders },
  };
}

/** The bucket's name in a rule's settings: `http.80`, `http.80/<vhost>/<route>`, `inbound/9080`. */
function bucketKey(s: BucketScope): string {
  return s.inboundPort !== undefined ? `inbound/${s.inboundPort}` : [s.routeConfig, s.virtualHost, s.route].filter((p) => p !== undefined).join('/');
}

/** `http.80` → 80, `https.443.https.gw.ns` → 443, `9080` → 9080. */
function portOf(routeConfigName: string): number | undefined {
  const m = /^(?:https?\.)?(\d+)/.exec(routeConfigName);
  return m ? Number(m[1]) : undefined;
}

function inboundVhostPort(name: string): number | undefined {
  const m = /^inbound\|https?\|(\d+)$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

function inboundConfigPort(name: string): number | undefined {
  const m = /^inbound\|(\d+)\|/.exec(name);
  return m ? Number(m[1]) : undefined;
}

function actionMatches(action: LimitRoutePatch['action'], route: CompiledRoute): boolean {
  if (action === 'ANY') return true;
  const kind = route.action.kind;
  return action === 'ROUTE' ? kind === 'forward' : action === 'REDIRECT' ? kind === 'redirect' : kind === 'direct';
}
