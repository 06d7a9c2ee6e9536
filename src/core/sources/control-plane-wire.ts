// What travels between the control plane and its proxies: the HTTP paths, the JSON bodies, the lines
// of the configuration stream, and how a Resource crosses the wire without losing where it came
// from. A resource carries its object as read plus a table of field path → line, so a problem that
// a proxy finds still names the control plane's file and line.

import { createHash } from 'node:crypto';
import { isRecord, resourceFromObject, type LoadResult } from '../config/load.js';
import type { Problem } from '../config/problem.js';
import type { FieldPath, Origin, Resource } from '../model/resource.js';

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
}

export interface WireResource {
  readonly origin: WireOrigin;
  readonly object: unknown;
}

/** One line of the stream (NDJSON). `hello` comes first, then `config` at once and on every change. */
export type StreamMessage =
  | { readonly type: 'hello'; readonly proxy: string; readonly identity: string; readonly heartbeatMs: number }
  | { readonly type: 'config'; readonly version: string; readonly resources: readonly WireResource[] }
  | { readonly type: 'heartbeat' };

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
  return { origin: { file: r.origin.file, line: r.origin.line, order: r.origin.order, lines }, object: r.raw };
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
  return {
    file: v.file,
    line: first,
    order: v.order,
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

/** One stream line, or undefined when it is not a message this version knows (skipped, not fatal). */
export function parseStreamMessage(text: string): StreamMessage | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isRecord(v)) return undefined;
  if (v.type === 'heartbeat') return { type: 'heartbeat' };
  if (v.type === 'hello' && typeof v.proxy === 'string' && typeof v.identity === 'string' && typeof v.heartbeatMs === 'number' && v.heartbeatMs > 0) {
    return { type: 'hello', proxy: v.proxy, identity: v.identity, heartbeatMs: v.heartbeatMs };
  }
  if (v.type === 'config' && typeof v.version === 'string' && Array.isArray(v.resources)) {
    return { type: 'config', version: v.version, resources: v.resources as WireResource[] };
  }
  return undefined;
}

function isLine(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}

function wireProblem(file: string, line: number, message: string): Problem {
  return { severity: 'error', file, line, resource: '', field: '', message };
}
