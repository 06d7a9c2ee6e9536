// Validation of the route pieces a VirtualService is made of: HTTP routes and their matches,
// actions (route | redirect | directResponse | delegate), the conflicts between them, rewrites,
// mirrors, header operations, and the destinations and gateway names that tls/tcp routes share
// (docs/reference/routing.md). Retries, faults and CORS are in validate-route-policies.ts.

import type { FieldPath } from '../model/resource.js';
import {
  Checker, asBool, asEnum, asInt, asObj, asString, atMostOne, checkDuration, checkLabels, checkPercent, checkPort,
  eachObj, hostProblem, isDnsLabel, isHeaderName, isObj, isSet, knownFields, stringList, type Obj,
} from './validate-common.js';
import { resolveGatewayName } from '../routing/gateway-binding.js';
import { checkCors, checkFault, checkRetries } from './validate-route-policies.js';
import { checkStringMatch, regexProblem } from './validate-string-match.js';

export interface RouteContext {
  /** The VirtualService has no hosts: it is a delegate, filled in by a root's `delegate`. */
  readonly inDelegate: boolean;
  /** gateways are listed and `mesh` is not among them. */
  readonly gatewayOnly: boolean;
  /** The top-level gateways, resolved to `ns/name` (or `mesh`): a match's `gateways` can only narrow them. */
  readonly gateways: ReadonlySet<string>;
}

const HTTP_ROUTE_FIELDS = [
  'name', 'match', 'route', 'redirect', 'directResponse', 'delegate', 'rewrite', 'timeout', 'retries', 'fault',
  'mirror', 'mirrors', 'mirrorPercentage', 'mirrorPercent', 'mirror_percent', 'corsPolicy', 'headers',
];
const MATCH_FIELDS = [
  'name', 'uri', 'scheme', 'method', 'authority', 'headers', 'port', 'sourceLabels', 'gateways', 'queryParams',
  'ignoreUriCase', 'withoutHeaders', 'sourceNamespace', 'statPrefix',
];
const REDIRECT_CODES = [301, 302, 303, 307, 308];
const PSEUDO_HEADERS = new Set([':method', ':scheme', ':authority', ':path', ':status']);
const JWT_CLAIM = /^@request\.auth\.claims(\.[^.[\]]+)+$|^@request\.auth\.claims(\[[^[\]]+\])+$/;
const KB = 1024;

export function validateHttpRoute(c: Checker, route: Obj, at: FieldPath, ctx: RouteContext): void {
  knownFields(c, route, at, HTTP_ROUTE_FIELDS);
  asString(c, route.name, [...at, 'name']);
  checkRouteConflicts(c, route, at, ctx);
  eachObj(c, route.match, [...at, 'match'], (m, mAt) => checkHttpMatch(c, m, mAt, ctx));
  checkDestinations(c, route.route, [...at, 'route'], true);
  checkRedirect(c, route.redirect, [...at, 'redirect']);
  checkRedirectPrefix(c, route, at);
  checkDirectResponse(c, route.directResponse, [...at, 'directResponse']);
  checkDelegate(c, route.delegate, [...at, 'delegate']);
  const rewriteAuthority = checkRewrite(c, route.rewrite, [...at, 'rewrite']);
  checkDuration(c, route.timeout, [...at, 'timeout']);
  checkRetries(c, route.retries, [...at, 'retries']);
  checkFault(c, route.fault, [...at, 'fault']);
  checkDestination(c, route.mirror, [...at, 'mirror']);
  checkPercent(c, route.mirrorPercentage, [...at, 'mirrorPercentage']);
  for (const f of ['mirrorPercentage', 'mirrorPercent', 'mirror_percent']) {
    if (isSet(route[f]) && !isSet(route.mirror)) c.warn([...at, f], `${f} applies only to mirror; it does nothing here${isSet(route.mirrors) ? ' (use mirrors[].percentage)' : ''}`);
  }
  // `mirror_percent` is the old spelling of mirrorPercent that Istio's schema still lists.
  for (const f of ['mirrorPercent', 'mirror_percent']) {
    if (!isSet(route[f])) continue;
    asInt(c, route[f], [...at, f], 0, 100);
    c.warn([...at, f], `${f} is deprecated; use mirrorPercentage: {value: N}`);
  }
  eachObj(c, route.mirrors, [...at, 'mirrors'], (m, mAt) => {
    knownFields(c, m, mAt, ['destination', 'percentage']);
    if (!isSet(m.destination)) c.error([...mAt, 'destination'], 'destination is required');
    checkDestination(c, m.destination, [...mAt, 'destination']);
    checkPercent(c, m.percentage, [...mAt, 'percentage']);
  });
  checkCors(c, route.corsPolicy, [...at, 'corsPolicy']);
  const authorities = checkHeaderOperations(c, route.headers, [...at, 'headers']);
  // Authority may be rewritten in one place only (rewrite.authority, or a host/:authority header).
  const all = [...(rewriteAuthority ? [[...at, 'rewrite', 'authority']] : []), ...authorities];
  for (const extra of all.slice(1)) c.error(extra, 'authority is already rewritten elsewhere in this route; set it in one place only');
}

