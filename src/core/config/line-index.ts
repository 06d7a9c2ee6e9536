// The line of every field of one parsed YAML document, kept as a small table so that the document's
// syntax tree can be let go once it is read. Keeping the tree alive for `lineOf()` cost about 80 KB per
// service and made memory grow with every reload of a large configuration; the table keeps one number
// per field of a mapping or sequence, and scalars answer with the line of the field that holds them.

import type { Document, LineCounter } from 'yaml';
import { yaml } from './yaml-module.js';
import type { FieldPath } from '../model/resource.js';

/** Field paths joined with a character that no key contains. */
const SEP = '\u0000';

/** `lineOf` for the value at `base` of `doc`: the line of the deepest field of the path that exists. */
export function lineIndex(doc: Document.Parsed, lineCounter: LineCounter, base: FieldPath): (path: FieldPath) => number {
  const { isMap, isNode, isPair, isScalar, isSeq } = yaml();
  const lines = new Map<string, number>();
  const docLine = lineCounter.linePos(doc.range?.[0] ?? 0).line;
  const root = base.length === 0 ? doc.contents : doc.getIn(base, true);
  const visit = (node: unknown, key: string): void => {
    if (!isNode(node)) return;
    if (node.range) lines.set(key, lineCounter.linePos(node.range[0]).line);
    if (isMap(node)) {
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const k = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        const childKey = key === '' ? k : key + SEP + k;
        // A scalar value's line is its key's line: record the key's position, skip the scalar node.
        if (isScalar(pair.value) || pair.value === null) {
          const at = isNode(pair.key) && pair.key.range ? pair.key.range[0] : undefined;
          if (at !== undefined) lines.set(childKey, lineCounter.linePos(at).line);
        } else visit(pair.value, childKey);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => visit(item, key === '' ? String(i) : key + SEP + String(i)));
    }
  };
  visit(root, '');
  const fallback = lines.get('') ?? docLine;
  return (path: FieldPath): number => {
    for (let n = path.length; n > 0; n--) {
      const line = lines.get(path.slice(0, n).join(SEP));
      if (line !== undefined) return line;
    }
    return fallback;
  };
}
