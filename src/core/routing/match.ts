// Turns one HTTPMatchRequest into a list of conditions (all must hold). Each condition can say what
// it wanted and what it saw, which is how `meshgate explain` answers "why 404?".

import type { IncomingHttpHeaders } from 'node:http';
import type { HTTPMatchRequest, StringMatch } from '../model/istio.js';
import type { Condition, RequestFacts } from './types.js';
import { compileStringMatch, type StringPredicate } from './string-match.js';
import { claimCondition, isClaimKey } from './claim-match.js';

/** Header keys that Istio reads as pseudo-headers and ignores inside `headers` maps. */
const IGNORED_HEADER_KEYS = new Set(['uri', 'scheme', 'method', 'authority']);

export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(',') : v;
}

function condition(what: string, actual: (req: RequestFacts) => string | undefined, pred: StringPredicate): Condition {
  return {
    what: `${what} ${pred.what}`,
    actual: (req) => show(actual(req)),
    test: (req) => pred.test(actual(req)),
  };
}

function show(v: string | undefined): string {
  return v === undefined ? '(absent)' : JSON.stringify(v);
}

export function compileMatch(m: HTTPMatchRequest): Condition[] {
  const out: Condition[] = [];
  if (m.uri) {
    const pred = compileStringMatch(m.uri, { ignoreCase: m.ignoreUriCase === true && m.uri.regex === undefined });
    out.push(condition('uri', (r) => r.path, pred));
  }
  if (m.scheme) out.push(condition('scheme', (r) => r.scheme, compileStringMatch(m.scheme)));
  if (m.method) out.push(condition('method', (r) => r.method, compileStringMatch(m.method)));
  if (m.authority) out.push(condition('authority', (r) => r.authority, compileStringMatch(m.authority)));
  for (const [name, sm] of entries(m.headers)) {
    if (IGNORED_HEADER_KEYS.has(name) || name.startsWith('@')) continue;
    out.push(condition(`header ${name}`, (r) => headerValue(r.headers, name), compileStringMatch(sm, { presenceForEmpty: true })));
  }
  for (const [name, sm] of entries(m.withoutHeaders)) {
    if (IGNORED_HEADER_KEYS.has(name) || name.startsWith('@')) continue;
    out.push(withoutHeader(name, compileStringMatch(sm, { presenceForEmpty: true })));
  }
  // JWT claims keep their case (header names fold it).
  for (const [key, sm] of Object.entries(m.headers ?? {})) if (isClaimKey(key)) out.push(claimCondition(key, compileStringMatch(sm ?? {}, { presenceForEmpty: true }), false));
  for (const [key, sm] of Object.entries(m.withoutHeaders ?? {})) if (isClaimKey(key)) out.push(claimCondition(key, compileStringMatch(sm ?? {}, { presenceForEmpty: true }), true));
  // Query parameter names compare exactly (Envoy's query_parameters); only header names fold case.
  for (const [name, sm] of Object.entries(m.queryParams ?? {}).map(([k, v]) => [k, v ?? {}] as const)) {
    // `exact: ""` asks only that the key be there (`?debug`), as Istio translates it.
    const pred = sm.exact === '' ? compileStringMatch({}, { presenceForEmpty: true }) : compileStringMatch(sm, { presenceForEmpty: true });
    out.push(condition(`query ${name}`, (r) => r.query.get(name), pred));
  }
  // Kept by the compiled route: copied to exactly its length (filled by push, it had room for 17).
  return out.slice();
}

/** Envoy's invert_match with treat_missing_header_as_empty: a missing header counts as ''. */
function withoutHeader(name: string, pred: StringPredicate): Condition {
  const test =
    pred.kind === 'present'
      ? (r: RequestFacts) => headerValue(r.headers, name) === undefined
      : (r: RequestFacts) => !pred.test(headerValue(r.headers, name) ?? '');
  return { what: `without header ${name} ${pred.what}`, actual: (r) => show(headerValue(r.headers, name)), test };
}

function entries(m: Readonly<Record<string, StringMatch>> | undefined): Array<[string, StringMatch]> {
  if (!m) return [];
  return Object.entries(m).map(([k, v]) => [k.toLowerCase(), v ?? {}]);
}

/**
 * Istio's IsCatchAllRoute: prefix `/` (or regex `.*`, or no uri) with no other condition. `port` is
 * not a runtime condition (it only decides at compile time whether the route exists), so it does
 * not count.
 */
export function isCatchAll(m: HTTPMatchRequest | undefined): boolean {
  if (!m) return true;
  const uriAll = !m.uri || m.uri.prefix === '/' || m.uri.regex === '.*' || m.uri.prefix === '';
  const others =
    m.scheme || m.method || m.authority || hasKeys(m.headers) || hasKeys(m.withoutHeaders) || hasKeys(m.queryParams);
  return uriAll && !others;
}

function hasKeys(o: object | undefined): boolean {
  return o !== undefined && Object.keys(o).length > 0;
}
