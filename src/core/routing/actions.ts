// Compiles what an HTTPRoute does once matched: forward to weighted destinations (with rewrite,
// header rules, timeout, retry policy, fault injection and mirrors), redirect, or answer directly;
// any of them with the route's CORS policy. Everything is resolved here, once per snapshot, so the
// request path only reads numbers and predicates.

import type {
  CorsPolicy, Destination, HeaderOperations, HTTPFaultInjection, HTTPMatchRequest, HTTPRetry, HTTPRoute, HTTPRouteDestination, Percent,
} from '../model/istio.js';
import type { Cluster } from '../policy/types.js';
import { clusterName } from '../policy/types.js';
import { parseDuration } from '../config/duration.js';
import { resolveShortName } from '../registry/hostname.js';
import type { Registry } from '../registry/types.js';
import { GRPC_STATUS } from '../config/validate-route-policies.js';
import { compileRegex, compileStringMatch } from './string-match.js';
import { INVALID_BACKEND_HOST } from '../gateway-api/route-sources.js';
import type { CorsRules, DestinationTarget, FaultPolicy, HeaderRules, MirrorPolicy, PathRewrite, PerMillion, RetryPolicy, RouteAction } from './types.js';

export interface ActionContext {
  /** Namespace of the VirtualService (short names resolve in it). */
  readonly namespace: string;
  /** The listener's Gateway port: the default destination port when a service has several. */
  readonly listenerPort: number;
  readonly registry: Registry;
  readonly domain: string;
  cluster(host: string, port: number, subset: string): Cluster | undefined;
}

export const NO_HEADER_RULES: HeaderRules = Object.freeze({ set: [], add: [], remove: [] });

/** Istio's default when `retries` is unset: 2 attempts on connect failure / refused stream (docs/reference/routing.md). */
const DEFAULT_RETRY_ON = 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes';

export function compileAction(route: HTTPRoute, match: HTTPMatchRequest | undefined, ctx: ActionContext): RouteAction {
  // Istio attaches the CORS policy to a route whatever its action (TranslateRoute).
  const corsRules = compileCors(route.corsPolicy);
  const cors = corsRules ? { cors: corsRules } : {};
  if (route.redirect) {
    const r = route.redirect;
    return {
      kind: 'redirect',
      code: r.redirectCode ?? 301,
      ...(r.uri !== undefined ? { uri: r.uri } : {}),
      ...(r.prefixRewrite !== undefined ? { prefixRewrite: r.prefixRewrite, rewritePath: prefixRewrite(r.prefixRewrite, match) } : {}),
      ...(r.authority !== undefined ? { authority: r.authority } : {}),
      ...(r.scheme !== undefined ? { scheme: r.scheme } : {}),
      ...(r.port !== undefined ? { port: r.port } : {}),
      ...(r.derivePort !== undefined ? { derivePort: r.derivePort } : {}),
      responseHeaders: headerRules(route.headers?.response).rules,
      ...cors,
    };
  }
  if (route.directResponse) {
    const b = route.directResponse.body;
    const body = b?.string !== undefined ? Buffer.from(b.string) : b?.bytes !== undefined ? Buffer.from(b.bytes, 'base64') : undefined;
    return { kind: 'direct', status: route.directResponse.status, ...(body ? { body } : {}), responseHeaders: headerRules(route.headers?.response).rules, ...cors };
  }
  const routeReq = headerRules(route.headers?.request);
  const destinations = compileDestinations(route.route ?? [], ctx);
  const authority = route.rewrite?.authority ?? routeReq.authority;
  const rewritePath = compileRewrite(route, match);
  const fault = compileFault(route.fault);
  // Istio's ConvertPolicy(policy, consistentHash): a lone destination whose DestinationRule hashes
  // requests keeps retries on the hashed host (no previous-hosts predicate unless asked for).
  const hashed = (route.route?.length ?? 0) === 1 && typeof destinations[0]?.cluster?.policy.loadBalancer?.consistentHash === 'object';
  return {
    kind: 'forward',
    destinations,
    totalWeight: destinations.reduce((s, d) => s + d.weight, 0),
    ...(rewritePath ? { rewritePath } : {}),
    ...(authority !== undefined ? { authority } : {}),
    requestHeaders: routeReq.rules,
    responseHeaders: headerRules(route.headers?.response).rules,
    timeoutMs: route.timeout ? parseDuration(route.timeout) ?? 0 : 0,
    retry: compileRetry(route.retries, hashed),
    ...(fault ? { fault } : {}),
    mirrors: compileMirrors(route, ctx),
    ...cors,
  };
}

