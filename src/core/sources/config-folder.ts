// A config folder read again and again (FileSource): only the files whose state on disk changed, or
// that a watch event named, are read and parsed again; the others keep their parsed resources, the
// very same objects, so a reload of a large folder costs what the edit costs and a poll of an unchanged
// folder costs a stat per file. In a file read again, a document whose text, line and place are as
// before is not parsed again, and one that reads exactly as before (the same fields, values and
// lines) keeps its old object too, so that an edit of one resource in a file of a hundred parses and
// touches that one resource: what was built from the others is reused. Resources are numbered across the folder (file order, then document
// order) as loadConfigDir numbers them, so precedence by order is the same either way.

import { readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { configFileNames, parseConfigText, type LoadResult, type ParsedDocument } from '../config/load.js';
import { embeddedYamlFields } from '../config/embedded-yaml.js';
import type { FieldPath, Resource } from '../model/resource.js';

interface ParsedFile {
  /** What stat said when the file was read: inode, size, modification and change times. */
  readonly stamp: string;
  readonly text: string;
  readonly result: LoadResult;
  /** Its documents as parsed, for the next read of the file to keep those whose text is the same. */
  readonly documents: readonly ParsedDocument[];
  /** The order of its first resource in the folder, as its resources are numbered now. */
  readonly firstOrder: number;
}

export class ConfigFolder {
  readonly #files = new Map<string, ParsedFile>();
  /** Names a watch event reported: read again even if stat shows nothing (a rewrite within one tick). */
  readonly #named = new Set<string>();
  #names: string[] = [];
  /** What the last read gave. */
  #last: LoadResult | undefined;

  constructor(
    private readonly dir: string,
    private readonly displayDir = dir,
  ) {}

  /** A watch event: `name` changed (or, without one, anything may have). */
  markChanged(name?: string): void {
    if (name) this.#named.add(name);
    else this.#files.clear();
  }

  /** The folder's resources now, and whether they differ from the last read. */
  async read(): Promise<{ result: LoadResult; changed: boolean }> {
    const names = await configFileNames(this.dir);
    let changed = names.length !== this.#names.length || names.some((n, i) => n !== this.#names[i]);
    const named = new Set(this.#named);
    this.#named.clear();
    const files: ParsedFile[] = [];
    const present: string[] = [];
    let count = 0;
    for (const name of names) {
      const file = await this.#readFile(name, count, named.has(name));
      if (!file) {
        changed = true;
        continue;
      }
      if (file.changed) changed = true;
      present.push(name);
      files.push(file.parsed);
      count += file.parsed.result.resources.length;
    }
    const kept = new Set(present);
    for (const gone of [...this.#files.keys()].filter((n) => !kept.has(n))) this.#files.delete(gone);
    this.#names = present;
    // A read that finds nothing new (a poll) gives the last result itself: nothing is allocated
    // for a folder of 10,000 services that nobody touched.
    if (!changed && this.#last) return { result: this.#last, changed };
    const resources: Resource[] = [];
    const problems: LoadResult['problems'] = [];
    for (const file of files) {
      for (const r of file.result.resources) resources.push(r);
      for (const p of file.result.problems) problems.push(p);
    }
    this.#last = { resources, problems };
    return { result: this.#last, changed };
  }

  async #readFile(name: string, firstOrder: number, named: boolean): Promise<{ parsed: ParsedFile; changed: boolean } | undefined> {
    const path = join(this.dir, name);
    let stamp: string;
    let text: string;
    const known = this.#files.get(name);
    try {
      const s = await stat(path);
      if (!s.isFile()) return undefined;
      stamp = `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
      if (known && known.stamp === stamp && !named) return { parsed: this.#renumbered(name, known, firstOrder), changed: false };
      text = await readFile(path, 'utf8');
    } catch (err) {
      // A file that vanished between the listing and the read (an editor's rename) is not there this time.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'EISDIR') return undefined;
      throw err;
    }
    if (known && known.text === text) return { parsed: this.#renumbered(name, { ...known, stamp }, firstOrder), changed: false };
    const shown = join(this.displayDir, relative(this.dir, path));
    const { documents, ...read } = parseConfigText(text, shown, firstOrder, known?.documents);
    const result = known ? keepUnchanged(known.result, read) : read;
    const parsed: ParsedFile = { stamp, text, result, documents: holding(documents, result.resources, 0), firstOrder };
    this.#files.set(name, parsed);
    return { parsed, changed: true };
  }

  /** The file's resources numbered from `firstOrder` (new objects only when a file before it changed size). */
  #renumbered(name: string, file: ParsedFile, firstOrder: number): ParsedFile {
    if (file.firstOrder === firstOrder) {
      this.#files.set(name, file);
      return file;
    }
    const shift = firstOrder - file.firstOrder;
    const resources = file.result.resources.map((r) => ({ ...r, origin: { ...r.origin, order: r.origin.order + shift } }));
    const moved: ParsedFile = { ...file, firstOrder, result: { resources, problems: file.result.problems }, documents: holding(file.documents, resources, shift) };
    this.#files.set(name, moved);
    return moved;
  }
}

/**
 * The documents with `resources` (the file's, in document order) in their places and their order
 * moved by `shift`: what the next read takes from them is what this read gave, and they keep
 * alive no objects the folder no longer serves.
 */
function holding(documents: readonly ParsedDocument[], resources: readonly Resource[], shift: number): ParsedDocument[] {
  let at = 0;
  return documents.map((d) => ({ ...d, firstOrder: d.firstOrder + shift, resources: resources.slice(at, (at += d.resources.length)) }));
}

/**
 * `now` with each resource that is the same as the one at its place in `before` replaced by that old
 * object: same kind, name, position and start line, and the same fields with the same values on the
 * same lines (so that every problem found in it would say the same thing).
 */
function keepUnchanged(before: LoadResult, now: LoadResult): LoadResult {
  let kept = 0;
  const resources = now.resources.map((r, i) => {
    const old = before.resources[i];
    if (!old || (old !== r && !sameDocument(old, r))) return r;
    kept++;
    return old;
  });
  return kept === 0 ? now : { resources, problems: now.problems };
}

function sameDocument(a: Resource, b: Resource): boolean {
  const x = a.origin;
  const y = b.origin;
  if (x.file !== y.file || x.line !== y.line || x.order !== y.order || a.kind !== b.kind || a.apiVersion !== b.apiVersion) return false;
  // The mesh config's text indented anew keeps its lines but moves a syntax error's column.
  for (const f of embeddedYamlFields(a.raw)) if (x.textStart?.(f)?.indent !== y.textStart?.(f)?.indent) return false;
  return sameTree(a.raw, b.raw, [], x.lineOf, y.lineOf);
}

function sameTree(x: unknown, y: unknown, path: FieldPath, lineA: (p: FieldPath) => number, lineB: (p: FieldPath) => number): boolean {
  if (lineA(path) !== lineB(path)) return false;
  if (Array.isArray(x)) {
    if (!Array.isArray(y) || x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!sameTree(x[i], y[i], [...path, i], lineA, lineB)) return false;
    return true;
  }
  if (typeof x === 'object' && x !== null) {
    if (typeof y !== 'object' || y === null || Array.isArray(y) || Object.getPrototypeOf(x) !== Object.prototype || Object.getPrototypeOf(y) !== Object.prototype) return false;
    const kx = Object.keys(x);
    const ky = Object.keys(y);
    if (kx.length !== ky.length) return false;
    for (let i = 0; i < kx.length; i++) {
      const k = kx[i]!;
      if (k !== ky[i] || !sameTree((x as Record<string, unknown>)[k], (y as Record<string, unknown>)[k], [...path, k], lineA, lineB)) return false;
    }
    return true;
  }
  return Object.is(x, y);
}
