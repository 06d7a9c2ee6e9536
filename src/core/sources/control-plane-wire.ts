// What travels between the control plane and its proxies: the HTTP paths, the JSON bodies, the lines
// of the configuration stream, and how a Resource crosses the wire without losing where it came
// from. A resource carries its object as read plus a table of field path → line, so a problem that
// a proxy finds still names the control plane's file and line.

import { createHash } from 'node:crypto';
import { isRecord, resourceFromObject, type LoadResult } from '../config/load.js';
import type { Problem } from '../config/problem.js';
import type { FieldPath, Origin, Resource, TextStart } from '../model/resource.js';
import { embeddedYamlFields } from '../config/embedded-yaml.js';

export const STREAM_PATH = '/v1/config/stream';
export const ACK_PATH = '/v1/config/ack';
export const CERTIFICATES_PATH = '/v1/certificates';

/** The port Istio's control plane serves proxies on (config and certificates, TLS). */
export const CONTROL_PLANE_PORT = 15012;

export interface WireOrigin {
  readonly file: string;
  readonly line: number;
  readonly order: number;
  /** `JSON.stringify(path)` → line, only where a field's line differs from its parent's. */
  readonly lines: Readonly<Record<string, number>>;
  /** `JSON.stringify(path)` → [line, indent] where an embedded YAML text (the mesh config) starts (Origin.textStart). */
  readonly texts?: Readonly<Record<string, readonly [number, number]>>;
}

export interface WireResource {
  readonly origin: WireOrigin;
  readonly object: unknown;
}

/**
 * One line of the stream (NDJSON). `hello` comes first, then `config` (the proxy's whole set) at
 * once; after that each change is a `delta` from the version the proxy has (`base`) to `version`:
 * the resources added or changed, and the keys (resourceKey) of those removed. A proxy whose
 * version is not `base`, or that cannot read a delta, keeps what it runs and subscribes again,
 * which starts with a whole `config`.
 */
export type StreamMessage =
  | { readonly type: 'hello'; readonly proxy: string; readonly identity: string; readonly heartbeatMs: number }
  | { readonly type: 'config'; readonly version: string; readonly resources: readonly WireResource[] }
  | { readonly type: 'delta'; readonly version: string; readonly base: string; readonly updated: readonly WireResource[]; readonly removed: readonly string[] }
  | { readonly type: 'heartbeat' }
  /** Not sent: what a proxy makes of a `delta` line it cannot read. */
  | { readonly type: 'bad-delta'; readonly reason: string };

/** What a proxy tells about itself when it subscribes (its namespace comes from its token). */
export interface ProxyDescription {
  /** `gateway` or `sidecar` (the default: the narrower of the two). */
  readonly role: 'sidecar' | 'gateway';
  /** Its workload labels: which Gateways, Sidecars and policies select it. */
  readonly labels: Readonly<Record<string, string>>;
}

/** How a resource is named in a delta: one per kind, namespace and name (as the API server allows). */
export function resourceKey(r: { readonly kind: string; readonly metadata: { readonly namespace: string; readonly name: string } }): string {
  return `${r.kind}/${r.metadata.namespace}/${r.metadata.name}`;
}

/** `role=gateway&labels=istio%3Dingressgateway`: the query a stream subscription carries beside `proxy=`. */
export function describeQuery(d: ProxyDescription): string {
  const labels = Object.entries(d.labels).map(([k, v]) => `${k}=${v}`).join(',');
  return `role=${d.role}${labels ? `&labels=${encodeURIComponent(labels)}` : ''}`;
}

const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;
const MAX_LABELS = 64;

/** The control plane's reading of that query; a message when it is malformed. */
export function parseDescription(params: URLSearchParams): ProxyDescription | string {
  const role = params.get('role') ?? 'sidecar';
  if (role !== 'sidecar' && role !== 'gateway') return `role must be sidecar or gateway, not ${JSON.stringify(role.slice(0, 40))}`;
  const labels: Record<string, string> = {};
  const text = params.get('labels') ?? '';
  const pairs = text === '' ? [] : text.split(',');
  if (pairs.length > MAX_LABELS) return `at most ${MAX_LABELS} labels`;
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const k = eq < 0 ? pair : pair.slice(0, eq);
    const v = eq < 0 ? '' : pair.slice(eq + 1);
    if (k.length > 253 || v.length > 63 || !LABEL_KEY.test(k) || !LABEL_VALUE.test(v)) return `labels: ${JSON.stringify(pair.slice(0, 80))} is not key=value`;
    labels[k] = v;
  }
  return { role, labels };
}

export interface AckRequest {
  readonly proxy: string;
  readonly version: string;
  readonly accepted: boolean;
  readonly problems?: readonly Problem[];
}

export interface CertificateRequest {
  /** PKCS#10 PEM. */
  readonly csr: string;
  readonly validitySeconds?: number;
}

export interface CertificateResponse {
  /** Leaf first, root last, one PEM per element. */
  readonly certChain: readonly string[];
}

// Deeper than any Istio resource; a bound so that a pathological document cannot recurse forever.
const MAX_DEPTH = 64;

