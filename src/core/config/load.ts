// Reads configuration text (YAML or JSON, many documents per file) into Resources that remember the
// file and line of every field, so validation can say exactly where a problem is.

import { readdirSync, statSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { Document } from 'yaml';
import { yaml } from './yaml-module.js';
import type { FieldPath, ObjectMeta, Origin, Resource } from '../model/resource.js';
import type { Problem } from './problem.js';
import { internalKind, knownKind, meantKind, unrunKind } from './kinds.js';
import { lineIndex, type Lines } from './line-index.js';
import { blockTextStarts, embeddedYamlFields, withEmbeddedLines } from './embedded-yaml.js';

export interface LoadResult {
  readonly resources: Resource[];
  readonly problems: Problem[];
}

const CONFIG_FILE = /\.(ya?ml|json)$/i;

/**
 * Every *.yaml, *.yml and *.json directly in `dir` (hidden entries, such as a ConfigMap mount's
 * `..data`, are skipped; the visible names are symlinks into it), in name order.
 * `displayDir` is how file names are shown in problems (defaults to `dir` as given).
 */
export async function loadConfigDir(dir: string, displayDir = dir): Promise<LoadResult> {
  const entries = await configFileNames(dir);
  const resources: Resource[] = [];
  const problems: Problem[] = [];
  for (const name of entries) {
    const path = join(dir, name);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      // A file that vanished between readdir and read (an editor's rename) is simply not there this time.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'EISDIR') continue;
      throw err;
    }
    const shown = join(displayDir, relative(dir, path));
    const result = parseConfigText(text, shown, resources.length);
    resources.push(...result.resources);
    problems.push(...result.problems);
  }
  return { resources, problems };
}

/** The names of the configuration files directly in `dir`, in the order they are read. */
export async function configFileNames(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => !n.startsWith('.') && CONFIG_FILE.test(n)).sort();
}

/** Why `dir` cannot be read as a config folder (it is missing, not a folder, not readable), or undefined. */
export function configDirProblem(dir: string): string | undefined {
  try {
    if (!statSync(dir).isDirectory()) return `${dir} is not a folder`;
    readdirSync(dir);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return `config folder ${dir} does not exist`;
    if (code === 'EACCES' || code === 'EPERM') return `config folder ${dir} cannot be read (permission denied)`;
    return `config folder ${dir} cannot be read (${code ?? (err as Error).message})`;
  }
}

/** One document of a file (or, where the file cannot be split, all of it) and what it gave. */
export interface ParsedDocument {
  readonly text: string;
  /** 1-based line of the file where `text` starts. */
  readonly line: number;
  /** The order of its first resource. */
  readonly firstOrder: number;
  readonly resources: readonly Resource[];
  readonly problems: readonly Problem[];
}

export interface ParsedText extends LoadResult {
  readonly documents: readonly ParsedDocument[];
}

/**
 * Parses one file's text. `firstOrder` numbers the resources after those already loaded. `before`,
 * what the same file's previous text gave: a document whose text, line and order are as they were
 * is taken from it, not parsed again, so an edit of one document in a file of hundreds parses one.
 */
export function parseConfigText(text: string, file: string, firstOrder = 0, before: readonly ParsedDocument[] = []): ParsedText {
  const known = new Map(before.map((d) => [d.text, d]));
  const keys = new Map<string, string>();
  const documents: ParsedDocument[] = [];
  const resources: Resource[] = [];
  const problems: Problem[] = [];
  for (const part of documentTexts(text)) {
    const order = firstOrder + resources.length;
    const kept = known.get(part.text);
    const parsed = kept && kept.line === part.line && kept.firstOrder === order ? kept : parseDocuments(part.text, part.line, file, order, keys);
    documents.push(parsed);
    for (const r of parsed.resources) resources.push(r);
    for (const p of parsed.problems) problems.push(p);
  }
  return { resources, problems, documents };
}

/**
 * The file cut at its `---` lines, each part with the line it starts on. A `---` at the start of a
 * line always begins a document in YAML (it may not occur inside a value), so each part parses as
 * it would within the file. Parsed apart, each document's syntax tree dies young instead of living
 * until the whole file is read: at 10,000 services that kept hundreds of MB of old-generation pages
 * fragmented after the first read. A directive (`%YAML`, `%TAG`) belongs to the document after it:
 * such a file is parsed whole.
 */
function documentTexts(text: string): Array<{ text: string; line: number }> {
  if (text.startsWith('%') || text.includes('\n%')) return [{ text, line: 1 }];
  const parts: Array<{ text: string; line: number }> = [];
  let start = 0;
  let line = 1;
  let lines = 0;
  for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', nl + 1)) {
    lines++;
    if (!text.startsWith('---', nl + 1) || !/^[ \t\r\n]?$/.test(text.charAt(nl + 4))) continue;
    parts.push({ text: text.slice(start, nl + 1), line });
    start = nl + 1;
    line += lines;
    lines = 0;
  }
  parts.push({ text: text.slice(start), line });
  return parts;
}

