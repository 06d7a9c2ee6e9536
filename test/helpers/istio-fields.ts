// The fields of Istio's schemas (test/fixtures/schema/istio-fields.txt) and how to put one field in a
// document: shared by test/schema-fields.test.ts and scripts/fields-reference.mjs, which writes
// docs/reference/fields.md from the same list.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resourceFromObject } from '../../src/core/config/load.js';
import type { Problem } from '../../src/core/config/problem.js';
import { validateResource } from '../../src/core/config/validate.js';

export interface Field {
  readonly kind: string;
  readonly apiVersion: string;
  readonly path: readonly string[];
  readonly type: string;
  readonly enumValues?: readonly string[];
  readonly min?: number;
  readonly max?: number;
  readonly duration: boolean;
  /** Keys an object must have, and keys of which at most one may be set (the schema's oneOf). */
  readonly required?: readonly string[];
  readonly oneOf?: readonly string[];
  /** Lengths of a string, items of a list, entries of a map, as the schema bounds them. */
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly minItems?: number;
  readonly maxItems?: number;
  readonly maxProperties?: number;
}

export function readFields(): Field[] {
  const text = readFileSync(fileURLToPath(new URL('../../../test/fixtures/schema/istio-fields.txt', import.meta.url)), 'utf8');
  const out: Field[] = [];
  let kind = '';
  let apiVersion = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    if (!line.startsWith(' ')) {
      [kind = '', apiVersion = ''] = line.split(' ');
      continue;
    }
    const [path = '', type = '', ...extra] = line.trim().split(' ');
    const opt = (k: string) => extra.find((e) => e.startsWith(`${k}=`))?.slice(k.length + 1);
    const lists = Object.fromEntries((['enum', 'required', 'oneOf'] as const).flatMap((k) => (opt(k) ? [[k === 'enum' ? 'enumValues' : k, opt(k)!.split(',')]] : [])));
    const numbers = Object.fromEntries((['min', 'max', 'minLength', 'maxLength', 'minItems', 'maxItems', 'maxProperties'] as const).flatMap((k) => (opt(k) !== undefined ? [[k, Number(opt(k))]] : [])));
    out.push({ kind, apiVersion, path: path.split('.'), type, duration: extra.includes('duration'), ...lists, ...numbers });
  }
  return out;
}

/** A value of the field's type that is valid on its own. */
export function sample(f: Field): unknown {
  if (f.enumValues) return f.enumValues.find((e) => !['UNSPECIFIED', 'UNSET', 'DEFAULT'].includes(e)) ?? f.enumValues[0];
  if (f.duration) return '1s';
  switch (f.type) {
    case 'integer':
    case 'int-or-string':
      return Math.max(1, f.min ?? 1);
    case 'number':
      return Math.max(1, f.min ?? 1);
    case 'boolean':
      return true;
    case 'object':
      return {};
    case 'array':
      return [];
    default:
      return 'x';
  }
}

/** The spec with `leaf` at `path` (`-` a one-item list, `*` a map entry named k). */
export function specWith(path: readonly string[], leaf: unknown): unknown {
  let v = leaf;
  for (let i = path.length - 1; i >= 0; i--) {
    const p = path[i]!;
    v = p === '-' ? [v] : p === '*' ? { k: v } : { [p]: v };
  }
  return v;
}

/** `spec.a[0].b.k` for path a.-.b.* */
export function fieldName(path: readonly string[]): string {
  return ['spec', ...path].map((p) => (p === '-' ? '[0]' : p === '*' ? 'k' : p)).join('.').replaceAll('.[0]', '[0]');
}

export function problems(f: Field, leaf: unknown): Problem[] {
  const found: Problem[] = [];
  const r = resourceFromObject({ apiVersion: f.apiVersion, kind: f.kind, metadata: { name: 't', namespace: 'default' }, spec: specWith(f.path, leaf) }, { file: 't.yaml', line: 1, order: 0, lineOf: () => 1 }, found);
  assert.ok(r, `${f.kind} must load`);
  return validateResource(r);
}

