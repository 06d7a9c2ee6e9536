// Helpers for the validation unit tables (test/validate-*.test.ts): one resource of a kind from its spec
// text, and a check that the problems found are exactly the expected errors (plus expected warnings).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../../src/core/config/load.js';
import type { Problem, Severity } from '../../src/core/config/problem.js';
import { formatProblem } from '../../src/core/config/problem.js';
import { validateResource } from '../../src/core/config/validate.js';
import type { Resource } from '../../src/core/model/resource.js';

export interface Expected {
  readonly severity: Severity;
  readonly field: string;
  readonly message: string;
  readonly line?: number;
}
export interface Case {
  readonly name: string;
  readonly kind: string;
  /** The spec body, indented as if under `spec:` at column 0; its first line is line 5 of the file. */
  readonly spec: string;
  readonly expect: readonly Expected[];
}

export const API: Record<string, string> = { Service: 'v1', Pod: 'v1', Endpoints: 'v1', EndpointSlice: 'discovery.k8s.io/v1' };

export function docOf(kind: string, spec: string, name = 't'): string {
  const body = spec.split('\n').map((l) => (l ? `  ${l}` : l)).join('\n');
  return `apiVersion: ${API[kind] ?? 'networking.istio.io/v1'}\nkind: ${kind}\nmetadata: {name: ${name}, namespace: default}\nspec:\n${body}\n`;
}

export function load(text: string): Resource[] {
  const { resources, problems } = parseConfigText(text, 'test.yaml');
  assert.deepEqual(problems, [], 'the test YAML itself parses');
  return resources;
}

export function problemsOf(kind: string, spec: string): Problem[] {
  const [r] = load(docOf(kind, spec));
  assert.ok(r);
  return validateResource(r);
}

export const err = (field: string, message: string, line?: number): Expected => ({ severity: 'error', field, message, ...(line ? { line } : {}) });
export const warn = (field: string, message: string, line?: number): Expected => ({ severity: 'warning', field, message, ...(line ? { line } : {}) });

/** Every expected problem is found, and there are no errors beyond the expected ones. */
export function check(found: readonly Problem[], expect: readonly Expected[]): void {
  const shown = found.map(formatProblem).join('\n  ');
  for (const e of expect) {
    const hit = found.find((p) => p.severity === e.severity && p.field === e.field && p.message.includes(e.message));
    assert.ok(hit, `expected ${e.severity} at ${e.field} containing ${JSON.stringify(e.message)}; found:\n  ${shown}`);
    if (e.line !== undefined) assert.equal(hit.line, e.line, `line of ${e.field}`);
  }
  const errors = found.filter((p) => p.severity === 'error').length;
  assert.equal(errors, expect.filter((e) => e.severity === 'error').length, `unexpected errors:\n  ${shown}`);
}

export function table(title: string, cases: readonly Case[]): void {
  describe(title, () => {
    for (const c of cases) it(c.name, () => check(problemsOf(c.kind, c.spec), c.expect));
  });
}

export const SERVER = (extra: string, protocol = 'HTTPS', port = 443): string =>
  `servers:\n- port: {number: ${port}, name: p, protocol: ${protocol}}\n  hosts: [a.example.com]\n${extra}`;