/** The documents of `text`, which starts on line `startLine` of `file`. */
function parseDocuments(text: string, startLine: number, file: string, firstOrder: number, keys: Map<string, string>): ParsedDocument {
  const { LineCounter, parseAllDocuments } = yaml();
  const counter = new LineCounter();
  const lineCounter: Lines = { linePos: (offset) => { const { line, col } = counter.linePos(offset); return { line: line + startLine - 1, col }; } };
  const docs = parseAllDocuments(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: false });
  const resources: Resource[] = [];
  const problems: Problem[] = [];
  const docList = Array.isArray(docs) ? docs : [docs];
  // Only text with `:,` or `:]` somewhere can hold such an item: the rest need not be walked again.
  const flowColons = text.includes(':,') || text.includes(':]');
  for (const doc of docList) {
    const docLine = lineCounter.linePos(doc.range?.[0] ?? 0).line;
    const error = doc.errors[0];
    if (error) {
      // The first error is the mistake; the parser's later ones in the same document only follow from it.
      const { line, col } = lineCounter.linePos(error.pos?.[0] ?? 0);
      problems.push({ severity: 'error', file, line, column: col, resource: '', field: '', message: `cannot parse: ${firstLine(error.message)}` });
      continue;
    }
    if (flowColons) readFlowColonsAsKubernetesDoes(doc, text);
    const value: unknown = exactArrays(doc.toJS({ maxAliasCount: 100 }), new Map());
    if (value === null || value === undefined) continue; // empty document (`---` at the end of a file)
    if (!isRecord(value)) {
      problems.push({ severity: 'error', file, line: docLine, resource: '', field: '', message: 'a document must be a mapping with apiVersion, kind and metadata' });
      continue;
    }
    // `kind: List` (what `kubectl get -o yaml` prints) carries its objects in items[].
    if (value.kind === 'List' || (typeof value.kind === 'string' && value.kind.endsWith('List') && Array.isArray(value.items))) {
      const items = Array.isArray(value.items) ? value.items : [];
      items.forEach((item, i) => {
        const r = toResource(item, doc, text, lineCounter, keys, file, ['items', i], firstOrder + resources.length, problems);
        if (r) resources.push(r);
      });
      continue;
    }
    const r = toResource(value, doc, text, lineCounter, keys, file, [], firstOrder + resources.length, problems);
    if (r) resources.push(r);
  }
  return { text, line: startLine, firstOrder, resources, problems };
}

/**
 * The parsed value with each array copied to exactly its length. The parser fills arrays by `push`,
 * which leaves room for 17 items in a list of one or two: at 10,000 services that room was about a
 * tenth of the heap the parsed folder keeps. Objects are changed in place; an array met twice (a YAML
 * alias) gives the same copy both times, so shared and cyclic values stay so.
 */
function exactArrays(value: unknown, copies: Map<unknown[], unknown[]>): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    let copy = copies.get(value);
    if (copy) return copy;
    copies.set(value, (copy = value.slice()));
    for (let i = 0; i < copy.length; i++) copy[i] = exactArrays(copy[i], copies);
    return copy;
  }
  if (Object.getPrototypeOf(value) !== Object.prototype || copies.has(value as unknown[])) return value;
  copies.set(value as unknown[], value as unknown[]);
  const record = value as Record<string, unknown>;
  for (const k in record) {
    const v = record[k];
    if (typeof v === 'object' && v !== null) record[k] = exactArrays(v, copies);
  }
  return value;
}

/**
 * `[1.2.3.4, 2001:db8::]`: a YAML 1.2 reader takes the last `:` of `2001:db8::` as a mapping indicator
 * and makes `{ "2001:db8:": null }`; the reader Kubernetes uses gives the string, and so Istio
 * accepts the address. An item of a flow list that is a single key ending right before `:` and then
 * `,` or `]` (no space) is turned back into that text. `[a: ]` (with a space) stays a mapping.
 */
function readFlowColonsAsKubernetesDoes(doc: Document.Parsed, text: string): void {
  const { isMap, isScalar, Scalar, visit } = yaml();
  visit(doc, {
    Seq(_, seq) {
      if (!seq.flow) return;
      seq.items.forEach((item, i) => {
        if (!isMap(item) || item.items.length !== 1) return;
        const { key, value } = item.items[0]!;
        if (!isScalar(key) || key.type !== 'PLAIN' || !key.range || (isScalar(value) && value.value !== null && value.source !== '')) return;
        const end = key.range[1];
        if (text[end] !== ':' || (text[end + 1] !== ',' && text[end + 1] !== ']')) return;
        const scalar = new Scalar(`${String(key.value)}:`);
        scalar.range = [key.range[0], end + 1, end + 1];
        seq.items[i] = scalar;
      });
    },
  });
}