function checkRouteConflicts(c: Checker, route: Obj, at: FieldPath, ctx: RouteContext): void {
  const has = (f: string): boolean => isSet(route[f]);
  const hasRoute = Array.isArray(route.route) ? route.route.length > 0 : has('route');
  if (has('delegate') && !ctx.inDelegate) {
    // A root route only points at its delegate; the delegate supplies the action.
    if (hasRoute) c.error([...at, 'route'], 'a route with delegate must not also have route');
    if (has('redirect')) c.error([...at, 'redirect'], 'a route with delegate must not also have redirect');
    return;
  }
  if (has('delegate')) c.error([...at, 'delegate'], 'a delegate VirtualService cannot delegate again (one level only)');
  if (has('mirror') && Array.isArray(route.mirrors) && route.mirrors.length > 0) c.error([...at, 'mirrors'], 'mirror and mirrors cannot both be set; use mirrors');
  if (has('redirect')) {
    if (hasRoute) c.error([...at, 'redirect'], 'redirect cannot be combined with route');
    if (has('directResponse')) c.error([...at, 'directResponse'], 'directResponse cannot be combined with redirect');
    if (has('fault')) c.error([...at, 'fault'], 'fault cannot be combined with redirect');
    if (has('rewrite')) c.error([...at, 'rewrite'], 'rewrite cannot be combined with redirect');
  } else if (has('directResponse')) {
    if (hasRoute) c.error([...at, 'directResponse'], 'directResponse cannot be combined with route');
    if (has('fault')) c.error([...at, 'fault'], 'fault cannot be combined with directResponse');
    if (has('rewrite')) c.error([...at, 'rewrite'], 'rewrite cannot be combined with directResponse');
  } else if (!hasRoute) {
    c.error(at, 'needs one of route, redirect or directResponse');
  }
}

function checkHttpMatch(c: Checker, m: Obj, at: FieldPath, ctx: RouteContext): void {
  knownFields(c, m, at, MATCH_FIELDS);
  for (const f of ['name', 'statPrefix']) asString(c, m[f], [...at, f]);
  checkStringMatch(c, m.uri, [...at, 'uri'], 'uri');
  for (const f of ['scheme', 'method', 'authority']) checkStringMatch(c, m[f], [...at, f], 'field');
  for (const f of ['headers', 'withoutHeaders'] as const) {
    const map = asObj(c, m[f], [...at, f]);
    for (const [key, value] of Object.entries(map ?? {})) {
      const keyAt = [...at, f, key];
      const why = headerKeyProblem(key, ctx.gatewayOnly);
      if (why) c.error(keyAt, why);
      checkStringMatch(c, value, keyAt, f === 'headers' ? 'map' : 'withoutHeaders');
    }
  }
  const query = asObj(c, m.queryParams, [...at, 'queryParams']);
  for (const [key, value] of Object.entries(query ?? {})) {
    if (key === '') c.error([...at, 'queryParams', key], 'query parameter name must not be empty');
    checkStringMatch(c, value, [...at, 'queryParams', key], 'map');
  }
  if (isSet(m.port)) checkPort(c, m.port, [...at, 'port']);
  asBool(c, m.ignoreUriCase, [...at, 'ignoreUriCase']);
  checkLabels(c, m.sourceLabels, [...at, 'sourceLabels']);
  checkGatewayNames(c, m.gateways, [...at, 'gateways'], ctx);
  const ns = asString(c, m.sourceNamespace, [...at, 'sourceNamespace']);
  if (ns !== undefined && ns !== '' && !isDnsLabel(ns)) c.error([...at, 'sourceNamespace'], `${JSON.stringify(ns)} is not a namespace name`);
}

