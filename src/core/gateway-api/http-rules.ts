// One HTTPRoute or GRPCRoute rule → VirtualService http entries, one per match (each sorted on its
// own, see precedence.ts). Where the Gateway API means something a VirtualService field says
// differently, the translation writes what the Gateway API means:
// - PathPrefix matches whole path elements: `/foo` becomes exact `/foo` plus prefix `/foo/`.
// - ReplacePrefixMatch keeps the element boundary: `/foo` → `/bar` turns `/foo/x` into `/bar/x`.
// - ReplaceFullPath replaces the whole path whatever the match.
// - A redirect without port or scheme keeps the listener's port (mesh: the request's); with a scheme, its default port.
// - A rule with no usable backend (none, all weight 0, or all invalid) answers 500.

import type { BackendRef, GRPCRouteMatch, HeaderModifier, HTTPRouteFilter, HTTPRouteMatch, PathModifier, RouteKind, ValueMatch } from '../model/gateway-api.js';
import type { HTTPMatchRequest, HTTPRoute, HTTPRouteDestination, HeaderOperations, StringMatch } from '../model/istio.js';
import { resolveBackend, type BackendContext } from './backends.js';
import type { Condition } from './conditions.js';
import { condition } from './conditions.js';
import { INVALID_BACKEND_HOST } from './route-sources.js';

/** Sort facts of one match (precedence.ts). */
export interface MatchRank {
  /** Exact 3, PathPrefix 2, RegularExpression 1. */
  readonly pathRank: number;
  readonly pathLength: number;
  readonly method: boolean;
  readonly headers: number;
  readonly query: number;
}

export interface HttpEntry {
  readonly rank: MatchRank;
  readonly ruleIndex: number;
  /** -1 when the rule has no matches. */
  readonly matchIndex: number;
  /** VirtualService http entries for this match (two for a PathPrefix other than `/`). */
  readonly http: readonly HTTPRoute[];
}

export interface RuleInput {
  readonly kind: RouteKind;
  readonly ruleIndex: number;
  readonly name?: string;
  readonly matches: ReadonlyArray<HTTPRouteMatch | GRPCRouteMatch>;
  readonly filters: readonly HTTPRouteFilter[];
  readonly backendRefs: readonly BackendRef[];
  readonly timeouts?: { readonly request?: string; readonly backendRequest?: string };
}

/** A rule's action, computed once per rule: the parts of a VirtualService entry that do not depend on the match. */
export interface RuleAction {
  readonly base: Omit<HTTPRoute, 'match' | 'rewrite'>;
  readonly redirect?: NonNullable<HTTPRouteFilter['requestRedirect']>;
  readonly rewrite?: NonNullable<HTTPRouteFilter['urlRewrite']>;
  /** ResolvedRefs False conditions found in its backendRefs. */
  readonly refProblems: readonly Condition[];
}

