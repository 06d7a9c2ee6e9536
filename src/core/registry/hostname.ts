// Host names and wildcards exactly as Istio compares them (docs/reference/routing.md): overlap, one-way subset,
// intersection of two host lists, "most specific" ordering and short-name expansion. Gateways,
// VirtualServices, DestinationRules and ServiceEntries all share these rules.

import { isIP } from 'node:net';

/** A wildcard host has `*` as its first character (`*.foo.com`, or `*` alone). */
export function isWildcardHost(host: string): boolean {
  return host.length > 0 && host.charCodeAt(0) === 42; // '*'
}

/** Symmetric overlap: either side may be a wildcard, which then means "ends with what follows the `*`". */
export function hostMatches(a: string, b: string): boolean {
  const aw = isWildcardHost(a);
  const bw = isWildcardHost(b);
  if (aw && bw) {
    // The shorter suffix must be a suffix of the longer one.
    return a.length < b.length ? b.slice(1).endsWith(a.slice(1)) : a.slice(1).endsWith(b.slice(1));
  }
  if (aw) return b.endsWith(a.slice(1));
  if (bw) return a.endsWith(b.slice(1));
  return a === b;
}

/** One-way: is every name that `n` covers also covered by `o`? A wildcard is never a subset of a plain name. */
export function hostSubsetOf(n: string, o: string): boolean {
  const nw = isWildcardHost(n);
  const ow = isWildcardHost(o);
  if (nw) {
    if (!ow) return false;
    return n.length >= o.length && n.slice(1).endsWith(o.slice(1));
  }
  if (ow) return n.endsWith(o.slice(1));
  return n === o;
}

/**
 * For every pair where one side is a subset of the other, the more specific of the two, in the
 * order first found and without duplicates: `["foo.com","*.net"] ∩ ["*.bar.net"]` = `["*.bar.net"]`.
 */
export function hostIntersection(a: readonly string[], b: readonly string[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const add = (h: string): void => {
    if (!seen.has(h)) {
      seen.add(h);
      out.push(h);
    }
  };
  for (const x of a) {
    for (const y of b) {
      if (hostSubsetOf(x, y)) add(x);
      else if (hostSubsetOf(y, x)) add(y);
    }
  }
  return out;
}

/**
 * Sort comparator, most specific first: plain names before wildcards, then longer before shorter,
 * then alphabetical (so the order is total and stable across runs).
 */
export function compareHostSpecificity(a: string, b: string): number {
  const aw = isWildcardHost(a);
  const bw = isWildcardHost(b);
  if (aw !== bw) return aw ? 1 : -1;
  if (a.length !== b.length) return b.length - a.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * `reviews` in namespace `default` → `reviews.default.svc.cluster.local`. Anything with a dot is
 * taken as already qualified (so `reviews.default` stays as written), and so are `*` and IP addresses.
 * The namespace is the one of the rule that names the host, not of the service.
 */
export function resolveShortName(host: string, namespace: string, domain = 'cluster.local'): string {
  if (host === '' || host === '*' || host.includes('.') || isIP(host) !== 0) return host;
  let out = host;
  if (namespace !== '') out += `.${namespace}`;
  if (domain !== '') out += `.svc.${domain}`;
  return out;
}

/**
 * Istio's most-specific-host lookup: an exact key wins; otherwise the most specific wildcard that
 * covers `needle` (for a wildcard needle, the text after its `*` must end with the candidate's).
 * `wildcards` must already be sorted with compareHostSpecificity, so the first hit is the answer.
 */
export function mostSpecificHost<V>(needle: string, exact: ReadonlyMap<string, V>, wildcards: ReadonlyArray<readonly [string, V]>): V | undefined {
  const direct = exact.get(needle);
  if (direct !== undefined) return direct;
  const text = isWildcardHost(needle) ? needle.slice(1) : needle;
  for (const [host, value] of wildcards) {
    if (text.endsWith(host.slice(1))) return value;
  }
  return undefined;
}