function headerKeyProblem(key: string, gatewayOnly: boolean): string | undefined {
  if (key === '') return 'header name must not be empty';
  if (key.startsWith('@request.auth.claims')) {
    if (!JWT_CLAIM.test(key)) return `${JSON.stringify(key)} is not a claim; write @request.auth.claims.name or @request.auth.claims[name]`;
    if (!gatewayOnly) return 'JWT claim matches work only on gateways; list gateways (without mesh) on this VirtualService';
    return undefined;
  }
  if (PSEUDO_HEADERS.has(key)) return undefined;
  if (!isHeaderName(key)) return `${JSON.stringify(key)} is not a valid header name`;
  if (key !== key.toLowerCase()) return `header name ${JSON.stringify(key)} must be lower-case (${key.toLowerCase()})`;
  return undefined;
}

/**
 * Gateway references: `mesh`, `name`, `namespace/name`, or the legacy `name.namespace.svc.cluster.local`.
 * With `match` (a match's `gateways`), each must also be one the VirtualService binds to at the top.
 */
export function checkGatewayNames(c: Checker, v: unknown, at: FieldPath, match?: Pick<RouteContext, 'gateways' | 'inDelegate'>): void {
  for (const { value, at: nameAt } of stringList(c, v, at)) {
    // A delegate's gateways come from its root, which is not known here.
    if (match && !match.inDelegate && !match.gateways.has(resolveGatewayName(value, c.resource.metadata.namespace))) {
      c.warn(nameAt, `${value} is not in the VirtualService's gateways (${[...match.gateways].join(', ')}); a VirtualService binds to a gateway only through its top-level gateways, so this match never applies there`);
    }
    if (value === 'mesh') continue;
    const slash = value.indexOf('/');
    if (slash >= 0) {
      const ns = value.slice(0, slash);
      const name = value.slice(slash + 1);
      if (!isDnsLabel(ns)) c.error(nameAt, `${JSON.stringify(ns)} is not a namespace name; write namespace/name`);
      else if (!isDnsLabel(name)) c.error(nameAt, `${JSON.stringify(name)} is not a gateway name; write namespace/name`);
      continue;
    }
    const why = hostProblem(value, false);
    if (why) c.error(nameAt, `${JSON.stringify(value)} is not a gateway name; write name or namespace/name`);
    else if (value.includes('.')) {
      const [name, ns] = value.split('.');
      c.warn(nameAt, `legacy gateway name format; prefer ${ns}/${name}`);
    }
  }
}

export function checkDestination(c: Checker, v: unknown, at: FieldPath): void {
  const d = asObj(c, v, at);
  if (!d) return;
  knownFields(c, d, at, ['host', 'subset', 'port']);
  const host = asString(c, d.host, [...at, 'host']);
  if (host === undefined || host === '') {
    if (host === '' || !isSet(d.host)) c.error([...at, 'host'], 'destination.host is required');
  } else if (host === '*') {
    c.error([...at, 'host'], 'destination host cannot be *; name a service');
  } else {
    const why = hostProblem(host);
    if (why) c.error([...at, 'host'], why);
  }
  const subset = asString(c, d.subset, [...at, 'subset']);
  if (subset !== undefined && subset !== '' && !isDnsLabel(subset)) c.error([...at, 'subset'], `subset name ${JSON.stringify(subset)} may use only a-z, 0-9 and '-'`);
  const port = asObj(c, d.port, [...at, 'port']);
  if (port) {
    knownFields(c, port, [...at, 'port'], ['number']);
    if (!isSet(port.number)) c.error([...at, 'port', 'number'], 'port.number is required when port is given');
    else checkPort(c, port.number, [...at, 'port', 'number']);
  }
}

