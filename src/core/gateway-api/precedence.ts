// Match precedence across every route attached to one listener host, as the Gateway API states it
// for HTTPRoute: exact path before prefix (regular expressions last, as Istio ranks them), longer
// path first, then a method match, more header matches, more query matches; ties go to the older
// route (creationTimestamp), then namespace/name alphabetically, then rule and match order.

import { compareByCreation, type Resource } from '../model/resource.js';
import type { HttpEntry } from './http-rules.js';

export interface RankedEntry {
  readonly route: Resource;
  readonly entry: HttpEntry;
}

export function comparePrecedence(a: RankedEntry, b: RankedEntry): number {
  const x = a.entry.rank;
  const y = b.entry.rank;
  if (x.pathRank !== y.pathRank) return y.pathRank - x.pathRank;
  if (x.pathLength !== y.pathLength) return y.pathLength - x.pathLength;
  if (x.method !== y.method) return x.method ? -1 : 1;
  if (x.headers !== y.headers) return y.headers - x.headers;
  if (x.query !== y.query) return y.query - x.query;
  if (a.route !== b.route) return compareRoutes(a.route, b.route);
  if (a.entry.ruleIndex !== b.entry.ruleIndex) return a.entry.ruleIndex - b.entry.ruleIndex;
  return a.entry.matchIndex - b.entry.matchIndex;
}

/** Older first; between equal (or unknown) timestamps, namespace/name alphabetically. */
export function compareRoutes(a: Resource, b: Resource): number {
  const ta = Date.parse(a.metadata.creationTimestamp ?? '');
  const tb = Date.parse(b.metadata.creationTimestamp ?? '');
  if (!Number.isNaN(ta) && !Number.isNaN(tb) && ta !== tb) return ta - tb;
  const na = `${a.metadata.namespace}/${a.metadata.name}`;
  const nb = `${b.metadata.namespace}/${b.metadata.name}`;
  if (na !== nb) return na < nb ? -1 : 1;
  return compareByCreation(a, b);
}
