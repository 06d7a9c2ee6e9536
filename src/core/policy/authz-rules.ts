// The rules of an AuthorizationPolicy compiled into conditions over one request (docs/security.md):
// every Source, Operation and `when` field becomes a test of its values (ORed) and one of its
// notValues (negated), each marked HTTP-only or unsupported so that authorization.ts can derive the
// plain-TCP and ALLOW/DENY variants Istio builds from the same rule.

import type { IncomingHttpHeaders } from 'node:http';
import type { RequestAuth } from './request-authentication.js';
import {
  ipMatcher, namespaceMatcher, parseConditionKey, parsePortText, pathMatcher, serviceAccountMatcher, stringMatcher, trustDomainOf,
  type IpAddress, type IpTest, type StringTest,
} from './authz-match.js';
import { withTrustDomainAliases } from './principal-aliases.js';
import { DEFAULT_TRUST_DOMAINS, type TrustDomains } from '../pki/trust-domain.js';

/** What one evaluation reads, prepared once per request. */
export interface Ctx {
  /**
   * The peer's SPIFFE identities without `spiffe://` (none for plaintext); a gateway's client
   * certificate may name several, a mesh peer names one. A principal rule matches when any does.
   */
  readonly principals: readonly string[];
  /** The certificate's other names (core/tls/peer-identity.ts PeerNames), which Envoy's RBAC compares too. */
  readonly otherNames: readonly string[];
  readonly sourceIp: IpAddress | undefined;
  readonly remoteIp: IpAddress | undefined;
  readonly destinationIp: IpAddress | undefined;
  readonly destinationPort: number;
  readonly sni: string | undefined;
  /** HTTP only. `host` is lower-cased for `hosts`; `rawHost` is what a header condition on Host sees. */
  readonly host?: string;
  readonly rawHost?: string;
  readonly method?: string;
  readonly path?: string;
  readonly headers?: IncomingHttpHeaders;
  /** The request's verified JWT (RequestAuthentication); absent when it carried none. */
  readonly auth?: RequestAuth;
}

export type Test = (ctx: Ctx) => boolean;

export interface Condition {
  readonly test: Test;
  /** Envoy cannot evaluate it on a TCP filter chain (hosts, methods, paths, headers, JWT). */
  readonly httpOnly: boolean;
  /** Envoy filter metadata: meshgate has none, so the attribute is always absent. */
  readonly unsupported: boolean;
}

export interface RuleIR {
  readonly from?: readonly (readonly Condition[])[];
  readonly to?: readonly (readonly Condition[])[];
  readonly when: readonly Condition[];
  /** A rule Istio would skip (an unknown `when` key); validation rejects these, so only junk gets here. */
  readonly broken: boolean;
}

/** `tds`: the trust domains principals are rewritten across (core/policy/principal-aliases.ts). */
export function compileRule(rule: Record<string, unknown>, policyNamespace: string, tds: TrustDomains = DEFAULT_TRUST_DOMAINS): RuleIR {
  let broken = false;
  const principals = (vs: readonly string[]): Test => principalTest(withTrustDomainAliases(tds, vs));
  const from = Array.isArray(rule.from)
    ? rule.from.map((f) => compileSource(isObj(f) ? obj(f.source) : {}, policyNamespace, principals))
    : undefined;
  const to = Array.isArray(rule.to) ? rule.to.map((t) => compileOperation(isObj(t) ? obj(t.operation) : {})) : undefined;
  const when: Condition[] = [];
  for (const w of list(rule.when)) {
    const cond = obj(w);
    const made = compileCondition(typeof cond.key === 'string' ? cond.key : '', strings(cond.values), strings(cond.notValues), policyNamespace, principals);
    if (made === undefined) broken = true;
    else when.push(...made);
  }
  return { ...(from ? { from } : {}), ...(to ? { to } : {}), when, broken };
}