export function ruleAction(rule: RuleInput, ctx: BackendContext): RuleAction {
  const refProblems: Condition[] = [];
  const destination = (ref: BackendRef): { host: string; port: number } | undefined => {
    const r = resolveBackend(ref, ctx);
    if (r.ok) return r;
    refProblems.push(condition('ResolvedRefs', false, r.reason, r.message));
    return undefined;
  };
  const request = mergeHeaders(rule.filters.filter((f) => f.type === 'RequestHeaderModifier').map((f) => f.requestHeaderModifier));
  const response = mergeHeaders(rule.filters.filter((f) => f.type === 'ResponseHeaderModifier').map((f) => f.responseHeaderModifier));
  const headers = request || response ? { headers: { ...(request ? { request } : {}), ...(response ? { response } : {}) } } : {};
  const mirrors = rule.filters
    .filter((f) => f.type === 'RequestMirror' && f.requestMirror)
    .flatMap((f) => {
      const m = f.requestMirror!;
      const d = destination(m.backendRef);
      if (!d) return [];
      const pct = m.percent ?? (m.fraction ? (100 * m.fraction.numerator) / (m.fraction.denominator ?? 100) : 100);
      return [{ destination: { host: d.host, port: { number: d.port } }, percentage: { value: pct } }];
    });
  const redirect = rule.filters.find((f) => f.type === 'RequestRedirect')?.requestRedirect;
  const rewrite = rule.filters.find((f) => f.type === 'URLRewrite')?.urlRewrite;
  const timeouts = rule.timeouts;
  const timing = {
    ...(timeouts?.request ? { timeout: timeouts.request } : {}),
    ...(timeouts?.backendRequest ? { retries: { attempts: 2, perTryTimeout: timeouts.backendRequest, retryOn: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes' } } : {}),
  };
  const named = rule.name ? { name: rule.name } : {};
  if (redirect) return { base: { ...named, ...headers }, redirect, refProblems };

  const dests: HTTPRouteDestination[] = [];
  let valid = 0;
  let invalid = 0;
  for (const ref of rule.backendRefs) {
    const d = destination(ref);
    const weight = ref.weight ?? 1;
    if (weight <= 0) continue;
    if (!d) {
      invalid += weight;
      continue;
    }
    valid += weight;
    const req = mergeHeaders((ref.filters ?? []).filter((f) => f.type === 'RequestHeaderModifier').map((f) => f.requestHeaderModifier));
    const res = mergeHeaders((ref.filters ?? []).filter((f) => f.type === 'ResponseHeaderModifier').map((f) => f.responseHeaderModifier));
    dests.push({
      destination: { host: d.host, port: { number: d.port } },
      weight,
      ...(req || res ? { headers: { ...(req ? { request: req } : {}), ...(res ? { response: res } : {}) } } : {}),
    });
  }
  if (valid === 0) return { base: { ...named, ...headers, directResponse: { status: 500 } }, refProblems };
  // The share meant for invalid backends must still fail (500) rather than go elsewhere.
  const route = invalid > 0 ? [...dests, { destination: { host: INVALID_BACKEND_HOST }, weight: invalid }] : dests;
  return {
    base: { ...named, ...headers, ...timing, route, ...(mirrors.length > 0 ? { mirrors } : {}) },
    ...(rewrite ? { rewrite } : {}),
    refProblems,
  };
}

/**
 * The entries of one rule as a listener on `listenerPort` serves them; undefined for mesh traffic,
 * where a redirect without port keeps the port the request was sent to.
 */
export function ruleEntries(rule: RuleInput, action: RuleAction, listenerPort: number | undefined): HttpEntry[] {
  const matches = rule.matches.length > 0 ? rule.matches : [undefined];
  return matches.map((m, k) => {
    const translated = rule.kind === 'GRPCRoute' ? grpcMatch(m as GRPCRouteMatch | undefined) : httpMatch(m as HTTPRouteMatch | undefined);
    const http = translated.variants.map((v) => entryFor(action, v, listenerPort));
    return { rank: translated.rank, ruleIndex: rule.ruleIndex, matchIndex: m ? k : -1, http };
  });
}

/** One VirtualService match, and how to rewrite a path it matched for ReplacePrefixMatch. */
interface Variant {
  readonly match: HTTPMatchRequest;
  /** ReplacePrefixMatch `r` → the prefix rewrite for this variant. */
  prefixTo(r: string): string;
  readonly exactPath: boolean;
}

function entryFor(action: RuleAction, v: Variant, listenerPort: number | undefined): HTTPRoute {
  const out: { -readonly [K in keyof HTTPRoute]: HTTPRoute[K] } = { ...action.base, match: [v.match] };
  if (action.redirect) out.redirect = redirectFor(action.redirect, v, listenerPort);
  if (action.rewrite && !out.directResponse) {
    const rw = action.rewrite;
    const path = rw.path ? pathRewrite(rw.path, v) : {};
    out.rewrite = { ...(rw.hostname ? { authority: rw.hostname } : {}), ...path };
  }
  return out;
}

function pathRewrite(p: PathModifier, v: Variant): { uri?: string; uriRegexRewrite?: { match: string; rewrite: string } } {
  if (p.type === 'ReplaceFullPath') {
    const to = p.replaceFullPath ?? '/';
    return v.exactPath ? { uri: to } : { uriRegexRewrite: { match: '^/.*$', rewrite: to } };
  }
  return { uri: v.prefixTo(p.replacePrefixMatch ?? '/') };
}

function redirectFor(r: NonNullable<HTTPRouteFilter['requestRedirect']>, v: Variant, listenerPort: number | undefined): NonNullable<HTTPRoute['redirect']> {
  const path = r.path;
  return {
    redirectCode: r.statusCode ?? 302,
    ...(r.scheme ? { scheme: r.scheme } : {}),
    ...(r.hostname ? { authority: r.hostname } : {}),
    ...(r.port !== undefined ? { port: r.port } : r.scheme ? { derivePort: 'FROM_PROTOCOL_DEFAULT' as const } : listenerPort !== undefined ? { port: listenerPort } : {}),
    ...(path?.type === 'ReplaceFullPath' ? { uri: path.replaceFullPath ?? '/' } : {}),
    ...(path?.type === 'ReplacePrefixMatch' ? { prefixRewrite: v.prefixTo(path.replacePrefixMatch ?? '/') } : {}),
  };
}

function httpMatch(m: HTTPRouteMatch | undefined): { rank: MatchRank; variants: Variant[] } {
  const common: HTTPMatchRequest = {
    ...(m?.method ? { method: { exact: m.method } } : {}),
    ...(m?.headers?.length ? { headers: valueMatches(m.headers, true) } : {}),
    ...(m?.queryParams?.length ? { queryParams: valueMatches(m.queryParams, false) } : {}),
  };
  const rest = { method: m?.method !== undefined, headers: Object.keys(common.headers ?? {}).length, query: Object.keys(common.queryParams ?? {}).length };
  const type = m?.path?.type ?? 'PathPrefix';
  const value = m?.path?.value ?? '/';
  if (type === 'Exact') {
    return { rank: { pathRank: 3, pathLength: value.length, ...rest }, variants: [{ match: { ...common, uri: { exact: value } }, prefixTo: (r) => r, exactPath: true }] };
  }
  if (type === 'RegularExpression') {
    return { rank: { pathRank: 1, pathLength: value.length, ...rest }, variants: [{ match: { ...common, uri: { regex: value } }, prefixTo: (r) => r, exactPath: false }] };
  }
  const prefix = value.replace(/\/+$/, '');
  const withSlash = (r: string): string => (r.endsWith('/') ? r : `${r}/`);
  const rank = { pathRank: 2, pathLength: prefix.length, ...rest };
  if (prefix === '') return { rank, variants: [{ match: { ...common, uri: { prefix: '/' } }, prefixTo: withSlash, exactPath: false }] };
  return {
    rank,
    variants: [
      { match: { ...common, uri: { exact: prefix } }, prefixTo: (r) => r, exactPath: true },
      { match: { ...common, uri: { prefix: `${prefix}/` } }, prefixTo: withSlash, exactPath: false },
    ],
  };
}

/** gRPC methods are paths: `/<service>/<method>`. */
function grpcMatch(m: GRPCRouteMatch | undefined): { rank: MatchRank; variants: Variant[] } {
  const headers = m?.headers?.length ? { headers: valueMatches(m.headers, true) } : {};
  const rest = { method: false, headers: Object.keys(headers.headers ?? {}).length, query: 0 };
  const method = m?.method;
  let uri: StringMatch = { prefix: '/' };
  let pathRank = 2;
  if (method && (method.type ?? 'Exact') === 'Exact') {
    if (method.service && method.method) [uri, pathRank] = [{ exact: `/${method.service}/${method.method}` }, 3];
    else if (method.service) uri = { prefix: `/${method.service}/` };
    else if (method.method) [uri, pathRank] = [{ regex: `/[^/]+/${escapeRegex(method.method)}` }, 1];
  } else if (method) {
    [uri, pathRank] = [{ regex: `/${method.service ?? '[^/]+'}/${method.method ?? '[^/]+'}` }, 1];
  }
  const length = uri.exact?.length ?? uri.prefix?.length ?? uri.regex?.length ?? 0;
  return { rank: { pathRank, pathLength: length, ...rest }, variants: [{ match: { ...headers, uri }, prefixTo: (r) => r, exactPath: uri.exact !== undefined }] };
}

/** Header names are case-insensitive (lower-cased); a name given twice counts once, the first time. */
function valueMatches(list: readonly ValueMatch[], lower: boolean): Record<string, StringMatch> {
  const out: Record<string, StringMatch> = {};
  for (const v of list) {
    const name = lower ? v.name.toLowerCase() : v.name;
    if (name in out) continue;
    out[name] = (v.type ?? 'Exact') === 'RegularExpression' ? { regex: v.value } : { exact: v.value };
  }
  return out;
}

function mergeHeaders(mods: ReadonlyArray<HeaderModifier | undefined>): HeaderOperations | undefined {
  const set: Record<string, string> = {};
  const add: Record<string, string> = {};
  const remove: string[] = [];
  for (const m of mods) {
    for (const h of m?.set ?? []) set[h.name.toLowerCase()] = h.value;
    for (const h of m?.add ?? []) add[h.name.toLowerCase()] = h.value;
    remove.push(...(m?.remove ?? []).map((n) => n.toLowerCase()));
  }
  if (Object.keys(set).length + Object.keys(add).length + remove.length === 0) return undefined;
  return { ...(Object.keys(set).length ? { set } : {}), ...(Object.keys(add).length ? { add } : {}), ...(remove.length ? { remove } : {}) };
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