export function pathKey(path: FieldPath): string {
  return JSON.stringify(path);
}

export function encodeResource(r: Resource): WireResource {
  const lines: Record<string, number> = {};
  const walk = (value: unknown, path: (string | number)[], parentLine: number): void => {
    const line = r.origin.lineOf(path);
    if (line !== parentLine || path.length === 0) lines[pathKey(path)] = line;
    if (path.length >= MAX_DEPTH) return;
    if (Array.isArray(value)) value.forEach((v, i) => walk(v, [...path, i], line));
    else if (isRecord(value)) for (const [k, v] of Object.entries(value)) walk(v, [...path, k], line);
  };
  walk(r.raw, [], Number.NaN);
  // The proxy reads the embedded text's own lines from the object; where the text starts is all it needs besides.
  let texts: Record<string, readonly [number, number]> | undefined;
  for (const field of embeddedYamlFields(r.raw)) {
    const start = r.origin.textStart?.(field);
    if (start) (texts ??= {})[pathKey(field)] = [start.line, start.indent];
  }
  return { origin: { file: r.origin.file, line: r.origin.line, order: r.origin.order, lines, ...(texts ? { texts } : {}) }, object: r.raw };
}

/** The version of a set: the same resources give the same version, whichever process sends them. */
export function versionOf(encodedResources: string): string {
  return createHash('sha256').update(encodedResources).digest('hex').slice(0, 16);
}

/** Resources back from the wire. Anything malformed becomes an error problem, never an exception. */
export function decodeResources(list: unknown): LoadResult {
  const resources: Resource[] = [];
  const problems: Problem[] = [];
  if (!Array.isArray(list)) {
    problems.push(wireProblem('', 0, 'the control plane sent a configuration without a resource list'));
    return { resources, problems };
  }
  list.forEach((entry, i) => {
    const origin = isRecord(entry) ? originOf(entry.origin) : undefined;
    if (!origin || !isRecord(entry)) {
      problems.push(wireProblem('', 0, `the control plane sent a malformed resource (entry ${i})`));
      return;
    }
    const r = resourceFromObject(entry.object, origin, problems);
    if (r) resources.push(r);
  });
  return { resources, problems };
}

function originOf(v: unknown): Origin | undefined {
  if (!isRecord(v) || typeof v.file !== 'string' || !isLine(v.line) || typeof v.order !== 'number' || !isRecord(v.lines)) return undefined;
  const lines = new Map<string, number>();
  for (const [k, line] of Object.entries(v.lines)) if (isLine(line)) lines.set(k, line);
  const first = v.line;
  const texts = new Map<string, TextStart>();
  for (const [k, at] of Object.entries(isRecord(v.texts) ? v.texts : {})) {
    if (Array.isArray(at) && isLine(at[0]) && isLine(at[1])) texts.set(k, { line: at[0], indent: at[1] });
  }
  return {
    file: v.file,
    line: first,
    order: v.order,
    ...(texts.size > 0 ? { textStart: (path: FieldPath) => texts.get(pathKey(path)) } : {}),
    // The nearest field on the path that has a line of its own, as the YAML loader answers.
    lineOf(path: FieldPath): number {
      for (let n = path.length; n >= 0; n--) {
        const line = lines.get(pathKey(path.slice(0, n)));
        if (line !== undefined) return line;
      }
      return first;
    },
  };
}

/** One stream line, or undefined when it is a message this version does not know (skipped, not fatal). */
export function parseStreamMessage(text: string): StreamMessage | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    // A line cut or garbled on the way may have been a delta: the proxy cannot tell, so it resyncs.
    return { type: 'bad-delta', reason: 'a stream line that is not JSON' };
  }
  if (!isRecord(v)) return undefined;
  if (v.type === 'heartbeat') return { type: 'heartbeat' };
  if (v.type === 'hello' && typeof v.proxy === 'string' && typeof v.identity === 'string' && typeof v.heartbeatMs === 'number' && v.heartbeatMs > 0) {
    return { type: 'hello', proxy: v.proxy, identity: v.identity, heartbeatMs: v.heartbeatMs };
  }
  if (v.type === 'config' && typeof v.version === 'string' && Array.isArray(v.resources)) {
    return { type: 'config', version: v.version, resources: v.resources as WireResource[] };
  }
  if (v.type === 'delta') {
    // A delta that is not well formed must still reach the proxy, which refuses it and resyncs:
    // skipping it silently would leave the proxy a version behind without knowing.
    const ok = typeof v.version === 'string' && typeof v.base === 'string' && Array.isArray(v.updated) && Array.isArray(v.removed) && v.removed.every((k) => typeof k === 'string');
    return ok
      ? { type: 'delta', version: v.version as string, base: v.base as string, updated: v.updated as WireResource[], removed: v.removed as string[] }
      : { type: 'bad-delta', reason: 'a delta without version, base, updated and removed (a list of keys)' };
  }
  return undefined;
}

function isLine(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}

function wireProblem(file: string, line: number, message: string): Problem {
  return { severity: 'error', file, line, resource: '', field: '', message };
}
