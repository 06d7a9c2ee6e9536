// Path normalization before routing, as Istio configures Envoy's HTTP connection manager from the
// mesh config's `pathNormalization.normalization` (docs/request-limits.md has the table):
//
//   NONE                      the path as sent (the #fragment is still cut, by parse.ts)
//   BASE (default; DEFAULT)   normalize_path: RFC 3986 canonicalization as Envoy does it (below)
//   MERGE_SLASHES             BASE, then merge_slashes (`//` runs become one `/`)
//   DECODE_AND_MERGE_SLASHES  %2F %2f %5C %5c decoded first (path_with_escaped_slashes_action
//                             UNESCAPE_AND_FORWARD: the decoded path is forwarded, no redirect), then
//                             MERGE_SLASHES
//
// Envoy's order is the same: unescape slashes, canonicalize, merge. Canonicalization is the URL
// library Envoy links (Chromium's path canonicalizer), as Envoy calls it:
//   - `.;x` and `..;x` segments lose their parameters first (Envoy's fix for `/..;/admin`, which
//     Tomcat-style backends read as `/../admin`);
//   - `\` is `/`; `.`, `..`, `%2e` and `%2e%2e` segments (any case) are removed as RFC 3986 says;
//   - %-escapes of unreserved characters (letters, digits, `-`, `_`, `~`, `.`) are decoded once;
//     other escapes are kept with the case of their hex digits; an invalid `%` stays as it is;
//   - control characters, space, `"`, `<`, `>`, `\``, `^`, `{`, `|`, `}`, DEL and non-ASCII bytes
//     are %-escaped; a NUL, raw or `%00`, makes the path invalid (400).
// The normalized path is what routes and AuthorizationPolicy match and what goes upstream, so the
// policy and the backend see the same path. Worked out per request; the mode once per snapshot.

import type { Snapshot } from '../snapshot/snapshot.js';
import { meshConfigOf } from '../telemetry/telemetry-policy.js';

export const PATH_NORMALIZATIONS = ['DEFAULT', 'NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'] as const;
export type PathNormalization = (typeof PATH_NORMALIZATIONS)[number];

/** Paths that no mode changes: characters copied as they are, and no dot segment (no `/.`). */
const PLAIN = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/[\]]*$/;

const enum Kind {
  Pass = 0,
  Escape = 1,
  Invalid = 2,
}

/** What canonicalization does with each byte as written (Chromium's path table). */
const RAW = new Uint8Array(256).fill(Kind.Pass);
/** Which %-escaped bytes are decoded. */
const UNRESERVED = new Uint8Array(256);
{
  for (let b = 0; b < 0x20; b++) RAW[b] = Kind.Escape;
  for (let b = 0x7f; b < 0x100; b++) RAW[b] = Kind.Escape;
  for (const ch of ' "<>`^{|}#?') RAW[ch.charCodeAt(0)] = Kind.Escape;
  RAW[0] = Kind.Invalid;
  for (const ch of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_~') UNRESERVED[ch.charCodeAt(0)] = 1;
}

const HEX = '0123456789ABCDEF';

/**
 * The path (no query) normalized as `mode` says, or undefined when it must be refused with 400:
 * a NUL, or a path that does not begin with `/` (the asterisk-form included).
 */
export function normalizePath(raw: string, mode: PathNormalization = 'BASE'): string | undefined {
  if (raw.charCodeAt(0) !== 47 /* / */) return undefined;
  if (mode === 'NONE') return raw;
  if (PLAIN.test(raw) && !raw.includes('/.') && (mode === 'BASE' || mode === 'DEFAULT' || !raw.includes('//'))) return raw;
  let path = raw;
  if (mode === 'DECODE_AND_MERGE_SLASHES' && path.includes('%')) path = path.replace(/%2f/gi, '/').replace(/%5c/gi, '\\');
  if (path.includes('.;')) path = withoutDotSegmentParameters(path);
  const canonical = canonicalize(path);
  if (canonical === undefined) return undefined;
  return mode === 'BASE' || mode === 'DEFAULT' ? canonical : mergeSlashes(canonical);
}

/** `/a/..;x/b` is `/a/../b` and `/.;x` is `/.`, before the dot segments are resolved. */
function withoutDotSegmentParameters(path: string): string {
  const segments = path.split('/');
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    if (s.startsWith('..;')) segments[i] = '..';
    else if (s.startsWith('.;')) segments[i] = '.';
  }
  return segments.join('/');
}

