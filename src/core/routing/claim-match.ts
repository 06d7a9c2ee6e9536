// JWT claim based routing (Istio's `@request.auth.claims.<name>` keys in a route's `headers` and
// `withoutHeaders`, gateways only): the condition compares the claims of the request's verified JWT,
// never a header the client sent. `@request.auth.claims.a.b` and `@request.auth.claims[a][b]` name
// the nested claim `b` of `a` (brackets allow dots in names). A string claim matches as a header
// value does; a list claim matches when one of its strings does. A request without a verified token
// has no claims: the route's `headers` condition fails (Istio answers such requests 404 when no other
// route matches) and a `withoutHeaders` one holds.

import type { StringPredicate } from './string-match.js';
import type { Condition, RequestFacts } from './types.js';

const PREFIX = '@request.auth.claims';

/** Whether a `headers` key is a JWT claim rather than a header name. */
export function isClaimKey(key: string): boolean {
  return key.startsWith(PREFIX);
}

/** `@request.auth.claims.a.b` or `@request.auth.claims[a][b]` → `['a', 'b']`. */
export function claimPath(key: string): string[] {
  const rest = key.slice(PREFIX.length);
  if (rest.startsWith('[')) return [...rest.matchAll(/\[([^[\]]+)\]/g)].map((m) => m[1]!);
  return rest.split('.').filter((s) => s !== '');
}

/** The claim's values as strings: a string claim is one, a list claim its strings; undefined when absent. */
function claimValues(claims: RequestFacts['claims'], path: readonly string[]): string[] | undefined {
  let v: unknown = claims;
  for (const step of path) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[step];
  }
  if (typeof v === 'string') return [v];
  if (typeof v === 'number' || typeof v === 'boolean') return [String(v)];
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  return undefined;
}

/** A route condition on a claim; `without` inverts it (a `withoutHeaders` entry). */
export function claimCondition(key: string, pred: StringPredicate, without: boolean): Condition {
  const path = claimPath(key);
  const name = `claim ${path.join('.')}`;
  const matches = (r: RequestFacts): boolean => {
    const values = claimValues(r.claims, path);
    return values !== undefined && (pred.kind === 'present' ? true : values.some((v) => pred.test(v)));
  };
  return {
    what: without ? `without ${name} ${pred.what}` : `${name} ${pred.what}`,
    claim: true,
    actual: (r) => {
      const values = claimValues(r.claims, path);
      return values === undefined ? (r.claims ? '(absent)' : '(no verified JWT)') : JSON.stringify(values.length === 1 ? values[0] : values);
    },
    test: without ? (r) => !matches(r) : matches,
  };
}
