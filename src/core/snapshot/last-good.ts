// Bad input never loses data: when a reload brings a file that does not parse, or a resource that
// does not validate, the last good version of what it held keeps serving, and the problem is
// reported. New valid resources apply at once.

import type { Problem } from '../config/problem.js';
import type { Resource } from '../model/resource.js';
import { resourceRef } from '../model/resource.js';

export function resourceKey(r: Resource): string {
  return `${r.kind}/${r.metadata.namespace}/${r.metadata.name}`;
}

export interface Reconciled {
  readonly resources: Resource[];
  readonly problems: Problem[];
}

/**
 * `valid` and `invalid` are this load's resources after validation; `unparsedFiles` the files whose
 * text could not be read as documents; `previous` the resources of the snapshot now serving.
 */
export function keepLastGood(
  previous: readonly Resource[] | undefined,
  valid: readonly Resource[],
  invalid: readonly Resource[],
  unparsedFiles: ReadonlySet<string>,
): Reconciled {
  if (!previous || previous.length === 0) return { resources: [...valid], problems: [] };
  const problems: Problem[] = [];
  const present = new Set(valid.map(resourceKey));
  const previousByKey = new Map(previous.map((r) => [resourceKey(r), r] as const));
  const kept: Resource[] = [];
  const keep = (r: Resource, why: string): void => {
    const key = resourceKey(r);
    if (present.has(key)) return;
    present.add(key);
    kept.push(r);
    problems.push({ severity: 'warning', file: r.origin.file, line: r.origin.line, resource: resourceRef(r), field: '', message: `${why}; the last good version keeps serving` });
  };
  for (const r of previous) if (unparsedFiles.has(r.origin.file)) keep(r, `${r.origin.file} does not parse`);
  for (const r of invalid) {
    const old = previousByKey.get(resourceKey(r));
    if (old) keep(old, 'the new version is invalid');
  }
  return { resources: [...valid, ...kept], problems };
}