/** Envoy's merge_slashes: the non-empty segments joined by one `/`, a leading and a trailing `/` kept. */
function mergeSlashes(path: string): string {
  if (!path.includes('//')) return path;
  return `/${path.split('/').filter((s) => s !== '').join('/')}${path.endsWith('/') ? '/' : ''}`;
}

/** The length of a dot at `i`: 1 for `.`, 3 for `%2e`/`%2E`, 0 for anything else. */
function dotAt(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c === 46) return 1;
  if (c === 37 && s.charCodeAt(i + 1) === 50 && (s.charCodeAt(i + 2) | 0x20) === 101) return 3;
  return 0;
}

const isSlash = (c: number): boolean => c === 47 || c === 92;

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  return l >= 97 && l <= 102 ? l - 87 : -1;
}

/** RFC 3986 dot-segment removal with Envoy's escaping rules (the header comment); undefined for a NUL. */
function canonicalize(s: string): string | undefined {
  let out = '';
  const end = s.length;
  for (let i = 0; i < end; i++) {
    const c = s.charCodeAt(i);
    const dot = dotAt(s, i);
    if (dot > 0) {
      if (!out.endsWith('/')) {
        out += '.';
        i += dot - 1;
        continue;
      }
      // A dot right after a slash: `.` (this segment) or `..` (up one), when a slash or the end follows.
      const after = i + dot;
      if (after === end || isSlash(s.charCodeAt(after))) {
        i = after === end ? end : after;
        continue;
      }
      const second = dotAt(s, after);
      const afterSecond = after + second;
      if (second > 0 && (afterSecond === end || isSlash(s.charCodeAt(afterSecond)))) {
        out = upOne(out);
        i = afterSecond === end ? end : afterSecond;
        continue;
      }
      out += '.';
      i += dot - 1;
    } else if (c === 92 /* \ */) {
      out += '/';
    } else if (c === 37 /* % */) {
      const hi = i + 2 < end ? hexValue(s.charCodeAt(i + 1)) : -1;
      const lo = hi >= 0 ? hexValue(s.charCodeAt(i + 2)) : -1;
      if (lo < 0) {
        out += '%';
        continue;
      }
      const b = hi * 16 + lo;
      if (b === 0) return undefined;
      out += UNRESERVED[b] ? String.fromCharCode(b) : s.slice(i, i + 3);
      i += 2;
    } else if (c > 0xff) {
      // Only an HTTP/2 :path can carry these: escaped as the UTF-8 bytes they are.
      const cp = s.codePointAt(i)!;
      for (const byte of Buffer.from(String.fromCodePoint(cp), 'utf8')) out += escaped(byte);
      if (cp > 0xffff) i++;
    } else {
      const kind = RAW[c]!;
      if (kind === Kind.Invalid) return undefined;
      out += kind === Kind.Escape ? escaped(c) : s[i];
    }
  }
  return out;
}

/** Drops the last segment of `out` (which ends with `/`); the root stays. */
function upOne(out: string): string {
  if (out.length <= 1) return out;
  return out.slice(0, out.lastIndexOf('/', out.length - 2) + 1);
}

function escaped(b: number): string {
  return `%${HEX[b >> 4]}${HEX[b & 15]}`;
}

const modes = new WeakMap<Snapshot, PathNormalization>();

/** The mesh config's `pathNormalization.normalization` for requests under `snapshot`; BASE when unset. */
export function pathNormalizationFor(snapshot: Snapshot | undefined): PathNormalization {
  if (!snapshot) return 'BASE';
  let mode = modes.get(snapshot);
  if (mode === undefined) {
    const pn = meshConfigOf(snapshot.resources)?.['pathNormalization'];
    const n = typeof pn === 'object' && pn !== null ? (pn as Record<string, unknown>)['normalization'] : undefined;
    // Validation refuses any other value; a mesh config that is still read with one gets the default.
    mode = typeof n === 'string' && (PATH_NORMALIZATIONS as readonly string[]).includes(n) ? (n as PathNormalization) : 'BASE';
    modes.set(snapshot, mode);
  }
  return mode;
}