/**
 * Weighted destinations of an http, tls or tcp route. A lone destination takes all traffic whatever
 * its weight; with several, weight 0 ones are dropped.
 */
export function compileDestinations(dests: readonly HTTPRouteDestination[], ctx: ActionContext): DestinationTarget[] {
  const weighted = dests.length === 1 ? [{ ...dests[0]!, weight: 100 }] : dests.filter((d) => (d.weight ?? 0) > 0);
  return weighted.map((d): DestinationTarget => {
    const target = resolveDestination(d.destination, ctx);
    const req = headerRules(d.headers?.request);
    return {
      weight: d.weight ?? 0,
      ...target,
      cluster: ctx.cluster(target.host, target.port, target.subset),
      ...(target.host === INVALID_BACKEND_HOST ? { invalidBackend: true as const } : {}),
      requestHeaders: req.rules,
      responseHeaders: headerRules(d.headers?.response).rules,
      ...(req.authority !== undefined ? { authority: req.authority } : {}),
    };
  });
}

/** Host (short names resolved), port (explicit, else the service's only port, else the listener's), subset, cluster name. */
export function resolveDestination(d: Destination, ctx: ActionContext): { host: string; port: number; subset: string; clusterName: string } {
  const host = resolveShortName(d.host, ctx.namespace, ctx.domain).toLowerCase();
  const service = ctx.registry.lookup(host);
  let port = d.port?.number ?? 0;
  if (!port) port = service && service.ports.length === 1 ? service.ports[0]!.number : ctx.listenerPort;
  const subset = d.subset ?? '';
  return { host, port, subset, clusterName: clusterName(port, subset, host) };
}

/** `rewrite.uri` (or `rewrite.uriRegexRewrite`) for the upstream request. */
function compileRewrite(route: HTTPRoute, match: HTTPMatchRequest | undefined): PathRewrite | undefined {
  const rw = route.rewrite;
  if (!rw) return undefined;
  if (rw.uriRegexRewrite) {
    const re = compileRegex(rw.uriRegexRewrite.match);
    // Istio writes groups as \1; the RE2 port substitutes $1.
    const replacement = rw.uriRegexRewrite.rewrite.replace(/\\(\d)/g, '$$$1');
    return (path) => re.matcher(path).replaceAll(replacement);
  }
  return rw.uri === undefined ? undefined : prefixRewrite(rw.uri, match);
}

/**
 * Envoy's prefix_rewrite (`rewrite.uri`, `redirect.prefixRewrite`): with a prefix match only the
 * matched prefix is replaced (so prefix `/foo` + `/` makes `/foo/bar` into `//bar`, the classic
 * gotcha); exact and regex matches replace the whole path; a route without a uri match behaves as
 * prefix `/`.
 */
function prefixRewrite(to: string, match: HTTPMatchRequest | undefined): PathRewrite {
  const uri = match?.uri;
  if (uri?.exact !== undefined || uri?.regex !== undefined) return () => to;
  const prefixLength = uri?.prefix !== undefined ? uri.prefix.length : 1;
  return (path) => to + path.slice(prefixLength);
}

