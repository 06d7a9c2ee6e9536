// The line of every field of one parsed YAML document, kept as a small table so that the document's
// syntax tree can be let go once it is read. Keeping the tree alive for `lineOf()` cost about 80 KB per
// service and made memory grow with every reload of a large configuration. The table has the shape of
// the document: one array per mapping or sequence, holding its own line and then, per field, the line
// of a scalar (the line of the key that holds it) or the nested array of a mapping or sequence. A table
// keyed by joined field paths cost a hash table and a string per field: at 10,000 services that was a
// third of the heap the parsed folder held.

import type { Document } from 'yaml';
import { yaml } from './yaml-module.js';
import type { FieldPath } from '../model/resource.js';

/**
 * A mapping: `[line, key, lines, key, lines, …]`; a sequence: `[line, lines, lines, …]` (item i at
 * i + 1). `lines` is a number (a scalar's line) or the table of a nested mapping or sequence. A field
 * whose position the parser did not give is left out, as if absent.
 */
type Table = Array<number | string | Table | undefined>;

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
  /** A node's table (a mapping or sequence), its line (anything else with a position), or undefined. */
  const visit = (node: unknown): Table | number | undefined => {
    if (!isNode(node)) return undefined;
    const own = node.range ? lineAt(node.range[0]) : undefined;
    if (isMap(node)) {
      const table: Table = [own];
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const read = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        let k = keys.get(read);
        if (k === undefined) keys.set(read, (k = read));
        // A scalar value's line is its key's line.
        let lines: Table | number | undefined;
        if (isScalar(pair.value) || pair.value === null) lines = isNode(pair.key) && pair.key.range ? lineAt(pair.key.range[0]) : undefined;
        else lines = visit(pair.value);
        if (lines === undefined) continue;
        // A key given twice: the last one counts, as it does in the value read.
        const at = mapField(table, k);
        if (at > 0) table[at + 1] = lines;
        else table.push(k, lines);
      }
      // A copy of exactly its length: the array grown by push keeps room to grow, twice the memory.
      return table.slice();
    }
    if (isSeq(node)) {
      const table: Table = new Array(node.items.length + 1);
      table[0] = own;
      node.items.forEach((item, i) => (table[i + 1] = visit(item)));
      return table;
    }
    return own;
  };
  const top = visit(root);
  return lookup(top, (Array.isArray(top) ? (top[0] as number | undefined) : top) ?? docLine);
}

/** Made apart from lineIndex() so that the function kept per resource holds the table alone, not the parser's state. */
function lookup(top: Table | number | undefined, fallback: number): (path: FieldPath) => number {
  return (path: FieldPath): number => {
    let line = fallback;
    let table: Table | number | undefined = top;
    for (const field of path) {
      if (!Array.isArray(table)) break;
      const next: Table | number | undefined = typeof table[1] === 'string' || table.length === 1 ? fieldOf(table, field) : itemOf(table, field);
      if (next === undefined) break;
      const nextLine = Array.isArray(next) ? (next[0] as number | undefined) : next;
      if (nextLine === undefined) break;
      line = nextLine;
      table = next;
    }
    return line;
  };
}

/** The index of key `k` in a mapping's table, or -1. */
function mapField(table: Table, k: string): number {
  for (let i = 1; i < table.length; i += 2) if (table[i] === k) return i;
  return -1;
}

function fieldOf(table: Table, field: string | number): Table | number | undefined {
  const at = mapField(table, String(field));
  return at > 0 ? (table[at + 1] as Table | number) : undefined;
}

function itemOf(table: Table, field: string | number): Table | number | undefined {
  const i = Number(field);
  if (!Number.isInteger(i) || i < 0 || String(i) !== String(field) || i + 1 >= table.length) return undefined;
  return table[i + 1] as Table | number | undefined;
}