/** The conditions of one field: its values ORed, and its notValues negated. */
function field(out: Condition[], values: readonly string[], notValues: readonly string[], make: (vs: readonly string[]) => Test, opts: Partial<Pick<Condition, 'httpOnly' | 'unsupported'>> = {}): void {
  const httpOnly = opts.httpOnly === true;
  const unsupported = opts.unsupported === true;
  if (values.length > 0) out.push({ test: make(values), httpOnly, unsupported });
  if (notValues.length > 0) {
    const t = make(notValues);
    out.push({ test: (ctx) => !t(ctx), httpOnly, unsupported });
  }
}

// Every peer identity is a matcher over the certificate's names, as Istio writes `principals`,
// `namespaces`, `serviceAccounts` and `trustDomains` into Envoy's authenticated principal, which is
// matched against each URI SAN, each DNS SAN and the subject: one of them matching is enough.
// Istio prefixes exact and prefix patterns with `spiffe://`, so a name of another kind can only
// match a suffix (`*x`) or `*`; the namespace regex (`.*/ns/<ns>/.*`) reads any name; service
// accounts and trust domains are anchored on `spiffe://`.
const principalTest = (vs: readonly string[]): Test => {
  const spiffe = stringMatcher(vs, 'non-empty');
  const suffixes = vs.filter((v) => v.startsWith('*'));
  const other = suffixes.length > 0 ? stringMatcher(suffixes, 'non-empty') : undefined;
  return (c) => c.principals.some(spiffe) || (other !== undefined && c.otherNames.some(other));
};
const namespaceTest = (vs: readonly string[]): Test => {
  const m = namespaceMatcher(vs);
  return (c) => c.principals.some(m) || c.otherNames.some(m);
};
const trustDomainTest = (vs: readonly string[]): Test => {
  const m = stringMatcher(vs, 'non-empty');
  return (c) => c.principals.some((p) => m(trustDomainOf(p)));
};
const serviceAccountTest = (vs: readonly string[], policyNamespace: string): Test => {
  const m = serviceAccountMatcher(vs, policyNamespace);
  return (c) => c.principals.some(m);
};
const absent = (): Test => () => false;
const ipTest = (get: (c: Ctx) => IpAddress | undefined) => (vs: readonly string[]): Test => {
  const m: IpTest = ipMatcher(vs);
  return (c) => m(get(c));
};
const portTest = (vs: readonly string[]): Test => {
  const ports = new Set(vs.map(parsePortText).filter((p): p is number => p !== undefined));
  return (c) => ports.has(c.destinationPort);
};

function on(m: StringTest, get: (c: Ctx) => string | undefined): Test {
  return (c) => m(get(c));
}

function compileSource(s: Record<string, unknown>, policyNamespace: string, principals: (vs: readonly string[]) => Test): Condition[] {
  const out: Condition[] = [];
  field(out, strings(s.principals), strings(s.notPrincipals), principals);
  field(out, strings(s.requestPrincipals), strings(s.notRequestPrincipals), (vs) => on(stringMatcher(vs, 'non-empty'), (c) => c.auth?.principal), { httpOnly: true });
  field(out, strings(s.namespaces), strings(s.notNamespaces), namespaceTest);
  field(out, strings(s.serviceAccounts), strings(s.notServiceAccounts), (vs) => serviceAccountTest(vs, policyNamespace));
  field(out, strings(s.trustDomains), strings(s.notTrustDomains), trustDomainTest);
  field(out, strings(s.ipBlocks), strings(s.notIpBlocks), ipTest((c) => c.sourceIp));
  field(out, strings(s.remoteIpBlocks), strings(s.notRemoteIpBlocks), ipTest((c) => c.remoteIp));
  return out;
}