/** gRPC retry conditions and the grpc-status they retry (Envoy's x-envoy-retry-grpc-on). */
const GRPC_RETRY_ON: Readonly<Record<string, number>> = { cancelled: 1, 'deadline-exceeded': 4, 'resource-exhausted': 8, internal: 13, unavailable: 14 };

/**
 * Istio's ConvertPolicy: no `retries` gives the default policy; `retries` with `attempts` 0 (or
 * unset) turns retries off; bare status codes in `retryOn` become retriable status codes. Retries
 * avoid the hosts already tried unless the route hashes to one host (`consistentHash`), where only
 * an explicit `retryIgnorePreviousHosts: true` does.
 */
function compileRetry(r: HTTPRetry | undefined, consistentHash: boolean): RetryPolicy {
  // Most routes set no `retries`: they share one default policy (read-only), not three Sets each.
  if (!r) return consistentHash ? (DEFAULT_RETRY.hashed ??= retryPolicy(r, true)) : (DEFAULT_RETRY.spread ??= retryPolicy(r, false));
  return retryPolicy(r, consistentHash);
}

/** The policies of routes without `retries`, made on first use. */
const DEFAULT_RETRY: { hashed?: RetryPolicy; spread?: RetryPolicy } = {};

function retryPolicy(r: HTTPRetry | undefined, consistentHash: boolean): RetryPolicy {
  const attempts = r ? r.attempts ?? 0 : 2;
  const on = new Set<string>();
  const statusCodes = new Set<number>();
  const grpcStatuses = new Set<number>();
  for (const raw of (r?.retryOn || DEFAULT_RETRY_ON).split(',')) {
    const c = raw.trim();
    if (!c) continue;
    if (/^\d{3}$/.test(c)) {
      statusCodes.add(Number(c));
      on.add('retriable-status-codes');
    } else {
      on.add(c);
      const grpc = GRPC_RETRY_ON[c];
      if (grpc !== undefined) grpcStatuses.add(grpc);
    }
  }
  return {
    attempts: Math.max(0, attempts),
    perTryTimeoutMs: r?.perTryTimeout ? parseDuration(r.perTryTimeout) ?? 0 : 0,
    on,
    statusCodes,
    grpcStatuses,
    backoffBaseMs: (r?.backoff ? parseDuration(r.backoff) : undefined) || 25,
    avoidPreviousHosts: r?.retryIgnorePreviousHosts ?? !consistentHash,
  };
}

const MILLION = 1_000_000;

/** `percentage.value` (0–100, precision 0.0001) as a per-million chance. */
function perMillion(p: Percent | undefined): PerMillion {
  return Math.min(MILLION, Math.max(0, Math.round((p?.value ?? 0) * 10_000)));
}

/**
 * Istio's TranslateFault. A delay or abort without a percentage never fires (docs/reference/routing.md: the
 * default is 0 %), so it is left out; the deprecated whole-number `percent` of a delay still counts.
 */
function compileFault(f: HTTPFaultInjection | undefined): FaultPolicy | undefined {
  if (!f) return undefined;
  let delay: FaultPolicy['delay'];
  const d = f.delay;
  const delayMs = d?.fixedDelay ? parseDuration(d.fixedDelay) : undefined;
  if (d && delayMs !== undefined && delayMs > 0) {
    const chance = d.percentage !== undefined ? perMillion(d.percentage) : perMillion({ value: d.percent ?? 0 });
    if (chance > 0) delay = { ms: delayMs, chance };
  }
  let abort: FaultPolicy['abort'];
  const a = f.abort;
  const chance = perMillion(a?.percentage);
  if (a && chance > 0) {
    const grpc = a.grpcStatus !== undefined ? GRPC_STATUS.indexOf(a.grpcStatus) : -1;
    if (grpc >= 0) abort = { chance, httpStatus: 200, grpcStatus: grpc };
    else if (a.httpStatus !== undefined) abort = { chance, httpStatus: a.httpStatus };
  }
  if (!delay && !abort) return undefined;
  return { ...(delay ? { delay } : {}), ...(abort ? { abort } : {}) };
}

