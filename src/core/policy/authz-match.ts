// The value matchers of AuthorizationPolicy (docs/security.md), compiled once per policy so that a
// request is only compared: Istio's `exact`, `prefix*`, `*suffix` and `*` strings, peer identities
// (principal, namespace, service account, trust domain), CIDR lists, Envoy URI templates for paths,
// and the names a `when` condition may use. Validation reads the same definitions, so what it
// accepts is exactly what evaluation understands.

import { BlockList, isIP } from 'node:net';

/** `undefined` is an attribute the request does not have (no peer certificate, no SNI, no such header). */
export type StringTest = (value: string | undefined) => boolean;

/**
 * What `*` alone means. Most fields become the Envoy regex `.+`, so an empty or missing value does not
 * match it; headers, `:method` and `:authority` use a presence match instead.
 */
export type StarMeaning = 'non-empty' | 'present';

/**
 * One field's values, ORed: `abc` exact, `abc*` prefix, `*abc` suffix, `*` alone as `star` says.
 * With `ignoreCase` the patterns are lower-cased here and the caller passes lower-cased values.
 */
export function stringMatcher(patterns: readonly string[], star: StarMeaning, ignoreCase = false): StringTest {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  const suffixes: string[] = [];
  let any = false;
  for (const raw of patterns) {
    const p = ignoreCase ? raw.toLowerCase() : raw;
    if (p === '*') any = true;
    else if (p.startsWith('*')) suffixes.push(p.slice(1));
    else if (p.endsWith('*')) prefixes.push(p.slice(0, -1));
    else exact.add(p);
  }
  return (v) => {
    if (v === undefined) return false;
    if (any && (star === 'present' || v !== '')) return true;
    if (exact.has(v)) return true;
    for (const p of prefixes) if (v.startsWith(p)) return true;
    for (const s of suffixes) if (v.endsWith(s)) return true;
    return false;
  };
}

/** Why `value` is not an Istio match string (empty, or a `*` somewhere else than first or last), or undefined. */
export function wildcardProblem(value: string): string | undefined {
  if (value === '') return 'must not be empty';
  if (value === '*') return undefined;
  const inner = value.slice(value.startsWith('*') ? 1 : 0, value.endsWith('*') ? -1 : undefined);
  if (value.startsWith('*') && value.endsWith('*')) return `${JSON.stringify(value)}: "*" may be used as a prefix or a suffix, not both`;
  if (inner.includes('*')) return `${JSON.stringify(value)}: "*" is allowed only as the whole value, at the start (suffix match) or at the end (prefix match)`;
  return undefined;
}

// ---------------------------------------------------------------- peer identities

/**
 * `namespaces`: Istio matches the regex `(.*)/ns/<value>/(.*)` against the principal (`*` in the value
 * becomes `.*`). The same test is written here with string searches, which keeps it linear.
 */
export function namespaceMatcher(patterns: readonly string[]): StringTest {
  const tests = patterns.map((p): ((principal: string) => boolean) => {
    if (p === '*') {
      return (s) => {
        const at = s.indexOf('/ns/');
        return at >= 0 && s.lastIndexOf('/') >= at + 4;
      };
    }
    if (p.startsWith('*')) {
      const tail = `${p.slice(1)}/`;
      return (s) => {
        const at = s.indexOf('/ns/');
        return at >= 0 && s.lastIndexOf(tail) >= at + 4;
      };
    }
    if (p.endsWith('*')) {
      const head = `/ns/${p.slice(0, -1)}`;
      return (s) => {
        const at = s.indexOf(head);
        return at >= 0 && s.lastIndexOf('/') >= at + head.length;
      };
    }
    const whole = `/ns/${p}/`;
    return (s) => s.includes(whole);
  });
  return (principal) => principal !== undefined && principal !== '' && tests.some((t) => t(principal));
}

/**
 * `serviceAccounts`: `ns/sa`, or `sa` in the policy's namespace. Istio's regex over the URI SAN is
 * `spiffe://.+/ns/<ns>/(.+/|)sa/<sa>(/.+)?` with both names quoted; principals here carry no scheme.
 */
export function serviceAccountMatcher(values: readonly string[], policyNamespace: string): StringTest {
  const res = values.map((value) => {
    const slash = value.indexOf('/');
    const ns = slash < 0 ? policyNamespace : value.slice(0, slash);
    const sa = slash < 0 ? value : value.slice(slash + 1);
    return new RegExp(`^.+/ns/${escapeRegex(ns)}/(?:.+/|)sa/${escapeRegex(sa)}(?:/.+)?$`);
  });
  return (principal) => principal !== undefined && principal !== '' && res.some((re) => re.test(principal));
}

/** Why `value` is not a `serviceAccounts` entry, or undefined. */
export function serviceAccountProblem(value: string): string | undefined {
  if (value === '') return 'must not be empty';
  if (value.includes('*')) return `${JSON.stringify(value)}: service accounts take no wildcards`;
  const parts = value.split('/');
  if (parts.length > 2) return `${JSON.stringify(value)} must be <namespace>/<serviceaccount> or <serviceaccount>`;
  if (parts.some((p) => p === '')) return `${JSON.stringify(value)} must be <namespace>/<serviceaccount> or <serviceaccount>, both non-empty`;
  if (value.length > 320) return `${JSON.stringify(value.slice(0, 40))}… is too long (at most 320 characters)`;
  return undefined;
}

