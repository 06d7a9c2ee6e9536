// analyze(): valid resources in, cross-resource findings out, sorted by file and line. Also the
// pieces of `meshgate analyze` that are not printing: suppressions (`IST0101=VirtualService/name`)
// and the failure threshold.

import type { Problem, Severity } from '../config/problem.js';
import type { Resource } from '../model/resource.js';
import { ANALYZERS, type Analyzer } from './analyzers.js';
import { analysisContext, type AnalysisOptions } from './context.js';
import { MESSAGES } from './finding.js';

export function analyze(resources: readonly Resource[], options: AnalysisOptions = {}, analyzers: readonly Analyzer[] = ANALYZERS): Problem[] {
  let ctx;
  try {
    ctx = analysisContext(resources, options);
  } catch (err) {
    return [internal('context', err)];
  }
  const out: Problem[] = [];
  for (const a of analyzers) {
    try {
      out.push(...a.run(ctx));
    } catch (err) {
      // An analyzer bug must not hide the others' findings, nor stop a reload.
      out.push(internal(a.name, err));
    }
  }
  return out.sort((a, b) => (a.file === b.file ? a.line - b.line : a.file < b.file ? -1 : 1));
}

function internal(name: string, err: unknown): Problem {
  return { severity: 'warning', file: '', line: 0, resource: '', field: '', code: 'IST0001', message: `analyzer ${name} failed (${err instanceof Error ? err.message : String(err)}); this is a bug in meshgate` };
}

/** Validation problems as analyze reports them: IST0106 errors and IST0133 warnings, unless they carry their own code. */
export function asSchemaFindings(problems: readonly Problem[]): Problem[] {
  return problems.map((p) => (p.code ? p : { ...p, code: p.severity === 'error' ? MESSAGES.SchemaValidationError.code : MESSAGES.SchemaWarning.code }));
}

export interface Suppression {
  readonly code: string;
  /** `Kind`, then `namespace/name` or `name`; `*` matches any run of characters. */
  readonly kind: string;
  readonly name: RegExp;
}

/** `IST0101=VirtualService/reviews`, `IST0101=VirtualService default/reviews`, `IST0132=*`. */
export function parseSuppression(text: string): Suppression | undefined {
  const m = /^([A-Z]+\d{4})=(.+)$/.exec(text.trim());
  if (!m) return undefined;
  const target = m[2]!.trim();
  if (target === '*') return { code: m[1]!, kind: '*', name: /^.*$/ };
  const sep = target.search(/[ /]/);
  if (sep <= 0) return undefined;
  const kind = target.slice(0, sep);
  const name = target.slice(sep + 1).trim();
  const glob = new RegExp(`^${name.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return { code: m[1]!, kind, name: glob };
}

export function isSuppressed(p: Problem, suppressions: readonly Suppression[]): boolean {
  if (!p.code) return false;
  const [kind = '', ref = ''] = p.resource.split(' ');
  const name = ref.slice(ref.indexOf('/') + 1);
  return suppressions.some((s) => s.code === p.code && (s.kind === '*' || (s.kind === kind && (s.name.test(ref) || s.name.test(name)))));
}

const RANK: Record<Severity, number> = { info: 0, warning: 1, error: 2 };

/** Whether a finding is at or above a threshold (`error`, `warning`, `info`). */
export function atLeast(p: Problem, threshold: Severity): boolean {
  return RANK[p.severity] >= RANK[threshold];
}
