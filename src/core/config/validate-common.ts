// Building blocks shared by the per-kind validators: a collector that turns findings into Problems
// at exact field paths, type guards that report instead of throwing (specs arrive as `unknown`),
// and Istio's rules for host names, durations, percentages, ports and label maps.

import { isIP } from 'node:net';
import type { FieldPath, Resource } from '../model/resource.js';
import { problemAt, type Problem } from './problem.js';
import { placeInText } from './embedded-yaml.js';
import { parseDurationNs } from './duration.js';
import { allowUnknownFields } from './field-policy.js';
import { closest } from './suggest.js';

export type Obj = Record<string, unknown>;

/** Collects the problems of one resource. */
export class Checker {
  readonly problems: Problem[] = [];
  constructor(readonly resource: Resource) {}
  error(path: FieldPath, message: string): void {
    this.problems.push(problemAt(this.resource, path, message, 'error'));
  }
  warn(path: FieldPath, message: string): void {
    this.problems.push(problemAt(this.resource, path, message, 'warning'));
  }
  /** An error at line `line`, column `column` of the embedded YAML text at `field` (a syntax error in the mesh config). */
  errorInText(field: FieldPath, line: number, column: number, message: string): void {
    this.problems.push({ ...problemAt(this.resource, field, message, 'error'), ...placeInText(this.resource.origin, field, line, column) });
  }
}

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** YAML `key:` with nothing after it reads as null; like protobuf JSON, that means "not set". */
export function isSet(v: unknown): boolean {
  return v !== undefined && v !== null;
}

export function asObj(c: Checker, v: unknown, path: FieldPath): Obj | undefined {
  if (!isSet(v)) return undefined;
  if (isObj(v)) return v;
  c.error(path, `must be a mapping, not ${describe(v)}`);
  return undefined;
}

export function asList(c: Checker, v: unknown, path: FieldPath): unknown[] | undefined {
  if (!isSet(v)) return undefined;
  if (Array.isArray(v)) return v;
  c.error(path, `must be a list, not ${describe(v)}`);
  return undefined;
}

/** Calls `each` for every mapping in a list; null or non-mapping items are reported. */
export function eachObj(c: Checker, v: unknown, path: FieldPath, each: (item: Obj, at: FieldPath, index: number) => void): void {
  const items = asList(c, v, path);
  items?.forEach((item, i) => {
    const at = [...path, i];
    if (!isSet(item)) c.error(at, 'must not be empty');
    else if (!isObj(item)) c.error(at, `must be a mapping, not ${describe(item)}`);
    else each(item, at, i);
  });
}

/** Strings in a list; anything else is reported and skipped. */
export function stringList(c: Checker, v: unknown, path: FieldPath): Array<{ value: string; at: FieldPath }> {
  const out: Array<{ value: string; at: FieldPath }> = [];
  asList(c, v, path)?.forEach((item, i) => {
    const s = asString(c, item, [...path, i]);
    if (s !== undefined) out.push({ value: s, at: [...path, i] });
    else if (!isSet(item)) c.error([...path, i], 'must not be empty');
  });
  return out;
}

export function asString(c: Checker, v: unknown, path: FieldPath): string | undefined {
  if (!isSet(v)) return undefined;
  if (typeof v === 'string') return v;
  c.error(path, typeof v === 'number' || typeof v === 'boolean' ? `must be a string; quote ${String(v)} in YAML` : `must be a string, not ${describe(v)}`);
  return undefined;
}

export function asBool(c: Checker, v: unknown, path: FieldPath): boolean | undefined {
  if (!isSet(v)) return undefined;
  if (typeof v === 'boolean') return v;
  c.error(path, `must be true or false, not ${describe(v)}`);
  return undefined;
}

export function asNumber(c: Checker, v: unknown, path: FieldPath): number | undefined {
  if (!isSet(v)) return undefined;
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  c.error(path, `must be a number, not ${describe(v)}`);
  return undefined;
}

/** A whole number, optionally bounded; out-of-range values are reported and still returned. */
export function asInt(c: Checker, v: unknown, path: FieldPath, min?: number, max?: number): number | undefined {
  const n = asNumber(c, v, path);
  if (n === undefined) return undefined;
  if (!Number.isInteger(n)) {
    c.error(path, `must be a whole number, not ${n}`);
    return undefined;
  }
  if (min !== undefined && n < min) c.error(path, min === 0 ? 'must not be negative' : `must be at least ${min}`);
  else if (max !== undefined && n > max) c.error(path, `must be at most ${max}`);
  return n;
}

