// Bad input never loses data: when a reload brings a file that does not parse, or a resource that
// does not validate, the last good version of what it held keeps serving, and the problem is
// reported. New valid resources apply at once. A file that still reads but holds an invalid
// resource and lost others is taken for a partial write (cut off inside a resource, its tail still
// YAML): the resources it lost keep serving too until the file is valid again, so a policy file cut
// short never drops the DENY policies after the cut (security decisions fail closed).

import type { Problem } from '../config/problem.js';
import type { Resource } from '../model/resource.js';
import { resourceRef } from '../model/resource.js';

export function resourceKey(r: Resource): string {
  return `${r.kind}/${r.metadata.namespace}/${r.metadata.name}`;
}

export interface Reconciled {
  readonly resources: Resource[];
  /** The load problems, a file's read error saying what of that file keeps serving. */
  readonly loadProblems: Problem[];
  /** One warning per invalid resource whose last good version keeps serving. */
  readonly problems: Problem[];
}

/** A file with a document that could not be read as a resource at all (a YAML syntax error, no kind …). */
function isUnreadable(p: Problem): boolean {
  return p.severity === 'error' && p.resource === '';
}

/**
 * `valid` and `invalid` are this load's resources after validation; `loadProblems` what reading the
 * files found; `previous` the resources of the snapshot now serving.
 */
export function keepLastGood(previous: readonly Resource[] | undefined, valid: readonly Resource[], invalid: readonly Resource[], loadProblems: readonly Problem[]): Reconciled {
  if (!previous || previous.length === 0) return { resources: [...valid], loadProblems: [...loadProblems], problems: [] };
  const unreadable = new Set(loadProblems.filter(isUnreadable).map((p) => p.file));
  // Nothing can be kept: skip indexing every resource by key (most reloads of a large folder).
  if (unreadable.size === 0 && invalid.length === 0) return { resources: [...valid], loadProblems: [...loadProblems], problems: [] };
  const problems: Problem[] = [];
  const present = new Set(valid.map(resourceKey));
  const previousByKey = new Map(previous.map((r) => [resourceKey(r), r] as const));
  const kept: Resource[] = [];
  const keep = (r: Resource): boolean => {
    const key = resourceKey(r);
    if (present.has(key)) return false;
    present.add(key);
    kept.push(r);
    return true;
  };
  // The old resources of a file that does not read are kept silently: their lines are those of the
  // old text, so the read error (with its real line) is the one thing worth saying, once.
  const keptByFile = new Map<string, string[]>();
  for (const r of previous) {
    if (!unreadable.has(r.origin.file) || !keep(r)) continue;
    keptByFile.set(r.origin.file, [...(keptByFile.get(r.origin.file) ?? []), resourceRef(r)]);
  }
  for (const r of invalid) {
    const old = previousByKey.get(resourceKey(r));
    if (!old || !keep(old)) continue;
    problems.push({ severity: 'warning', file: r.origin.file, line: r.origin.line, resource: resourceRef(r), field: '', message: 'the new version is invalid; the last good version keeps serving' });
  }
  // Resources made in code have no file: nothing of theirs can be cut short.
  const cut = new Set(invalid.map((r) => r.origin.file).filter((f) => f !== ''));
  for (const r of previous) {
    if (!cut.has(r.origin.file) || !keep(r)) continue;
    problems.push({ severity: 'warning', file: r.origin.file, line: r.origin.line, resource: resourceRef(r), field: '', message: 'gone from a file that now holds an invalid resource (cut short?); the last good version keeps serving until the file is valid' });
  }
  const said = new Set<string>();
  const annotated = loadProblems.map((p) => {
    const refs = keptByFile.get(p.file);
    if (!refs || !isUnreadable(p) || said.has(p.file)) return p;
    said.add(p.file);
    return { ...p, message: `${p.message}; the last good version keeps serving for ${listed(refs)}` };
  });
  return { resources: [...valid, ...kept], loadProblems: annotated, problems };
}

function listed(refs: readonly string[]): string {
  return refs.length <= 3 ? refs.join(', ') : `${refs.slice(0, 3).join(', ')} and ${refs.length - 3} more`;
}