/** `route[]` of HTTP, TLS and TCP routes: destinations with relative, non-negative weights. */
export function checkDestinations(c: Checker, v: unknown, at: FieldPath, withHeaders: boolean): void {
  let total = 0;
  let count = 0;
  let badWeight = false; // already reported; a sum over it would only add noise
  eachObj(c, v, at, (d, dAt) => {
    count++;
    knownFields(c, d, dAt, withHeaders ? ['destination', 'weight', 'headers'] : ['destination', 'weight']);
    if (!isSet(d.destination)) c.error([...dAt, 'destination'], 'destination is required, with at least a host');
    checkDestination(c, d.destination, [...dAt, 'destination']);
    const weight = asInt(c, d.weight, [...dAt, 'weight'], 0);
    if (isSet(d.weight) && weight === undefined) badWeight = true;
    total += weight ?? 0;
    // Per-destination authority headers are applied per destination, so they do not conflict with the route's.
    if (withHeaders) checkHeaderOperations(c, d.headers, [...dAt, 'headers']);
  });
  if (count > 1 && total === 0 && !badWeight) c.error(at, 'the weights of several destinations must not add up to 0');
}

/** Returns where a request host/:authority header is set, for the one-authority-rewrite rule. */
function checkHeaderOperations(c: Checker, v: unknown, at: FieldPath): FieldPath[] {
  const headers = asObj(c, v, at);
  const authorities: FieldPath[] = [];
  if (!headers) return authorities;
  knownFields(c, headers, at, ['request', 'response']);
  for (const side of ['request', 'response'] as const) {
    const ops = asObj(c, headers[side], [...at, side]);
    if (!ops) continue;
    knownFields(c, ops, [...at, side], ['set', 'add', 'remove']);
    for (const op of ['set', 'add'] as const) {
      const map = asObj(c, ops[op], [...at, side, op]);
      for (const [name, value] of Object.entries(map ?? {})) {
        const nameAt = [...at, side, op, name];
        const lower = name.toLowerCase();
        const authority = lower === 'host' || lower === ':authority';
        if (side === 'request' && authority) authorities.push(nameAt);
        else {
          const why = headerOperationProblem(name);
          if (why) c.error(nameAt, why);
        }
        const text = asString(c, value, nameAt);
        if (text !== undefined && /[\u0000-\u0008\u000a-\u001f\u007f]/.test(text)) c.error(nameAt, 'header value must not contain control characters');
        if (text === undefined && !isSet(value)) c.error(nameAt, 'header value must be a string; use "" for an empty value');
      }
    }
    for (const { value, at: nameAt } of stringList(c, ops.remove, [...at, side, 'remove'])) {
      const why = headerOperationProblem(value);
      if (why) c.error(nameAt, why);
    }
  }
  return authorities;
}

function headerOperationProblem(name: string): string | undefined {
  if (name === '') return 'header name must not be empty';
  if (name.toLowerCase() === 'host') return 'the host header cannot be changed here; use rewrite.authority or headers.request.set';
  if (name.startsWith(':')) return `pseudo-header ${name} cannot be changed`;
  if (!isHeaderName(name)) return `${JSON.stringify(name)} is not a valid header name`;
  return undefined;
}

function checkRedirect(c: Checker, v: unknown, at: FieldPath): void {
  const r = asObj(c, v, at);
  if (!r) return;
  knownFields(c, r, at, ['uri', 'prefixRewrite', 'authority', 'port', 'derivePort', 'scheme', 'redirectCode']);
  for (const f of ['uri', 'prefixRewrite', 'authority']) asString(c, r[f], [...at, f]);
  atMostOne(c, r, at, ['uri', 'prefixRewrite']);
  atMostOne(c, r, at, ['port', 'derivePort']);
  if (isSet(r.port)) checkPort(c, r.port, [...at, 'port']);
  asEnum(c, r.derivePort, [...at, 'derivePort'], ['FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT']);
  asEnum(c, r.scheme, [...at, 'scheme'], ['http', 'https']);
  if (!['uri', 'prefixRewrite', 'authority', 'port', 'derivePort', 'scheme'].some((f) => isSet(r[f]) && r[f] !== '')) {
    c.error(at, 'redirect must set at least one of uri, authority, scheme or port');
  }
  const code = asInt(c, r.redirectCode, [...at, 'redirectCode']);
  if (code === undefined || code === 0 || REDIRECT_CODES.includes(code)) return;
  if (code >= 300 && code <= 399) c.warn([...at, 'redirectCode'], `redirect code ${code} is not supported (use 301, 302, 303, 307 or 308); the route will be dropped`);
  else c.error([...at, 'redirectCode'], `${code} is not a redirect code; use 301, 302, 303, 307 or 308`);
}