/** Protobuf enums are matched by their exact names. */
export function asEnum<T extends string>(c: Checker, v: unknown, path: FieldPath, allowed: readonly T[]): T | undefined {
  if (!isSet(v)) return undefined;
  if (typeof v === 'string' && (allowed as readonly string[]).includes(v)) return v as T;
  c.error(path, `${JSON.stringify(v)} is not allowed; use one of ${allowed.join(', ')}`);
  return undefined;
}

/**
 * Unknown fields are what a typo looks like (`gatways:` for `gateways:`, which would silently make a
 * VirtualService mesh-only); Istio's schema rejects them, so they are errors unless the process was
 * started with `--allow-unknown-fields`, which keeps them as warnings.
 */
export function knownFields(c: Checker, o: Obj, path: FieldPath, fields: readonly string[]): void {
  for (const key of Object.keys(o)) {
    if (fields.includes(key)) continue;
    const near = closest(key, fields);
    const hint = near ? `; did you mean \`${near}\`?` : `; known fields here: ${fields.join(', ')}`;
    if (allowUnknownFields()) c.warn([...path, key], `unknown field${hint} (ignored: --allow-unknown-fields)`);
    else c.error([...path, key], `unknown field${hint}`);
  }
}

/** Oneof fields: reports every member beyond the first that is set. */
export function atMostOne(c: Checker, o: Obj, path: FieldPath, fields: readonly string[]): string | undefined {
  const set = fields.filter((f) => isSet(o[f]));
  for (const extra of set.slice(1)) c.error([...path, extra], `cannot be set together with ${set[0]}; use only one of ${fields.join(', ')}`);
  return set[0];
}

/**
 * The size limits of Istio's CRD schema (minItems/maxItems, maxProperties, maxLength): the API server
 * refuses a resource past them, so meshgate does too, at the field. Counts list items, map entries or
 * characters, whichever `v` is; anything else is left to the type check.
 */
export function checkSize(c: Checker, v: unknown, path: FieldPath, limits: { readonly min?: number; readonly max: number }): void {
  const [n, unit] = Array.isArray(v) ? [v.length, 'items'] : isObj(v) ? [Object.keys(v).length, 'entries'] : typeof v === 'string' ? [v.length, 'characters'] : [undefined, ''];
  if (n === undefined) return;
  if (limits.min !== undefined && n < limits.min) c.error(path, limits.min === 1 ? 'must not be empty; leave the field out instead' : `must have at least ${limits.min} ${unit}`);
  else if (n > limits.max) c.error(path, `has ${n} ${unit}; Istio's schema allows at most ${limits.max}`);
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  return `${typeof v} ${String(v)}`;
}