/** The trust domain of `td/ns/<ns>/sa/<sa>`: everything before the first `/`. */
export function trustDomainOf(principal: string | undefined): string | undefined {
  if (principal === undefined || principal === '') return undefined;
  const slash = principal.indexOf('/');
  return slash < 0 ? principal : principal.slice(0, slash);
}

// ---------------------------------------------------------------- addresses

/** A request address made ready for CIDR checks; IPv4-mapped IPv6 (`::ffff:a.b.c.d`) counts as IPv4, as Envoy sees it. */
export interface IpAddress {
  readonly address: string;
  readonly family: 'ipv4' | 'ipv6';
}

export function toIpAddress(text: string | undefined): IpAddress | undefined {
  if (text === undefined) return undefined;
  const family = isIP(text);
  if (family === 4) return { address: text, family: 'ipv4' };
  if (family !== 6) return undefined;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(text);
  if (mapped && isIP(mapped[1]!) === 4) return { address: mapped[1]!, family: 'ipv4' };
  return { address: text, family: 'ipv6' };
}

export type IpTest = (ip: IpAddress | undefined) => boolean;

/** One field's addresses and CIDR blocks, ORed. An IPv6 block never matches an IPv4 peer, nor the other way round. */
export function ipMatcher(blocks: readonly string[]): IpTest {
  const v4 = new BlockList();
  const v6 = new BlockList();
  let has4 = false;
  let has6 = false;
  for (const block of blocks) {
    const slash = block.indexOf('/');
    const text = slash < 0 ? block : block.slice(0, slash);
    const family = isIP(text);
    if (family === 0) continue; // validation rejects these; an unreadable block matches nothing
    const width = family === 4 ? 32 : 128;
    const bits = slash < 0 ? width : Number(block.slice(slash + 1));
    if (!Number.isInteger(bits) || bits < 0 || bits > width) continue;
    // `::ffff:10.0.0.0/104` is written for IPv4 peers seen through an IPv6 socket.
    const mapped = family === 6 && bits >= 96 ? toIpAddress(text) : undefined;
    if (family === 4 || mapped?.family === 'ipv4') {
      v4.addSubnet(mapped?.address ?? text, family === 4 ? bits : bits - 96, 'ipv4');
      has4 = true;
    } else {
      v6.addSubnet(text, bits, 'ipv6');
      has6 = true;
    }
  }
  return (ip) => {
    if (!ip) return false;
    try {
      return ip.family === 'ipv4' ? has4 && v4.check(ip.address, 'ipv4') : has6 && v6.check(ip.address, 'ipv6');
    } catch {
      return false; // an address BlockList cannot read (a zone id, say) is in no block
    }
  };
}

/** Port numbers as Istio writes them: decimal strings in [0, 65535]. */
export function parsePortText(value: string): number | undefined {
  if (!/^\d{1,5}$/.test(value)) return undefined;
  const n = Number(value);
  return n <= 65535 ? n : undefined;
}

// ---------------------------------------------------------------- paths

// Envoy's template literal class: RFC 3986 pchar without `*` (its own operator), `=` included as
// Envoy includes it, so a `{**}` DENY also covers `/deep/a=1` (query-like segments are common).
const PCHAR = "a-zA-Z0-9\\-._~%!$&'()+,;:@=";
const ONE_SEGMENT = `[${PCHAR}]+`;
const ANY_SEGMENTS = `[${PCHAR}/]*`;
const LITERAL = new RegExp(`^[${PCHAR}]+$`);

/** True when `path` uses Envoy URI-template operators, which Istio writes `{*}` and `{**}`. */
export function isPathTemplate(path: string): boolean {
  return path.includes('{*}') || path.includes('{**}');
}

type Segment = { readonly op: '*' | '**'; readonly suffix: string } | { readonly literal: string };

/** A template's segments, or why Envoy would refuse it. */
function parseTemplate(path: string): { segments: Segment[] } | { problem: string } {
  if (!path.startsWith('/')) return { problem: 'a path template must start with "/"' };
  if (path === '/') return { segments: [] };
  const parts = path.slice(1).split('/');
  const segments: Segment[] = [];
  let sawAny = false;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const last = i === parts.length - 1;
    if (part === '') {
      if (last) {
        segments.push({ literal: '' });
        continue;
      }
      return { problem: 'a path template cannot contain an empty segment ("//")' };
    }
    const op = part.startsWith('{**}') ? '**' : part.startsWith('{*}') ? '*' : undefined;
    if (op) {
      if (sawAny) return { problem: '{**} must be the last operator in a path template' };
      sawAny = op === '**';
      const suffix = part.slice(op === '**' ? 4 : 3);
      if (suffix !== '' && !last) return { problem: `segment ${JSON.stringify(part)}: text after an operator is allowed only in the last segment` };
      if (suffix !== '' && !LITERAL.test(suffix)) return { problem: `segment ${JSON.stringify(part)} has characters a path template cannot hold` };
      segments.push({ op, suffix });
      continue;
    }
    if (part.includes('{') || part.includes('}') || part.includes('*')) {
      return { problem: `segment ${JSON.stringify(part)}: only whole-segment {*} and {**} operators are supported` };
    }
    if (!LITERAL.test(part)) return { problem: `segment ${JSON.stringify(part)} has characters a path template cannot hold` };
    segments.push({ literal: part });
  }
  return { segments };
}

