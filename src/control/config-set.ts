// The set the control plane hands out: what its source loaded, validated here so that proxies only
// ever receive resources that passed, with the last good version of anything that broke (the same
// rule a proxy on a folder follows), encoded once for every subscriber and named by a version that
// depends only on its content.

import { analyze } from '../core/analyze/run.js';
import type { LoadResult } from '../core/config/load.js';
import type { Problem } from '../core/config/problem.js';
import { validateAll } from '../core/config/validate.js';
import { resourceRef, type Resource } from '../core/model/resource.js';
import { keepLastGood } from '../core/snapshot/last-good.js';
import { encodeResource, versionOf } from '../core/sources/control-plane-wire.js';

export type Validate = (resources: readonly Resource[]) => { valid: Resource[]; problems: Problem[] };

export interface PublishedSet {
  readonly version: string;
  readonly resources: readonly Resource[];
  /** The stream's `config` line, newline included. */
  readonly line: string;
  /** What the control plane found wrong with its input (those resources were left out or kept at their last good version). */
  readonly problems: readonly Problem[];
}

export function publishableSet(loaded: LoadResult, previous: readonly Resource[] | undefined, validate: Validate = validateAll): PublishedSet {
  const { valid, problems: validation } = validate(loaded.resources);
  const validSet = new Set(valid);
  const invalid = loaded.resources.filter((r) => !validSet.has(r));
  const reconciled = keepLastGood(previous, valid, invalid, loaded.problems);
  const problems: Problem[] = [...reconciled.loadProblems, ...validation, ...reconciled.problems];
  const resources: Resource[] = [];
  const parts: string[] = [];
  for (const r of reconciled.resources) {
    try {
      parts.push(JSON.stringify(encodeResource(r)));
      resources.push(r);
    } catch (err) {
      // A document JSON cannot carry (a YAML alias that refers to itself) stays here.
      problems.push({ severity: 'error', file: r.origin.file, line: r.origin.line, resource: resourceRef(r), field: '', message: `cannot be sent to proxies (${(err as Error).message}); left out` });
    }
  }
  // The same cross-resource analyzers the proxies run: reported here once, never a reason to refuse.
  problems.push(...analyze(resources));
  const body = parts.join(',');
  const version = versionOf(body);
  return { version, resources, problems, line: `{"type":"config","version":"${version}","resources":[${body}]}\n` };
}
