// Where each http entry of a VirtualService made from Gateway API routes came from, so that
// `explain`, `meshgate routes` and access logs name the HTTPRoute rule and its file:line rather than
// a VirtualService nobody wrote.

import type { Resource } from '../model/resource.js';

export interface EntrySource {
  /** `HTTPRoute ns/name`. */
  readonly virtualService: string;
  readonly file: string;
  readonly line: number;
  /** The rule's index, and its match's (-1 when the rule has no matches). */
  readonly httpIndex: number;
  readonly matchIndex: number;
}

const SOURCES = new WeakMap<Resource, readonly EntrySource[]>();

export function recordSources(vs: Resource, sources: readonly EntrySource[]): void {
  SOURCES.set(vs, sources);
}

/** The source of `vs.spec.http[index]` when `vs` was made from Gateway API routes. */
export function translatedSource(vs: Resource, index: number): EntrySource | undefined {
  return SOURCES.get(vs)?.[index];
}
