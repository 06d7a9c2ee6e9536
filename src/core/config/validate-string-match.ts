// Istio's StringMatch (exact | prefix | regex) and its regex rules: RE2 syntax, at most 1024
// characters, never empty; where an empty prefix or an empty match `{}` is allowed (docs/reference/routing.md).

import { compileRegex } from '../routing/string-match.js';
import type { FieldPath } from '../model/resource.js';
import { asString, describe, isObj, isSet, knownFields, type Checker } from './validate-common.js';

/** Why `re` is not acceptable as an Istio regex, or undefined. */
export function regexProblem(re: string): string | undefined {
  if (re === '') return 'regex must not be empty';
  // Istio approximates Envoy's RE2 program-size limit by length.
  if (re.length > 1024) return `regex is too long (${re.length} characters; at most 1024)`;
  try {
    compileRegex(re);
    return undefined;
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return `not a valid RE2 regex: ${why.split('\n')[0]}`;
  }
}

/**
 * Where a StringMatch sits decides what is allowed: `uri` accepts an empty prefix; `map` (headers,
 * queryParams, withoutHeaders values) accepts `{}`, and Istio's `regex: "*"` with a warning, as a
 * presence match; `withoutHeaders` is a map whose presence match is inverted.
 */
export type MatchPlace = 'uri' | 'field' | 'map' | 'withoutHeaders';

const MATCH_KINDS = ['exact', 'prefix', 'regex'] as const;

export function checkStringMatch(c: Checker, v: unknown, path: FieldPath, place: MatchPlace): void {
  const inMap = place === 'map' || place === 'withoutHeaders';
  if (!isSet(v)) {
    if (inMap) c.error(path, 'must be a match such as {exact: value}; use {} to match any value');
    return;
  }
  if (!isObj(v)) {
    c.error(path, `must be a mapping with one of exact, prefix or regex, not ${describe(v)}`);
    return;
  }
  knownFields(c, v, path, MATCH_KINDS);
  const set = MATCH_KINDS.filter((k) => isSet(v[k]));
  if (set.length === 0) {
    if (!inMap) c.error(path, 'needs one of exact, prefix or regex');
    return;
  }
  if (set.length > 1) {
    c.error(path, `only one of exact, prefix or regex may be set (found ${set.join(' and ')})`);
    return;
  }
  const kind = set[0]!;
  const at = [...path, kind];
  const text = asString(c, v[kind], at);
  if (text === undefined) return;
  if (kind === 'prefix' && text === '' && place !== 'uri') c.error(at, 'prefix must not be empty here (an empty prefix is allowed only for uri)');
  if (kind === 'regex') {
    if (text === '*' && inMap) {
      // Istio turns this invalid regex into a presence match rather than rejecting it (docs/reference/routing.md).
      const means = place === 'withoutHeaders' ? 'the header must be absent' : 'any value matches, as long as it is present';
      c.warn(at, `regex "*" is not valid RE2; like Istio, meshgate reads it as a presence match (${means}); write {} to say so`);
      return;
    }
    const why = regexProblem(text);
    if (why) c.error(at, why);
  }
}