/** Why a path template would be refused, or undefined (also for paths that are not templates). */
export function pathTemplateProblem(path: string): string | undefined {
  if (!isPathTemplate(path)) return undefined;
  const parsed = parseTemplate(path);
  return 'problem' in parsed ? parsed.problem : undefined;
}

/**
 * `paths` values: URI templates (`{*}` one segment, `{**}` any number of segments) become the regex
 * Envoy builds; everything else is an Istio match string. Paths arrive without their query.
 */
export function pathMatcher(patterns: readonly string[]): StringTest {
  const plain: string[] = [];
  const templates: RegExp[] = [];
  for (const p of patterns) {
    if (!isPathTemplate(p)) {
      plain.push(p);
      continue;
    }
    const parsed = parseTemplate(p);
    if ('problem' in parsed) continue; // validation rejects these; a broken template matches nothing
    const body = parsed.segments
      .map((s) => ('op' in s ? (s.op === '**' ? ANY_SEGMENTS : ONE_SEGMENT) + escapeRegex(s.suffix) : escapeRegex(s.literal)))
      .join('/');
    templates.push(new RegExp(`^/${body}$`));
  }
  const strings = stringMatcher(plain, 'non-empty');
  if (templates.length === 0) return strings;
  return (v) => v !== undefined && (strings(v) || templates.some((re) => re.test(v)));
}

// ---------------------------------------------------------------- `when` keys

/** What a `when` key reads. `envoy-filter` is recognised but not supported by meshgate. */
export type ConditionAttribute =
  | { readonly kind: 'header'; readonly name: string }
  | { readonly kind: 'source.ip' | 'remote.ip' | 'destination.ip' | 'destination.port' | 'connection.sni' }
  | { readonly kind: 'source.namespace' | 'source.principal' | 'source.serviceAccount' | 'source.trustDomain' }
  | { readonly kind: 'jwt'; readonly field: 'principal' | 'audiences' | 'presenter' | 'claims'; /** `[a][b]` → ['a', 'b']. */ readonly claim?: readonly string[] }
  | { readonly kind: 'envoy-filter' }
  | { readonly kind: 'invalid'; readonly message: string };

const SIMPLE_KEYS = new Set([
  'source.ip', 'remote.ip', 'destination.ip', 'destination.port', 'connection.sni',
  'source.namespace', 'source.principal', 'source.serviceAccount', 'source.trustDomain',
]);
const JWT_KEYS = new Set(['request.auth.principal', 'request.auth.audiences', 'request.auth.presenter']);
const HEADER_KEY = /^request\.headers\[([^[\]]+)\]$/;
const CLAIM_KEY = /^request\.auth\.claims(\[[^[\]]+\])+$/;
const ENVOY_FILTER_KEY = /^experimental\.envoy\.filters\.[^[\]]+\[[^[\]]+\]$/;

export function parseConditionKey(key: string): ConditionAttribute {
  if (SIMPLE_KEYS.has(key)) return { kind: key } as ConditionAttribute;
  const header = HEADER_KEY.exec(key);
  if (header) return { kind: 'header', name: header[1]!.toLowerCase() };
  if (key.startsWith('request.headers')) return { kind: 'invalid', message: `bad key ${JSON.stringify(key)}: write request.headers[<header-name>]` };
  if (JWT_KEYS.has(key)) return { kind: 'jwt', field: key.slice('request.auth.'.length) as 'principal' | 'audiences' | 'presenter' };
  if (CLAIM_KEY.test(key)) return { kind: 'jwt', field: 'claims', claim: [...key.matchAll(/\[([^[\]]+)\]/g)].map((m) => m[1]!) };
  if (key.startsWith('request.auth.claims')) return { kind: 'invalid', message: `bad key ${JSON.stringify(key)}: write request.auth.claims[<claim>] (nested as [a][b])` };
  if (ENVOY_FILTER_KEY.test(key)) return { kind: 'envoy-filter' };
  if (key.startsWith('experimental.envoy.filters.')) return { kind: 'invalid', message: `bad key ${JSON.stringify(key)}: write experimental.envoy.filters.<filter>[<key>]` };
  if (key === 'destination.namespace') return { kind: 'invalid', message: 'destination.namespace is replaced by the policy namespace (metadata.namespace)' };
  if (key.startsWith('destination.labels')) return { kind: 'invalid', message: 'destination.labels is replaced by the workload selector' };
  if (key === 'destination.name' || key === 'destination.user') return { kind: 'invalid', message: `${key} was removed after v1alpha1` };
  return { kind: 'invalid', message: `unknown attribute ${JSON.stringify(key)}` };
}

function escapeRegex(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
}
