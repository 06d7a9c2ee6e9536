// A configuration problem: an expected failure, carried as a value, that always names file, line,
// resource and field so that a person can fix it without guessing.

import type { FieldPath, Resource } from '../model/resource.js';
import { resourceRef } from '../model/resource.js';

/** `info` is for analyzer findings that change nothing served (Istio's Info level). */
export type Severity = 'error' | 'warning' | 'info';

export interface Problem {
  readonly severity: Severity;
  readonly file: string;
  readonly line: number;
  /** 1-based column, where it says more than the line (a YAML syntax error). */
  readonly column?: number;
  /** `Kind namespace/name`, or empty when the document could not be read as a resource at all. */
  readonly resource: string;
  /** Field path such as `spec.http[0].route[1].weight`; empty for whole-document problems. */
  readonly field: string;
  readonly message: string;
  /** A stable message code (IST0101, MG0001 …) for findings that have one; see `meshgate analyze`. */
  readonly code?: string;
}

/** `spec.http[0].route[1].weight` from ['spec','http',0,'route',1,'weight']. */
export function formatPath(path: FieldPath): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (/^[A-Za-z_][\w-]*$/.test(part)) out += out ? `.${part}` : part;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out;
}

export function problemAt(resource: Resource, path: FieldPath, message: string, severity: Severity = 'error'): Problem {
  return {
    severity,
    file: resource.origin.file,
    line: resource.origin.lineOf(path),
    resource: resourceRef(resource),
    field: formatPath(path),
    message,
  };
}

/** `gateway-config/vs.yaml:14 VirtualService default/product spec.http[0].route[1].weight: must not be negative` */
export function formatProblem(p: Problem): string {
  // A problem of the whole config (an empty folder) has no line: the folder alone is the place.
  const where = p.line > 0 ? `${p.file}:${p.line}${p.column ? `:${p.column}` : ''}` : p.file;
  const what = [p.resource, p.field].filter(Boolean).join(' ');
  const tag = p.severity === 'error' ? '' : `${p.severity}: `;
  const code = p.code ? `[${p.code}] ` : '';
  return `${where}${where ? ' ' : ''}${what}${what ? ': ' : ''}${tag}${code}${p.message}`;
}

export function hasErrors(problems: readonly Problem[]): boolean {
  return problems.some((p) => p.severity === 'error');
}