function toResource(
  value: unknown,
  doc: Document.Parsed,
  source: string,
  lineCounter: Lines,
  keys: Map<string, string>,
  file: string,
  base: FieldPath,
  order: number,
  problems: Problem[],
): Resource | undefined {
  const lineOf = lineIndex(doc, lineCounter, base, keys);
  // Where embedded YAML (the mesh config) starts is read now, while the syntax tree is at hand.
  const embedded = embeddedYamlFields(value);
  const textStart = embedded.length > 0 ? blockTextStarts(doc, source, lineCounter, base, embedded) : undefined;
  return resourceFromObject(value, { file, line: lineOf([]), order, lineOf, ...(textStart ? { textStart } : {}) }, problems);
}

/**
 * Builds a Resource from a plain object (a parsed document, or an object read from the Kubernetes
 * API) and where it came from. Anything that is not a resource meshgate reads is reported into
 * `problems` (pointing at `origin`) and gives undefined.
 */
export function resourceFromObject(value: unknown, origin: Origin, problems: Problem[]): Resource | undefined {
  const { file, lineOf } = origin;
  const at = (path: FieldPath, message: string, resource = ''): void => {
    problems.push({ severity: 'error', file, line: lineOf(path), resource, field: path.join('.'), message });
  };
  if (!isRecord(value)) {
    at([], 'a document must be a mapping with apiVersion, kind and metadata');
    return undefined;
  }
  const { apiVersion, metadata } = value;
  const kind = typeof apiVersion === 'string' && typeof value.kind === 'string' ? internalKind(apiVersion, value.kind) : value.kind;
  if (typeof apiVersion !== 'string' || apiVersion === '') return at(['apiVersion'], 'apiVersion is required'), undefined;
  if (typeof kind !== 'string' || kind === '') return at(['kind'], 'kind is required'), undefined;
  const known = knownKind(apiVersion, kind);
  // A kind meshgate does not read is only reported, whatever its metadata: some never reach the API
  // server (istioctl installs an IstioOperator that has no name), so a missing name is not ours to judge.
  if (known === 'unknown') {
    const meant = unrunKind(apiVersion, kind) ?? meantKind(apiVersion, kind);
    problems.push({ severity: 'warning', file, line: lineOf(['kind']), resource: looseRef(kind, metadata), field: 'kind', message: `${apiVersion} ${kind} is not a kind meshgate reads; ignored${meant ? `; ${meant}` : ''}` });
    return undefined;
  }
  if (!isRecord(metadata) || typeof metadata.name !== 'string' || metadata.name === '') {
    return at(['metadata', 'name'], 'metadata.name is required', kind), undefined;
  }
  const namespace = namespaceOf(metadata);
  const ref = looseRef(kind, metadata);
  if (known === 'unsupported-version') {
    problems.push({ severity: 'error', file, line: lineOf(['apiVersion']), resource: ref, field: 'apiVersion', message: `${apiVersion} is not a supported version of ${kind}` });
    return undefined;
  }
  if (known === 'quiet') return undefined;
  const meta: ObjectMeta = {
    name: metadata.name,
    namespace,
    labels: stringMap(metadata.labels),
    annotations: stringMap(metadata.annotations),
    ...(metadata.creationTimestamp !== undefined ? { creationTimestamp: timestampText(metadata.creationTimestamp) } : {}),
    ...(typeof metadata.resourceVersion === 'string' ? { resourceVersion: metadata.resourceVersion } : {}),
  };
  const spec = value.spec === undefined || value.spec === null ? {} : value.spec;
  return Object.freeze({ apiVersion, kind, metadata: meta, spec, origin: withEmbeddedLines(origin, value), raw: value });
}

function namespaceOf(metadata: Record<string, unknown>): string {
  return typeof metadata.namespace === 'string' && metadata.namespace !== '' ? metadata.namespace : 'default';
}

/** `Kind namespace/name` as far as the metadata gives it: `Kind` alone when there is no name. */
function looseRef(kind: string, metadata: unknown): string {
  if (!isRecord(metadata) || typeof metadata.name !== 'string' || metadata.name === '') return kind;
  return `${kind} ${namespaceOf(metadata)}/${metadata.name}`;
}

function timestampText(v: unknown): string {
  return v instanceof Date ? v.toISOString() : String(v);
}

function stringMap(v: unknown): Record<string, string> {
  if (!isRecord(v)) return {};
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) if (val !== null && val !== undefined) out[k] = String(val);
  return out;
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
