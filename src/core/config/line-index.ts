// The line of every field of one parsed YAML document, kept as a small table so that the document's
// syntax tree can be let go once it is read. Keeping the tree alive for `lineOf()` cost about 80 KB per
// service and made memory grow with every reload of a large configuration. A table keyed by joined
// field paths cost a hash table and a string per field; one array per mapping or sequence cost each
// of them an array's header (48 bytes) besides its items, which was most of the table: at 10,000
// services the line tables were a sixth of the gateway's heap. So a document's table is one array.

import type { Document } from 'yaml';
import { yaml } from './yaml-module.js';
import type { FieldPath } from '../model/resource.js';

/**
 * Every mapping and sequence of the document in one array, each a node at some index `n` (from 1):
 * `table[n]` is its line (0 where the parser gave no position) and `table[n + 1]` its size, `count`
 * for a mapping of `count` fields and `-1 - count` for a sequence of `count` items. Then a mapping
 * has `key, value` per field and a sequence `value` per item, where a value is a scalar's line
 * (0: unknown; a mapping field whose line is unknown is left out, as if absent) or, negated, the
 * index of a nested mapping or sequence.
 */
type Table = Array<number | string>;

/** Where an offset of the parsed text is in its file (the parser's LineCounter, or one shifted to where the text starts). */
export interface Lines {
  linePos(offset: number): { line: number; col: number };
}

/**
 * `lineOf` for the value at `base` of `doc`: the line of the deepest field of the path that exists.
 * `keys` holds one string per field name seen, shared by the tables of every document of a file
 * (the parser gives each occurrence a string of its own).
 */
export function lineIndex(doc: Document.Parsed, lineCounter: Lines, base: FieldPath, keys: Map<string, string> = new Map()): (path: FieldPath) => number {
  const { isMap, isNode, isPair, isScalar, isSeq } = yaml();
  const docLine = lineCounter.linePos(doc.range?.[0] ?? 0).line;
  const root = base.length === 0 ? doc.contents : doc.getIn(base, true);
  const lineAt = (offset: number): number => lineCounter.linePos(offset).line;
  const table: Table = [0]; // nodes start at 1, so that a node's reference is never 0
  /** A node's value in its parent: its line (a scalar; 0 when unknown), minus the index of its node (a mapping or sequence), or undefined. */
  const visit = (node: unknown): number | undefined => {
    if (!isNode(node)) return undefined;
    const own = node.range ? lineAt(node.range[0]) : 0;
    if (isMap(node)) {
      const fields: Array<string | number> = [];
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const read = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        let k = keys.get(read);
        if (k === undefined) keys.set(read, (k = read));
        // A scalar value's line is its key's line.
        let value: number | undefined;
        if (isScalar(pair.value) || pair.value === null) value = isNode(pair.key) && pair.key.range ? lineAt(pair.key.range[0]) : undefined;
        else value = visit(pair.value);
        if (value === undefined || value === 0) continue;
        // A key given twice: the last one counts, as it does in the value read.
        const at = fields.indexOf(k);
        if (at >= 0 && at % 2 === 0) fields[at + 1] = value;
        else fields.push(k, value);
      }
      return -add(table, own, fields.length / 2, fields);
    }
    if (isSeq(node)) {
      const items = node.items.map((item) => visit(item) ?? 0);
      return -add(table, own, -1 - items.length, items);
    }
    return own;
  };
  const top = visit(root) ?? 0;
  const topLine = top < 0 ? (table[-top] as number) : top;
  // A copy of exactly its length: an array grown by push keeps room to grow.
  return lookup(table.slice(), top, topLine === 0 ? docLine : topLine);
}

/** Appends a node (its nested nodes are in already) and gives its index. */
function add(table: Table, line: number, size: number, values: ReadonlyArray<number | string>): number {
  const at = table.length;
  table.push(line, size);
  for (const v of values) table.push(v);
  return at;
}

/**
 * Made apart from lineIndex() so that the function kept per resource holds the table alone, not the
 * parser's state. `top`: the root's value, as a parent would hold it.
 */
function lookup(table: Table, top: number, fallback: number): (path: FieldPath) => number {
  return (path: FieldPath): number => {
    let line = fallback;
    let value = top;
    for (const field of path) {
      if (value >= 0) break; // a scalar (or nothing): no fields below it
      const next = fieldValue(table, -value, field);
      if (next === undefined || next === 0) break;
      const nextLine = next > 0 ? next : (table[-next] as number);
      if (nextLine === 0) break;
      line = nextLine;
      value = next;
    }
    return line;
  };
}

/** The value of `field` in the node at `n`, or undefined. */
function fieldValue(table: Table, n: number, field: string | number): number | undefined {
  const size = table[n + 1] as number;
  if (size >= 0) {
    const k = String(field);
    for (let i = n + 2; i < n + 2 + 2 * size; i += 2) if (table[i] === k) return table[i + 1] as number;
    return undefined;
  }
  const count = -1 - size;
  const i = Number(field);
  if (!Number.isInteger(i) || i < 0 || String(i) !== String(field) || i >= count) return undefined;
  return table[n + 2 + i] as number;
}