function compileOperation(o: Record<string, unknown>): Condition[] {
  const out: Condition[] = [];
  const http = { httpOnly: true };
  // `:authority` is compared ignoring case, and it carries the port when the client sent one.
  field(out, strings(o.hosts), strings(o.notHosts), (vs) => on(stringMatcher(vs, 'present', true), (c) => c.host), http);
  field(out, strings(o.ports), strings(o.notPorts), portTest);
  field(out, strings(o.methods), strings(o.notMethods), (vs) => on(stringMatcher(vs, 'present'), (c) => c.method), http);
  field(out, strings(o.paths), strings(o.notPaths), (vs) => on(pathMatcher(vs), (c) => c.path), http);
  return out;
}

/** undefined for a key Istio does not know: the whole rule is then skipped, as Istio does. */
function compileCondition(key: string, values: string[], notValues: string[], policyNamespace: string, principals: (vs: readonly string[]) => Test): Condition[] | undefined {
  const attr = parseConditionKey(key);
  const out: Condition[] = [];
  switch (attr.kind) {
    case 'header': {
      const name = attr.name;
      field(out, values, notValues, (vs) => on(stringMatcher(vs, 'present'), (c) => headerValue(c, name)), { httpOnly: true });
      break;
    }
    case 'source.ip':
      field(out, values, notValues, ipTest((c) => c.sourceIp));
      break;
    case 'remote.ip':
      field(out, values, notValues, ipTest((c) => c.remoteIp));
      break;
    case 'destination.ip':
      field(out, values, notValues, ipTest((c) => c.destinationIp));
      break;
    case 'destination.port':
      field(out, values, notValues, portTest);
      break;
    case 'connection.sni':
      field(out, values, notValues, (vs) => on(stringMatcher(vs, 'non-empty'), (c) => c.sni));
      break;
    case 'source.namespace':
      field(out, values, notValues, namespaceTest);
      break;
    case 'source.principal':
      field(out, values, notValues, principals);
      break;
    case 'source.serviceAccount':
      field(out, values, notValues, (vs) => serviceAccountTest(vs, policyNamespace));
      break;
    case 'source.trustDomain':
      field(out, values, notValues, trustDomainTest);
      break;
    case 'jwt': {
      const read = jwtAttribute(attr.field, attr.claim);
      field(out, values, notValues, (vs) => {
        const m = stringMatcher(vs, 'non-empty');
        // A list (audiences, a list claim) matches when one of its values does.
        return (c) => read(c).some((v) => m(v));
      }, { httpOnly: true });
      break;
    }
    case 'envoy-filter':
      field(out, values, notValues, absent, { unsupported: true });
      break;
    case 'invalid':
      return undefined;
  }
  return out;
}

/** The values a `request.auth.*` key reads from the verified token; none without one. */
function jwtAttribute(field: 'principal' | 'audiences' | 'presenter' | 'claims', claim: readonly string[] | undefined): (c: Ctx) => readonly string[] {
  switch (field) {
    case 'principal':
      return (c) => (c.auth ? [c.auth.principal] : []);
    case 'audiences':
      return (c) => c.auth?.audiences ?? [];
    case 'presenter':
      return (c) => (c.auth?.presenter !== undefined ? [c.auth.presenter] : []);
    case 'claims':
      return (c) => {
        let v: unknown = c.auth?.claims;
        for (const name of claim ?? []) v = isObj(v) ? v[name] : undefined;
        // Istio matches string claims and lists of strings; other types never match.
        if (typeof v === 'string') return [v];
        if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
        if (typeof v === 'boolean') return [String(v)];
        return [];
      };
  }
}

/** Envoy keeps Host as `:authority`; repeated headers are compared joined with commas. */
function headerValue(c: Ctx, name: string): string | undefined {
  if (name === 'host' || name === ':authority') return c.rawHost;
  if (name === ':method') return c.method;
  if (name === ':path') return c.path;
  const v = c.headers?.[name];
  return Array.isArray(v) ? v.join(',') : v;
}

// ---------------------------------------------------------------- reading specs that validation has checked

export type Obj = Record<string, unknown>;

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function obj(v: unknown): Obj {
  return isObj(v) ? v : {};
}

export function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

export function strings(v: unknown): string[] {
  return list(v).filter((s): s is string => typeof s === 'string');
}
