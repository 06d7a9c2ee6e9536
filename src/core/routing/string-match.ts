// Compiles Istio StringMatch values (exact | prefix | regex) into predicates. Regexes are RE2
// (linear time, no backtracking on the request path) and must match the whole input, as in Envoy.

import { createRequire } from 'node:module';
import type { RE2JS } from 're2js';
import type { StringMatch } from '../model/istio.js';

export interface StringPredicate {
  /** `exact "/a"`, `prefix "/a"`, `regex "/a.*"`, `present`. */
  readonly what: string;
  readonly kind: 'exact' | 'prefix' | 'regex' | 'present';
  test(value: string | undefined): boolean;
}

type Re2 = typeof import('re2js');
let re2Loaded: Re2 | undefined;

/**
 * Compiles a full-match RE2 regex; throws on invalid input (validation has already rejected those).
 * The engine is loaded with the first regex: most proxies' routes have none.
 */
export function compileRegex(pattern: string, flags = 0): RE2JS {
  return (re2Loaded ??= createRequire(import.meta.url)('re2js') as Re2).RE2JS.compile(pattern, flags);
}

/**
 * `presenceForEmpty`: header and query maps turn `{}` (and the invalid `regex: "*"`) into a presence
 * match, as Istio does; for uri/method/authority an empty match never happens after validation.
 */
export function compileStringMatch(m: StringMatch, opts: { ignoreCase?: boolean; presenceForEmpty?: boolean } = {}): StringPredicate {
  const ignoreCase = opts.ignoreCase === true;
  if (m.exact !== undefined) {
    const want = ignoreCase ? m.exact.toLowerCase() : m.exact;
    return {
      what: `exact ${JSON.stringify(m.exact)}${ignoreCase ? ' (ignoring case)' : ''}`,
      kind: 'exact',
      test: ignoreCase ? (v) => v !== undefined && v.toLowerCase() === want : (v) => v === want,
    };
  }
  if (m.prefix !== undefined) {
    const want = ignoreCase ? m.prefix.toLowerCase() : m.prefix;
    return {
      what: `prefix ${JSON.stringify(m.prefix)}${ignoreCase ? ' (ignoring case)' : ''}`,
      kind: 'prefix',
      test: ignoreCase ? (v) => v !== undefined && v.toLowerCase().startsWith(want) : (v) => v !== undefined && v.startsWith(want),
    };
  }
  if (m.regex !== undefined && m.regex !== '*') {
    const re = compileRegex(m.regex);
    return { what: `regex ${JSON.stringify(m.regex)}`, kind: 'regex', test: (v) => v !== undefined && re.matches(v) };
  }
  if (opts.presenceForEmpty) return { what: 'present', kind: 'present', test: (v) => v !== undefined };
  return { what: 'any', kind: 'present', test: () => true };
}