/**
 * `redirect.prefixRewrite` replaces the prefix the route matched, so every match must be a uri
 * prefix (a match without uri is prefix `/`); an exact or regex uri has no prefix to replace.
 */
function checkRedirectPrefix(c: Checker, route: Obj, at: FieldPath): void {
  if (!isObj(route.redirect) || !isSet(route.redirect.prefixRewrite) || !Array.isArray(route.match)) return;
  route.match.forEach((m: unknown, i: number) => {
    const uri = isObj(m) ? m.uri : undefined;
    if (!isObj(uri) || isSet(uri.prefix)) return;
    c.error([...at, 'redirect', 'prefixRewrite'], `prefixRewrite requires prefix matches, but match[${i}].uri is not a prefix; use redirect.uri to replace the whole path`);
  });
}

function checkDirectResponse(c: Checker, v: unknown, at: FieldPath): void {
  const d = asObj(c, v, at);
  if (!d) return;
  knownFields(c, d, at, ['status', 'body']);
  if (!isSet(d.status)) c.error([...at, 'status'], 'status is required (200-599)');
  else {
    const status = asInt(c, d.status, [...at, 'status']);
    if (status !== undefined && (status < 200 || status > 599)) c.error([...at, 'status'], `status ${status} must be between 200 and 599`);
  }
  const body = asObj(c, d.body, [...at, 'body']);
  if (!body) return;
  knownFields(c, body, [...at, 'body'], ['string', 'bytes']);
  const which = atMostOne(c, body, [...at, 'body'], ['string', 'bytes']);
  if (which === undefined) return;
  const text = asString(c, body[which], [...at, 'body', which]);
  if (text === undefined) return;
  let size = Buffer.byteLength(text, 'utf8');
  if (which === 'bytes') {
    const compact = text.replace(/\s+/g, '');
    if (compact.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) {
      c.error([...at, 'body', 'bytes'], 'body.bytes must be base64; use body.string for text');
      return;
    }
    size = Buffer.from(compact, 'base64').length;
  }
  if (size >= 1024 * KB) c.error([...at, 'body', which], `body is ${size} bytes; it must be under 1 MB`);
  else if (size > 100 * KB) c.warn([...at, 'body', which], `body is ${size} bytes; bodies over 100 KB slow down configuration updates`);
}

function checkDelegate(c: Checker, v: unknown, at: FieldPath): void {
  const d = asObj(c, v, at);
  if (!d) return;
  knownFields(c, d, at, ['name', 'namespace']);
  const name = asString(c, d.name, [...at, 'name']);
  if (!name) {
    if (name === '' || !isSet(d.name)) c.error([...at, 'name'], 'delegate.name is required');
  }
  const ns = asString(c, d.namespace, [...at, 'namespace']);
  if (ns && !isDnsLabel(ns)) c.error([...at, 'namespace'], `${JSON.stringify(ns)} is not a namespace name`);
}

/** Returns whether rewrite.authority is set. */
function checkRewrite(c: Checker, v: unknown, at: FieldPath): boolean {
  const r = asObj(c, v, at);
  if (!r) return false;
  knownFields(c, r, at, ['uri', 'authority', 'uriRegexRewrite']);
  const uri = asString(c, r.uri, [...at, 'uri']);
  const authority = asString(c, r.authority, [...at, 'authority']);
  if (uri && isSet(r.uriRegexRewrite)) c.error([...at, 'uriRegexRewrite'], 'uri and uriRegexRewrite cannot both be set; use one');
  const rx = asObj(c, r.uriRegexRewrite, [...at, 'uriRegexRewrite']);
  if (!uri && !authority && !rx) c.error(at, 'rewrite must set uri, uriRegexRewrite or authority');
  if (rx) {
    const rxAt = [...at, 'uriRegexRewrite'];
    knownFields(c, rx, rxAt, ['match', 'rewrite']);
    const match = asString(c, rx.match, [...rxAt, 'match']);
    const rewrite = asString(c, rx.rewrite, [...rxAt, 'rewrite']);
    if (!match) c.error([...rxAt, 'match'], 'uriRegexRewrite.match is required');
    else {
      const why = regexProblem(match);
      if (why) c.error([...rxAt, 'match'], why);
    }
    if (!rewrite) c.error([...rxAt, 'rewrite'], 'uriRegexRewrite.rewrite is required');
  }
  return typeof authority === 'string' && authority !== '';
}
