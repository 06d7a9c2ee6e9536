// A table of documents for one kind, as Istio's schema and webhook judge them: `[name, spec]` Istio
// accepts (no error may be found), `[name, spec, field, message]` Istio refuses (an error at that
// field, its message holding that text). Shared by the schema table tests.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../../src/core/config/load.js';
import { formatProblem, type Problem } from '../../src/core/config/problem.js';
import { validateResource } from '../../src/core/config/validate.js';

const API: Readonly<Record<string, string>> = {
  PeerAuthentication: 'security.istio.io/v1', AuthorizationPolicy: 'security.istio.io/v1', RequestAuthentication: 'security.istio.io/v1', Telemetry: 'telemetry.istio.io/v1',
};

/** One document of `kind` with `spec` (written as if at column 0 under `spec:`). */
export function schemaDoc(kind: string, spec: string): string {
  const body = spec.split('\n').map((l) => (l ? `  ${l}` : l)).join('\n');
  return `apiVersion: ${API[kind] ?? 'networking.istio.io/v1'}\nkind: ${kind}\nmetadata: {name: t, namespace: default}\nspec:\n${body}\n`;
}

export function problemsOf(kind: string, spec: string): Problem[] {
  const { resources, problems } = parseConfigText(schemaDoc(kind, spec), 't.yaml');
  assert.deepEqual(problems.map(formatProblem), [], 'the document must read');
  assert.equal(resources.length, 1);
  return validateResource(resources[0]!);
}

export type Row = readonly [string, string] | readonly [string, string, string, string];

export function table(title: string, kind: string, rows: readonly Row[]): void {
  describe(title, () => {
    for (const [name, spec, field, message] of rows) {
      it(field ? `refuses ${name}` : `accepts ${name}`, () => {
        const found = problemsOf(kind, spec);
        const errors = found.filter((p) => p.severity === 'error');
        const shown = found.map(formatProblem).join('\n  ');
        if (!field) return assert.deepEqual(errors.map(formatProblem), [], `Istio accepts this; found:\n  ${shown}`);
        assert.ok(errors.some((p) => p.field === field && p.message.includes(message!)), `expected ${field}: ${message}; found:\n  ${shown}`);
      });
    }
  });
}
