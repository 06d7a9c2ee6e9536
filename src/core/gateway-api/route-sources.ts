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

/**
 * The destination host that stands for the share of a rule's weight meant for backendRefs that
 * cannot be used (no such Service, no ReferenceGrant …): it has no cluster, and answers 500.
 */
export const INVALID_BACKEND_HOST = 'invalid-backend.gateway-api.meshgate.internal';

const SOURCES = new WeakMap<Resource, readonly EntrySource[]>();

export function recordSources(vs: Resource, sources: readonly EntrySource[]): void {
  SOURCES.set(vs, sources);
}

/** True for a VirtualService made from Gateway API routes. */
export function isTranslated(vs: Resource): boolean {
  return SOURCES.has(vs);
}

/** The source of `vs.spec.http[index]` when `vs` was made from Gateway API routes. */
export function translatedSource(vs: Resource, index: number): EntrySource | undefined {
  return SOURCES.get(vs)?.[index];
}