// ---------------------------------------------------------------- names and hosts

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
// Host names follow Istio's label check, which allows upper case (DNS compares without case; meshgate
// lower-cases hosts when it compiles them). Resource names stay lower-case, as Kubernetes wants.
const HOST_LABEL = /^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
// Istio's wildcard label: `*`, or `*` / `*-` glued to a label (so `*-bar.foo.com` is allowed).
const WILDCARD_LABEL = /^(\*|(\*|\*-)?[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)$/;

function isHostLabel(s: string): boolean {
  return s.length <= 63 && HOST_LABEL.test(s);
}

export function isDnsLabel(s: string): boolean {
  return s.length <= 63 && LABEL.test(s);
}

export function isDnsSubdomain(s: string): boolean {
  return s.length > 0 && s.length <= 253 && s.split('.').every(isDnsLabel);
}

const TOKEN = /^[!#$%&'*+\-.^_`|~A-Za-z0-9]+$/;

/** An HTTP header name (an RFC 9110 token). */
export function isHeaderName(s: string): boolean {
  return TOKEN.test(s);
}

export function isIpAddress(s: string): boolean {
  return isIP(s) !== 0;
}

/** `a.b.c.d/nn` or `2001:db8::/32`, or a plain address. */
export function isIpOrCidr(s: string): boolean {
  const slash = s.indexOf('/');
  if (slash < 0) return isIpAddress(s);
  const ip = s.slice(0, slash);
  const bits = s.slice(slash + 1);
  const family = isIP(ip);
  if (family === 0 || !/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

/**
 * Why `name` is not a valid host (a DNS name whose first label may carry a wildcard), or undefined.
 * `wildcard: false` demands a plain DNS name.
 */
export function hostProblem(name: string, wildcard = true): string | undefined {
  if (name === '') return 'must not be empty';
  if (name.length > 255) return `host ${JSON.stringify(name)} is too long (at most 255 characters)`;
  const labels = name.split('.');
  if (labels.length > 1 && labels[labels.length - 1] === '') labels.pop(); // `example.com.` is unambiguous
  const last = labels[labels.length - 1] ?? '';
  if (labels.length > 1 && /^\d+$/.test(last)) return `host ${JSON.stringify(name)} is not a DNS name (its last label is all digits)`;
  const [first = '', ...rest] = labels;
  if (first.includes('*')) {
    if (!wildcard) return `host ${JSON.stringify(name)} cannot contain a wildcard here`;
    if (!WILDCARD_LABEL.test(first) || first.length > 63) return `host ${JSON.stringify(name)} is invalid: a wildcard is allowed only at the start, as in *.example.com`;
  } else if (!isHostLabel(first)) {
    return `host ${JSON.stringify(name)} is invalid: label ${JSON.stringify(first)} may use only letters, digits and '-'`;
  }
  for (const label of rest) {
    if (label.includes('*')) return `host ${JSON.stringify(name)} is invalid: a wildcard is allowed only at the start, as in *.example.com`;
    if (!isHostLabel(label)) return `host ${JSON.stringify(name)} is invalid: label ${JSON.stringify(label)} may use only letters, digits and '-'`;
  }
  return undefined;
}

// Host comparison rules live with the registry; validation uses the very same ones.
export { isWildcardHost, hostMatches as hostsOverlap, hostSubsetOf } from '../registry/hostname.js';

// ---------------------------------------------------------------- label maps

const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

export function labelKeyProblem(key: string): string | undefined {
  const slash = key.indexOf('/');
  const prefix = slash < 0 ? '' : key.slice(0, slash);
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (slash >= 0 && !isDnsSubdomain(prefix)) return `label key ${JSON.stringify(key)} has an invalid prefix; it must be a DNS name`;
  if (name.length === 0 || name.length > 63 || !LABEL_NAME.test(name)) {
    return `label key ${JSON.stringify(key)} is invalid: at most 63 of a-z, A-Z, 0-9, '-', '_', '.', starting and ending alphanumeric`;
  }
  return undefined;
}

/** A Kubernetes-style label map (also used for selectors). */
export function checkLabels(c: Checker, v: unknown, path: FieldPath, maxEntries?: number): void {
  const o = asObj(c, v, path);
  if (!o) return;
  if (maxEntries !== undefined) checkSize(c, o, path, { max: maxEntries });
  for (const [key, value] of Object.entries(o)) {
    const at = [...path, key];
    const keyProblem = labelKeyProblem(key);
    if (keyProblem) c.error(at, keyProblem);
    const s = asString(c, value, at);
    if (s === undefined) {
      if (!isSet(value)) c.error(at, 'label value must be a string; use "" for an empty value');
      continue;
    }
    if (s.length > 63 || (s !== '' && !LABEL_NAME.test(s))) {
      c.error(at, `label value ${JSON.stringify(s)} is invalid: at most 63 of a-z, A-Z, 0-9, '-', '_', '.', starting and ending alphanumeric`);
    }
    if (key.includes('*') || s.includes('*')) c.error(at, 'wildcards are not supported in labels');
  }
}

/** `region/zone/subzone`, each part non-empty; where allowed, one `*` at the very end. */
export function checkLocalityText(c: Checker, text: string, at: FieldPath, allowWildcard: boolean): void {
  const parts = text.split('/');
  const stars = text.split('*').length - 1;
  if (parts.length > 3 || parts.some((p) => p === '')) c.error(at, `locality ${JSON.stringify(text)} must be region, region/zone or region/zone/subzone`);
  else if (stars > 0 && (!allowWildcard || stars > 1 || !text.endsWith('*'))) {
    c.error(at, allowWildcard ? `locality ${JSON.stringify(text)} may have one "*", at the end only` : `locality ${JSON.stringify(text)} cannot contain "*"`);
  }
}

// ---------------------------------------------------------------- ports, percentages

export function checkPort(c: Checker, v: unknown, path: FieldPath): number | undefined {
  return asInt(c, v, path, 1, 65535);
}

/** Istio's Percent{value}: a double in [0, 100], with 0.0001 as the smallest step above zero. */
export function checkPercent(c: Checker, v: unknown, path: FieldPath): number | undefined {
  const o = asObj(c, v, path);
  if (!o) return undefined;
  knownFields(c, o, path, ['value']);
  const n = asNumber(c, o.value, [...path, 'value']);
  if (n === undefined) return undefined;
  if (n < 0 || n > 100) c.error([...path, 'value'], `must be between 0 and 100, not ${n}`);
  else if (n > 0 && n < 0.0001) c.error([...path, 'value'], 'must be 0 or at least 0.0001');
  return n;
}

// ---------------------------------------------------------------- durations

export { parseDuration } from './duration.js';

/**
 * Istio's ValidateDuration: at least 1ms and whole milliseconds. `zeroDisables` lets `0s` through
 * where Istio reads zero as "off".
 */
export function checkDuration(c: Checker, v: unknown, path: FieldPath, opts: { zeroDisables?: boolean; wholeSeconds?: boolean } = {}): number | undefined {
  if (!isSet(v)) return undefined;
  if (typeof v !== 'string') {
    c.error(path, `must be a duration string such as 1.5s, 300ms, 1m or 1h, not ${describe(v)}`);
    return undefined;
  }
  const ns = parseDurationNs(v);
  if (ns === undefined) {
    c.error(path, `${JSON.stringify(v)} is not a duration; write it like 1.5s, 300ms, 1m or 1h`);
    return undefined;
  }
  if (ns < 0) c.error(path, 'must not be negative');
  else if (ns === 0 && opts.zeroDisables) return 0;
  else if (ns < 1e6) c.error(path, 'must be at least 1ms');
  else if (ns % 1e6 !== 0) c.error(path, 'must be whole milliseconds');
  else if (opts.wholeSeconds && ns % 1e9 !== 0) c.error(path, 'must be whole seconds');
  return ns / 1e6;
}

// ---------------------------------------------------------------- shared Istio fields

/** exportTo: `.`, `*`, a namespace, and `~` (no one) for ServiceEntry only. */
export function checkExportTo(c: Checker, v: unknown, path: FieldPath, namespace: string, allowNone: boolean): void {
  const entries = stringList(c, v, path);
  const seen = new Set<string>();
  for (const { value, at } of entries) {
    const key = value === '.' ? namespace : value;
    if (seen.has(key)) c.error(at, `duplicate exportTo entry ${JSON.stringify(value)}`);
    seen.add(key);
    if (value === '~' && !allowNone) c.error(at, '"~" is allowed only in a ServiceEntry');
    else if (value !== '.' && value !== '*' && value !== '~' && !isDnsLabel(value)) c.error(at, `${JSON.stringify(value)} is not ".", "*" or a namespace name`);
  }
  if (entries.length > 1 && entries.some((e) => e.value === '*')) c.error(path, '"*" already exports to every namespace; list nothing else with it');
  if (entries.length > 1 && entries.some((e) => e.value === '~')) c.error(path, '"~" exports to no one; list nothing else with it');
}

/** `{matchLabels: {...}}` as used by DestinationRule and the security kinds. */
export function checkWorkloadSelector(c: Checker, v: unknown, path: FieldPath, field: 'matchLabels' | 'labels'): void {
  const o = asObj(c, v, path);
  if (!o) return;
  knownFields(c, o, path, [field]);
  const labels = o[field];
  if (!isObj(labels) || Object.keys(labels).length === 0) {
    if (isSet(labels) && !isObj(labels)) c.error([...path, field], `must be a mapping, not ${describe(labels)}`);
    else c.warn(path, 'selector has no labels, so it selects every workload in the namespace');
    return;
  }
  // Istio's schema: 4096 entries in a security selector's matchLabels, 256 in a workload selector's labels.
  checkLabels(c, labels, [...path, field], field === 'matchLabels' ? 4096 : 256);
}
