// Fields whose value is a YAML document of its own that meshgate reads: the mesh config, a string at
// `data.mesh` of the ConfigMap `istio` in istio-system (written as a block scalar, `mesh: |`). To the
// ConfigMap it is one string, so its fields have no lines of their own; here the text is read again
// with a line counter so that a problem in `defaultConfig.tracing.sampling` names the line of
// `sampling` inside the block, not the line of `mesh:`. Istio reads no other embedded YAML that
// meshgate serves (`data.meshNetworks` and the injector's templates are not read at all).
//
// Where the text sits is the source's to say (Origin.textStart): a file knows the line and
// indentation of a literal block scalar (`|`, whose lines are the text's lines one for one); a
// folded (`>`) or quoted scalar has no such mapping, and its fields keep the line of the key. A
// resource read from the Kubernetes API has no file, so its embedded lines count from the text's own
// first line.

import type { Document } from 'yaml';
import { yaml } from './yaml-module.js';
import { lineIndex, type Lines } from './line-index.js';
import type { FieldPath, Origin, TextStart } from '../model/resource.js';

const MESH_FIELD: FieldPath = ['data', 'mesh'];
const NONE: readonly FieldPath[] = [];
const MESH: readonly FieldPath[] = [MESH_FIELD];

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The embedded-YAML fields of an object as read (before it is a Resource): the mesh config's ConfigMap has one. */
export function embeddedYamlFields(raw: unknown): readonly FieldPath[] {
  if (!isObj(raw) || raw['kind'] !== 'ConfigMap' || !isObj(raw['metadata'])) return NONE;
  const { name, namespace } = raw['metadata'];
  return name === 'istio' && namespace === 'istio-system' ? MESH : NONE;
}

export type EmbeddedParse = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly message: string; readonly line: number; readonly column: number };

/** The embedded text read as the mesh config readers read it; a syntax error with its line and column in the text. */
export function parseEmbeddedYaml(text: string): EmbeddedParse {
  try {
    return { ok: true, value: yaml().parse(text) as unknown };
  } catch (err) {
    const at = (err as { linePos?: Array<{ line: number; col: number }> }).linePos?.[0];
    // The parser's own "at line 4, column 1" counts in the text; the problem's position counts in the source.
    const message = ((err as Error).message.split('\n')[0] ?? String(err)).replace(/ at line \d+, column \d+:?$/, '');
    return { ok: false, message, line: at?.line ?? 1, column: at?.col ?? 1 };
  }
}

/** Where line `line`, column `column` of the text at `field` is in the resource's source, when the source knows. */
export function placeInText(origin: Origin, field: FieldPath, line: number, column: number): { line: number; column?: number } {
  const start = origin.textStart?.(field);
  if (!start) return { line: origin.lineOf(field) };
  return { line: start.line + line - 1, column: start.indent + column };
}

/**
 * `origin` with a `lineOf` that also answers paths inside the object's embedded-YAML fields, from a
 * table made when first asked (a problem, or the control plane encoding it), not for every load.
 */
export function withEmbeddedLines(origin: Origin, raw: unknown): Origin {
  const fields = embeddedYamlFields(raw);
  if (fields.length === 0 || !origin.textStart) return origin;
  const tables = new Map<FieldPath, ((path: FieldPath) => number) | null>();
  const inner = (field: FieldPath): ((path: FieldPath) => number) | null => {
    let table = tables.get(field);
    if (table === undefined) tables.set(field, (table = embeddedTable(origin, raw, field)));
    return table;
  };
  const base = origin.lineOf;
  return {
    ...origin,
    lineOf(path: FieldPath): number {
      for (const field of fields) {
        if (path.length <= field.length || !field.every((part, i) => path[i] === part)) continue;
        const table = inner(field);
        if (table) return table(path.slice(field.length));
      }
      return base(path);
    },
  };
}

/** The line table of the text at `field`, in the source's lines; null when it cannot be placed or read. */
function embeddedTable(origin: Origin, raw: unknown, field: FieldPath): ((path: FieldPath) => number) | null {
  let text: unknown = raw;
  for (const part of field) text = isObj(text) ? text[String(part)] : undefined;
  const start = origin.textStart?.(field);
  if (typeof text !== 'string' || !start) return null;
  const { LineCounter, parseDocument } = yaml();
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter });
  if (doc.errors.length > 0) return null;
  const lines: Lines = { linePos: (offset) => counter.linePos(offset) };
  const table = lineIndex(doc, lines, []);
  const top = doc.toJS() as unknown;
  const keyLine = origin.lineOf(field);
  return (path) => {
    // A top-level field that is not there at all (`… is required`): the key of the whole text says more than its first line.
    if (!isObj(top) || !(String(path[0]) in top)) return keyLine;
    return start.line + table(path) - 1;
  };
}

/** `Origin.textStart` of a file's resource at `base` of `doc`, for its embedded `fields`. */
export function blockTextStarts(doc: Document.Parsed, source: string, lines: Lines, base: FieldPath, fields: readonly FieldPath[]): (path: FieldPath) => TextStart | undefined {
  const starts = new Map(fields.map((f) => [JSON.stringify(f), blockTextStart(doc, source, lines, [...base, ...f])] as const));
  return (path) => starts.get(JSON.stringify(path));
}

/**
 * Where the text of the block scalar at `path` of `doc` starts, when it is a literal block (`|`):
 * its first line is the one after the header, and its indentation is that of the first line with
 * text, less the spaces that line keeps in the value. `source` is the text `doc` was parsed from,
 * `lines` gives its offsets' lines in the file.
 */
function blockTextStart(doc: Document.Parsed, source: string, lines: Lines, path: FieldPath): TextStart | undefined {
  const { isScalar } = yaml();
  const node = doc.getIn(path, true);
  if (!isScalar(node) || node.type !== 'BLOCK_LITERAL' || !node.range || typeof node.value !== 'string') return undefined;
  const header = lines.linePos(node.range[0]).line;
  const firstLine = source.indexOf('\n', node.range[0]) + 1;
  if (firstLine === 0) return undefined;
  const valueLines = node.value.split('\n');
  let offset = firstLine;
  for (let i = 0; i < valueLines.length && offset < node.range[1]; i++) {
    const end = source.indexOf('\n', offset);
    const rawLine = source.slice(offset, end === -1 ? undefined : end).replace(/\r$/, '');
    const text = valueLines[i]!;
    if (text.trim() !== '') {
      const indent = rawLine.length - rawLine.trimStart().length - (text.length - text.trimStart().length);
      return { line: header + 1, indent };
    }
    if (end === -1) break;
    offset = end + 1;
  }
  return undefined;
}
