// The VirtualServices the translation writes, for listeners (translate.ts) and for Services in the
// mesh (mesh-services.ts) alike: rule entries of several routes put in Gateway API precedence, each
// http entry remembering the route rule and file:line it came from (route-sources.ts).

import type { HTTPRoute, VirtualServiceSpec } from '../model/istio.js';
import type { FieldPath, Origin, Resource } from '../model/resource.js';
import { comparePrecedence, type RankedEntry } from './precedence.js';
import type { EntrySource } from './route-sources.js';

/** The entries in precedence order as http entries, each with its source; `portOf` adds a match port per route. */
export function rankedHttp(entries: readonly RankedEntry[], portOf?: (e: RankedEntry) => number | undefined): { http: HTTPRoute[]; sources: EntrySource[]; ranked: RankedEntry[] } {
  const ranked = [...entries].sort(comparePrecedence);
  const http: HTTPRoute[] = [];
  const sources: EntrySource[] = [];
  for (const e of ranked) {
    const { route, entry } = e;
    const at: FieldPath = entry.matchIndex >= 0 ? ['spec', 'rules', entry.ruleIndex, 'matches', entry.matchIndex] : ['spec', 'rules', entry.ruleIndex];
    const port = portOf?.(e);
    for (const h of entry.http) {
      http.push(port === undefined ? h : { ...h, match: (h.match ?? [{}]).map((m) => ({ ...m, port })) });
      sources.push({
        virtualService: `${route.kind} ${route.metadata.namespace}/${route.metadata.name}`,
        file: route.origin.file,
        line: route.origin.lineOf(at),
        httpIndex: entry.ruleIndex,
        matchIndex: entry.matchIndex,
      });
    }
  }
  return { http, sources, ranked };
}

/** An origin whose http[i] is the line of the rule that entry came from. */
export function entriesOrigin(first: Resource, order: number, sources: readonly EntrySource[]): Origin {
  return {
    file: first.origin.file,
    line: first.origin.line,
    order,
    lineOf: (p) => (p[0] === 'spec' && p[1] === 'http' && typeof p[2] === 'number' ? sources[p[2]]?.line ?? first.origin.line : first.origin.line),
  };
}

export function synthetic(from: Resource, name: string, spec: VirtualServiceSpec, origin: Origin): Resource<VirtualServiceSpec> {
  return Object.freeze({
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { ...from.metadata, name },
    spec,
    origin,
    raw: {},
  });
}
