// Warnings for configuration that disappeared without an error: an empty config folder, or a file
// that held resources in the serving snapshot and now holds none (emptied by an editor, truncated
// by a deploy tool). Both apply cleanly and drop routes, so they are said out loud.

import type { LoadResult } from '../config/load.js';
import type { Problem } from '../config/problem.js';
import { resourceRef, type Resource } from '../model/resource.js';

export function emptiedFileProblems(loaded: LoadResult, previous: readonly Resource[] | undefined): Problem[] {
  const out: Problem[] = [];
  if (loaded.resources.length === 0 && loaded.problems.length === 0) {
    out.push({
      severity: 'warning',
      file: '',
      line: 0,
      resource: '',
      field: '',
      message: 'the configuration holds no resources: no route is served (every request gets 404 NR)',
    });
  }
  if (!previous) return out;
  const filesNow = new Set([...loaded.resources.map((r) => r.origin.file), ...loaded.problems.map((p) => p.file)]);
  const gone = new Map<string, Resource[]>();
  for (const r of previous) {
    // Objects from the Kubernetes API come and go one by one; only files can be emptied.
    if (r.origin.file === '' || r.origin.file.startsWith('kube:') || filesNow.has(r.origin.file)) continue;
    gone.set(r.origin.file, [...(gone.get(r.origin.file) ?? []), r]);
  }
  for (const [file, resources] of gone) {
    const refs = resources.map(resourceRef);
    const shown = refs.length <= 3 ? refs.join(', ') : `${refs.slice(0, 3).join(', ')} and ${refs.length - 3} more`;
    out.push({ severity: 'warning', file, line: 1, resource: '', field: '', message: `this file no longer holds any resource (emptied or removed); dropped ${shown}` });
  }
  return out;
}
