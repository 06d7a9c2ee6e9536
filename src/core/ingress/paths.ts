// An Ingress path as VirtualService URI matches, the way Istio translates it:
// - `Exact`: an exact match.
// - `Prefix`: a prefix match.
// - `ImplementationSpecific` (and a path with no type): Istio's legacy reading. Empty, `*`, `/*` and
//   `.*` match everything (no match at all); a path ending in `/*` or `.*` is a prefix match of what
//   comes before; any other path is an exact match (regular expressions are not read).
// Istio marks the VirtualServices it makes from Ingresses with ingress route semantics, under which
// a prefix other than `/` matches whole path elements (Envoy's path_separated_prefix, trailing `/`
// dropped): `/status` matches `/status` and `/status/200`, never `/statusx`. That is written here
// as the pair exact `/status` + prefix `/status/`, which the route compiler serves as it stands.
//
// `length` and `exact` are Istio's sort keys for the routes of one host: longer paths first, and at
// one length an exact match before a prefix; a path that matches everything has length 0.

import type { HTTPMatchRequest } from '../model/istio.js';
import type { PathType } from '../model/ingress.js';

export interface IngressPathMatch {
  /** Undefined: the path matches every request. */
  readonly match?: readonly HTTPMatchRequest[];
  readonly length: number;
  readonly exact: boolean;
}

export function ingressPathMatch(path: string | undefined, pathType: PathType | undefined): IngressPathMatch {
  const p = path ?? '';
  if (pathType === 'Exact') return { match: [{ uri: { exact: p } }], length: p.length, exact: true };
  if (pathType === 'Prefix') return prefixMatch(p);
  if (p === '' || p === '*' || p === '/*' || p === '.*') return { length: 0, exact: false };
  if (p.endsWith('.*') || p.endsWith('/*')) return prefixMatch(p.slice(0, -2));
  return { match: [{ uri: { exact: p } }], length: p.length, exact: true };
}

function prefixMatch(prefix: string): IngressPathMatch {
  const length = prefix.length;
  if (prefix === '/') return { match: [{ uri: { prefix } }], length, exact: false };
  const element = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  return { match: [{ uri: { exact: element } }, { uri: { prefix: `${element}/` } }], length, exact: false };
}