/**
 * Istio's MirrorPercent: `mirror` with `mirrorPercentage` (or the deprecated `mirrorPercent`), or
 * `mirrors[]` each with its `percentage`; an absent percentage means 100 %, an explicit 0 none.
 */
function compileMirrors(route: HTTPRoute, ctx: ActionContext): MirrorPolicy[] {
  const wanted: Array<{ destination: Destination; chance: PerMillion }> = [];
  if (route.mirrors && route.mirrors.length > 0) {
    for (const m of route.mirrors) wanted.push({ destination: m.destination, chance: m.percentage ? perMillion(m.percentage) : MILLION });
  } else if (route.mirror) {
    // `mirror_percent`: the old spelling Istio's schema still accepts.
    const legacy = route.mirrorPercent ?? (route as { mirror_percent?: number }).mirror_percent;
    const chance = route.mirrorPercentage ? perMillion(route.mirrorPercentage) : legacy !== undefined ? perMillion({ value: legacy }) : MILLION;
    wanted.push({ destination: route.mirror, chance });
  }
  return wanted
    .filter((m) => m.chance > 0)
    .map((m) => {
      const target = resolveDestination(m.destination, ctx);
      return { ...target, cluster: ctx.cluster(target.host, target.port, target.subset), chance: m.chance };
    });
}

/**
 * Istio's TranslateCORSPolicy: `allowOrigins` StringMatches (or the deprecated exact `allowOrigin`
 * list), list fields joined with `,`, maxAge in whole seconds, and unmatched preflights forwarded
 * unless `unmatchedPreflights: IGNORE`.
 */
function compileCors(p: CorsPolicy | undefined): CorsRules | undefined {
  if (!p) return undefined;
  const allowOrigins = p.allowOrigins ? p.allowOrigins.map((m) => compileStringMatch(m)) : (p.allowOrigin ?? []).map((o) => compileStringMatch({ exact: o }));
  const join = (l: readonly string[] | undefined): string | undefined => (l && l.length > 0 ? l.join(',') : undefined);
  const allowMethods = join(p.allowMethods);
  const allowHeaders = join(p.allowHeaders);
  const exposeHeaders = join(p.exposeHeaders);
  const maxAgeMs = p.maxAge ? parseDuration(p.maxAge) : undefined;
  return {
    allowOrigins,
    ...(allowMethods ? { allowMethods } : {}),
    ...(allowHeaders ? { allowHeaders } : {}),
    ...(exposeHeaders ? { exposeHeaders } : {}),
    ...(maxAgeMs !== undefined ? { maxAge: String(Math.floor(maxAgeMs / 1000)) } : {}),
    allowCredentials: p.allowCredentials === true,
    forwardUnmatchedPreflights: p.unmatchedPreflights !== 'IGNORE',
  };
}

/**
 * Header operations with names lower-cased; `:`-prefixed names are dropped, and `host`/`:authority`
 * in set/add turn into an authority rewrite as Istio does.
 */
export function headerRules(ops: HeaderOperations | undefined): { rules: HeaderRules; authority?: string } {
  if (!ops) return { rules: NO_HEADER_RULES };
  let authority: string | undefined;
  const pairs = (m: Readonly<Record<string, string>> | undefined): Array<readonly [string, string]> => {
    const out: Array<readonly [string, string]> = [];
    for (const [k, v] of Object.entries(m ?? {})) {
      const name = k.toLowerCase();
      if (name === 'host' || name === ':authority') authority = String(v);
      else if (!name.startsWith(':')) out.push([name, String(v)]);
    }
    return out;
  };
  const set = pairs(ops.set);
  const add = pairs(ops.add);
  const remove = (ops.remove ?? []).map((n) => n.toLowerCase()).filter((n) => !n.startsWith(':') && n !== 'host');
  return { rules: { set, add, remove }, ...(authority !== undefined ? { authority } : {}) };
}
