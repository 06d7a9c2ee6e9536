// Compiles what an HTTPRoute does once matched: forward to weighted destinations (with rewrite,
// header rules, timeout and retry policy), redirect, or answer directly.

import type { Destination, HeaderOperations, HTTPMatchRequest, HTTPRetry, HTTPRoute, HTTPRouteDestination } from '../model/istio.js';
import type { Cluster } from '../policy/types.js';
import { clusterName } from '../policy/types.js';
import { parseDuration } from '../config/duration.js';
import { resolveShortName } from '../registry/hostname.js';
import type { Registry } from '../registry/types.js';
import { compileRegex } from './string-match.js';
import type { DestinationTarget, HeaderRules, PathRewrite, RetryPolicy, RouteAction } from './types.js';

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

/** Istio's default when `retries` is unset: 2 attempts on connect failure / refused stream (SEMANTICS §2.4). */
const DEFAULT_RETRY_ON = 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes';

export function compileAction(route: HTTPRoute, match: HTTPMatchRequest | undefined, ctx: ActionContext): RouteAction {
  if (route.redirect) {
    const r = route.redirect;
    return {
      kind: 'redirect',
      code: r.redirectCode ?? 301,
      ...(r.uri !== undefined ? { uri: r.uri } : {}),
      ...(r.authority !== undefined ? { authority: r.authority } : {}),
      ...(r.scheme !== undefined ? { scheme: r.scheme } : {}),
      ...(r.port !== undefined ? { port: r.port } : {}),
      ...(r.derivePort !== undefined ? { derivePort: r.derivePort } : {}),
      responseHeaders: headerRules(route.headers?.response).rules,
    };
  }
  if (route.directResponse) {
    const b = route.directResponse.body;
    const body = b?.string !== undefined ? Buffer.from(b.string) : b?.bytes !== undefined ? Buffer.from(b.bytes, 'base64') : undefined;
    return { kind: 'direct', status: route.directResponse.status, ...(body ? { body } : {}), responseHeaders: headerRules(route.headers?.response).rules };
  }
  const routeReq = headerRules(route.headers?.request);
  const destinations = compileDestinations(route.route ?? [], ctx);
  const authority = route.rewrite?.authority ?? routeReq.authority;
  const rewritePath = compileRewrite(route, match);
  return {
    kind: 'forward',
    destinations,
    totalWeight: destinations.reduce((s, d) => s + d.weight, 0),
    ...(rewritePath ? { rewritePath } : {}),
    ...(authority !== undefined ? { authority } : {}),
    requestHeaders: routeReq.rules,
    responseHeaders: headerRules(route.headers?.response).rules,
    timeoutMs: route.timeout ? parseDuration(route.timeout) ?? 0 : 0,
    retry: compileRetry(route.retries),
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

/**
 * `rewrite.uri` is Envoy's prefix_rewrite: with a prefix match only the matched prefix is replaced
 * (so prefix `/foo` + rewrite `/` makes `/foo/bar` into `//bar`, the classic gotcha); exact and regex
 * matches replace the whole path; a route without a uri match behaves as prefix `/`.
 */
function compileRewrite(route: HTTPRoute, match: HTTPMatchRequest | undefined): PathRewrite | undefined {
  const rw = route.rewrite;
  if (!rw) return undefined;
  if (rw.uriRegexRewrite) {
    const re = compileRegex(rw.uriRegexRewrite.match);
    // Istio writes groups as \1; the RE2 port substitutes $1.
    const replacement = rw.uriRegexRewrite.rewrite.replace(/\\(\d)/g, '$$$1');
    return (path) => re.matcher(path).replaceAll(replacement);
  }
  if (rw.uri === undefined) return undefined;
  const to = rw.uri;
  const uri = match?.uri;
  if (uri?.exact !== undefined || uri?.regex !== undefined) return () => to;
  const prefixLength = uri?.prefix !== undefined ? uri.prefix.length : 1;
  return (path) => to + path.slice(prefixLength);
}

function compileRetry(r: HTTPRetry | undefined): RetryPolicy {
  const attempts = r ? r.attempts ?? 2 : 2;
  const on = new Set<string>();
  const statusCodes = new Set<number>();
  for (const raw of (r?.retryOn || DEFAULT_RETRY_ON).split(',')) {
    const c = raw.trim();
    if (!c) continue;
    if (/^\d{3}$/.test(c)) {
      statusCodes.add(Number(c));
      on.add('retriable-status-codes');
    } else on.add(c);
  }
  return {
    attempts: Math.max(0, attempts),
    perTryTimeoutMs: r?.perTryTimeout ? parseDuration(r.perTryTimeout) ?? 0 : 0,
    on,
    statusCodes,
    backoffBaseMs: 25,
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
