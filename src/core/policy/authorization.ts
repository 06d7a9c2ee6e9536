// AuthorizationPolicy evaluation for one workload (docs/security.md). compileAuthorization() picks the
// policies that apply (root namespace and own namespace, selector or namespace-wide; targetRefs
// attach to gateways and waypoints, never to a workload here), compiles every rule twice, for HTTP
// and for plain TCP, and leaves evaluate() nothing to do but compare: CUSTOM, then DENY, then ALLOW,
// where a workload without ALLOW policies allows everything. A CUSTOM policy whose rules match names
// the external authorizer (its `provider`) that must allow the request before DENY and ALLOW count;
// the asking is the authorize stage's (proxy/ext-authz.ts). On plain TCP there is no request to send
// an authorizer, so a matching CUSTOM rule denies (fail closed). AUDIT never changes the decision,
// and nor does a dry-run policy (`istio.io/dry-run`): its ALLOW and DENY rules are evaluated on their
// own, as Istio's shadow rules are, and evaluateDryRun() says what they would have decided.

import type { IncomingHttpHeaders } from 'node:http';
import type { Resource } from '../model/resource.js';
import { compareByCreation, resourceRef } from '../model/resource.js';
import { DRY_RUN_ANNOTATION } from '../model/security.js';
import { selectorMatches } from '../registry/labels.js';
import { toIpAddress } from './authz-match.js';
import { compileRule, isObj, list, obj, type Condition, type Ctx, type RuleIR, type Test } from './authz-rules.js';
import type { WorkloadRef } from './peer-authentication.js';
import { DEFAULT_TRUST_DOMAINS, type TrustDomains } from '../pki/trust-domain.js';
import type { RequestAuth } from './request-authentication.js';
import type { PeerNames } from '../tls/peer-identity.js';

export type { WorkloadRef } from './peer-authentication.js';

export interface AuthzRequest {
  /** Peer identity WITHOUT `spiffe://` (absent for plaintext). */
  readonly principal?: string;
  /**
   * Every name of the peer's certificate, when it may hold several (a gateway's client): rules on
   * peer identities match any of them, as Envoy's; `principal` is then ignored.
   */
  readonly peerNames?: PeerNames;
  readonly sourceIp: string;
  /** Original client (x-forwarded-for derived); defaults to sourceIp. */
  readonly remoteIp?: string;
  readonly destinationIp?: string;
  readonly destinationPort: number;
  /** `:authority` as sent, including any `:port`. */
  readonly host: string;
  readonly method: string;
  /** Normalized path, query already stripped. */
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly sni?: string;
  /** The verified JWT of the request (RequestAuthentication), if it carried one. */
  readonly auth?: RequestAuth;
}

export interface AuthzDecision {
  readonly allowed: boolean;
  /** `AuthorizationPolicy ns/name` that decided. */
  readonly policy?: string;
  readonly reason: string;
  /**
   * CUSTOM policies matched: each provider named must allow the request first (in this order, one
   * ask per provider); `allowed` is then what DENY and ALLOW say.
   */
  readonly ask?: readonly ExtAuthzAsk[];
}

/** A CUSTOM policy that matched a request, and the extension provider it names. */
export interface ExtAuthzAsk {
  readonly provider: string;
  /** `AuthorizationPolicy ns/name`. */
  readonly policy: string;
}

export type TcpAuthzRequest = Omit<AuthzRequest, 'host' | 'method' | 'path' | 'headers' | 'auth'>;

/** What the dry-run policies of one action would have decided (Istio's authz_dry_run_* labels). */
export interface DryRunResult {
  readonly action: 'allow' | 'deny';
  readonly result: 'allowed' | 'denied';
  /** Istio's id of the rule that matched, `ns[foo]-policy[name]-rule[0]`; absent when none did. */
  readonly rule?: string;
}

export interface Authorizer {
  /**
   * No policy applies: everything is allowed without evaluating. (Policies that cannot change a
   * decision, AUDIT and dry-run ones, do not count.)
   */
  readonly empty: boolean;
  /** HTTP. */
  evaluate(req: AuthzRequest): AuthzDecision;
  /** L4: rules with HTTP-only fields are skipped in ALLOW; in DENY those fields are ignored, which widens the rule. */
  evaluateTcp(req: TcpAuthzRequest): AuthzDecision;
  /** Dry-run policies apply to this workload. */
  readonly dryRun: boolean;
  /** HTTP: what the dry-run DENY policies, then the dry-run ALLOW policies, would decide (each set that exists). */
  evaluateDryRun(req: AuthzRequest): readonly DryRunResult[];
  /** The same for a connection passed through as TCP, by the TCP variants of their rules (as evaluateTcp). */
  evaluateDryRunTcp(req: TcpAuthzRequest): readonly DryRunResult[];
}

// ---------------------------------------------------------------- compiled form

interface CompiledRule {
  readonly test: Test;
  readonly decision: AuthzDecision;
  /** `ns[foo]-policy[name]-rule[0]`, as Istio names rules in its logs and metrics. */
  readonly id: string;
}

interface CompiledPolicy {
  readonly ref: string;
  /** CUSTOM: the extension provider its matches are sent to. */
  readonly ask?: ExtAuthzAsk;
  readonly http: readonly CompiledRule[];
  readonly tcp: readonly CompiledRule[];
}

// ---------------------------------------------------------------- compile

/** `tds`: the trust domains its principals stand for (core/pki/trust-domain.ts); cluster.local alone by default. */
export function compileAuthorization(resources: readonly Resource[], workload: WorkloadRef, rootNamespace = 'istio-system', tds: TrustDomains = DEFAULT_TRUST_DOMAINS): Authorizer {
  const applicable = resources
    .filter((r) => r.kind === 'AuthorizationPolicy' && appliesTo(r, workload, rootNamespace))
    // Root-namespace policies first (Istio evaluates them in a filter of their own), oldest first.
    .sort((a, b) => rank(a, rootNamespace) - rank(b, rootNamespace) || compareByCreation(a, b));
  const custom: CompiledPolicy[] = [];
  const enforced = { deny: [] as CompiledPolicy[], allow: [] as CompiledPolicy[] };
  const dryRun = { deny: [] as CompiledPolicy[], allow: [] as CompiledPolicy[] };
  for (const r of applicable) {
    const spec = obj(r.spec);
    const action = spec.action ?? 'ALLOW';
    if (action !== 'ALLOW' && action !== 'DENY' && action !== 'CUSTOM') continue;
    const dry = isDryRun(r);
    // A dry-run CUSTOM policy has no authorizer to ask; it is left out, as before.
    if (dry && action === 'CUSTOM') continue;
    const rules = list(spec.rules).map((rule) => (isObj(rule) ? compileRule(rule, r.metadata.namespace, tds) : undefined));
    const id = `ns[${r.metadata.namespace}]-policy[${r.metadata.name}]`;
    if (action === 'CUSTOM') {
      const provider = isObj(spec.provider) && typeof spec.provider.name === 'string' ? spec.provider.name : '';
      // Matched like DENY rules (a condition meshgate cannot read widens the match: the authorizer is asked).
      custom.push({ ...compilePolicy(resourceRef(r), 'DENY', rules, id, 'CUSTOM'), ask: Object.freeze({ provider, policy: resourceRef(r) }) });
    } else (dry ? dryRun : enforced)[action === 'DENY' ? 'deny' : 'allow'].push(compilePolicy(resourceRef(r), action, rules, id));
  }
  return new PolicySet(custom, enforced.deny, enforced.allow, dryRun);
}

function rank(r: Resource, root: string): number {
  return r.metadata.namespace === root ? 0 : 1;
}

/**
 * Whether a security policy (AuthorizationPolicy, RequestAuthentication) selects a workload: in its
 * namespace or the root namespace, by `selector.matchLabels` or namespace-wide; targetRefs never.
 */
export function appliesTo(r: Resource, workload: WorkloadRef, root: string): boolean {
  const ns = r.metadata.namespace;
  if (ns !== workload.namespace && ns !== root) return false;
  const spec = obj(r.spec);
  if (isObj(spec.targetRef) || list(spec.targetRefs).length > 0) return false;
  const matchLabels = isObj(spec.selector) && isObj(spec.selector.matchLabels) ? stringRecord(spec.selector.matchLabels) : undefined;
  // A root-namespace policy's selector picks workloads in every namespace.
  return selectorMatches(matchLabels, workload.labels);
}

/** Go's strconv.ParseBool, which Istio uses; anything else leaves the policy enforced. */
function isDryRun(r: Resource): boolean {
  return ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(r.metadata.annotations[DRY_RUN_ANNOTATION] ?? '');
}

function compilePolicy(ref: string, action: 'ALLOW' | 'DENY', rules: ReadonlyArray<RuleIR | undefined>, policyId: string, written: 'ALLOW' | 'DENY' | 'CUSTOM' = action): CompiledPolicy {
  const http: CompiledRule[] = [];
  const tcp: CompiledRule[] = [];
  rules.forEach((rule, i) => {
    if (!rule || rule.broken) return;
    const decision: AuthzDecision = Object.freeze({
      allowed: action === 'ALLOW',
      policy: ref,
      reason: written === 'CUSTOM' ? `CUSTOM rules[${i}] of ${ref} matched, on a connection with no HTTP request to send its authorizer: denied` : `${action} rules[${i}] of ${ref} matched`,
    });
    // An ALLOW rule that needs an attribute meshgate cannot know never matches (it would only widen access).
    const hasUnsupported = all(rule).some((c) => c.unsupported);
    const id = `${policyId}-rule[${i}]`;
    if (action === 'DENY' || !hasUnsupported) http.push({ test: ruleTest(rule, () => true), decision, id });
    // On TCP, Istio drops a whole ALLOW rule with HTTP-only conditions, and drops only the conditions in DENY.
    if (action === 'DENY') tcp.push({ test: ruleTest(rule, (c) => !c.httpOnly), decision, id });
    else if (!hasUnsupported && !all(rule).some((c) => c.httpOnly)) tcp.push({ test: ruleTest(rule, () => true), decision, id });
  });
  return { ref, http, tcp };
}

function all(rule: RuleIR): Condition[] {
  return [...(rule.from ?? []).flat(), ...(rule.to ?? []).flat(), ...rule.when];
}

function ruleTest(rule: RuleIR, keep: (c: Condition) => boolean): Test {
  const and = (conds: readonly Condition[]): Test => {
    const tests = conds.filter(keep).map((c) => c.test);
    if (tests.length === 0) return () => true;
    if (tests.length === 1) return tests[0]!;
    return (ctx) => tests.every((t) => t(ctx));
  };
  const or = (groups: readonly (readonly Condition[])[] | undefined): Test | undefined => {
    if (groups === undefined) return undefined;
    const tests = groups.map(and);
    return tests.length === 1 ? tests[0]! : (ctx) => tests.some((t) => t(ctx));
  };
  const parts = [or(rule.from), or(rule.to), rule.when.length > 0 ? and(rule.when) : undefined].filter((t): t is Test => t !== undefined);
  if (parts.length === 0) return () => true; // `rules: [{}]` matches everything
  if (parts.length === 1) return parts[0]!;
  return (ctx) => parts.every((t) => t(ctx));
}

// ---------------------------------------------------------------- evaluate

const EMPTY_ALLOWED: AuthzDecision = Object.freeze({ allowed: true, reason: 'no authorization policy applies' });
const NO_ALLOW_POLICY: AuthzDecision = Object.freeze({ allowed: true, reason: 'no DENY policy matched and no ALLOW policy applies' });
const NO_ALLOW_MATCH: AuthzDecision = Object.freeze({ allowed: false, reason: 'no ALLOW policy matched' });

class PolicySet implements Authorizer {
  readonly empty: boolean;
  readonly dryRun: boolean;
  constructor(
    private readonly custom: readonly CompiledPolicy[],
    private readonly deny: readonly CompiledPolicy[],
    private readonly allow: readonly CompiledPolicy[],
    private readonly shadow: { readonly deny: readonly CompiledPolicy[]; readonly allow: readonly CompiledPolicy[] },
  ) {
    this.empty = custom.length === 0 && deny.length === 0 && allow.length === 0;
    this.dryRun = shadow.deny.length > 0 || shadow.allow.length > 0;
  }

  evaluate(req: AuthzRequest): AuthzDecision {
    if (this.empty) return EMPTY_ALLOWED;
    const ctx = httpCtx(req);
    const decision = this.decide(ctx, 'http');
    if (this.custom.length === 0) return decision;
    let ask: ExtAuthzAsk[] | undefined;
    for (const p of this.custom) {
      if (!p.ask || ask?.some((a) => a.provider === p.ask!.provider)) continue;
      if (p.http.some((rule) => rule.test(ctx))) (ask ??= []).push(p.ask);
    }
    return ask ? { ...decision, ask } : decision;
  }

  evaluateDryRun(req: AuthzRequest): readonly DryRunResult[] {
    return this.dryRun ? this.shadowResults(httpCtx(req), 'http') : [];
  }

  evaluateDryRunTcp(req: TcpAuthzRequest): readonly DryRunResult[] {
    return this.dryRun ? this.shadowResults(l4(req), 'tcp') : [];
  }

  private shadowResults(ctx: Ctx, chain: 'http' | 'tcp'): readonly DryRunResult[] {
    const matched = (policies: readonly CompiledPolicy[]): string | undefined => {
      for (const p of policies) for (const rule of p[chain]) if (rule.test(ctx)) return rule.id;
      return undefined;
    };
    const out: DryRunResult[] = [];
    if (this.shadow.deny.length > 0) {
      const rule = matched(this.shadow.deny);
      out.push(rule ? { action: 'deny', result: 'denied', rule } : { action: 'deny', result: 'allowed' });
    }
    if (this.shadow.allow.length > 0) {
      const rule = matched(this.shadow.allow);
      out.push(rule ? { action: 'allow', result: 'allowed', rule } : { action: 'allow', result: 'denied' });
    }
    return out;
  }

  evaluateTcp(req: TcpAuthzRequest): AuthzDecision {
    if (this.empty) return EMPTY_ALLOWED;
    const ctx = l4(req);
    for (const p of this.custom) for (const rule of p.tcp) if (rule.test(ctx)) return rule.decision;
    return this.decide(ctx, 'tcp');
  }

  private decide(ctx: Ctx, chain: 'http' | 'tcp'): AuthzDecision {
    for (const p of this.deny) for (const rule of p[chain]) if (rule.test(ctx)) return rule.decision;
    if (this.allow.length === 0) return NO_ALLOW_POLICY;
    for (const p of this.allow) for (const rule of p[chain]) if (rule.test(ctx)) return rule.decision;
    return NO_ALLOW_MATCH;
  }
}

function httpCtx(req: AuthzRequest): Ctx {
  const path = typeof req.path === 'string' ? req.path : '';
  const q = path.indexOf('?');
  const host = typeof req.host === 'string' && req.host !== '' ? req.host : undefined;
  return {
    ...l4(req),
    ...(host !== undefined ? { host: host.toLowerCase(), rawHost: host } : {}),
    method: req.method,
    path: q < 0 ? path : path.slice(0, q),
    headers: req.headers ?? {},
    ...(req.auth ? { auth: req.auth } : {}),
  };
}

const NO_NAMES: readonly string[] = Object.freeze([]);

function l4(req: TcpAuthzRequest): Ctx {
  const sourceIp = toIpAddress(req.sourceIp);
  const names = req.peerNames;
  return {
    principals: names ? names.principals : typeof req.principal === 'string' && req.principal !== '' ? [req.principal] : NO_NAMES,
    otherNames: names ? names.others : NO_NAMES,
    sourceIp,
    remoteIp: req.remoteIp !== undefined ? toIpAddress(req.remoteIp) : sourceIp,
    destinationIp: toIpAddress(req.destinationIp),
    destinationPort: req.destinationPort,
    sni: typeof req.sni === 'string' && req.sni !== '' ? req.sni : undefined,
  };
}

function stringRecord(v: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) if (typeof val === 'string') out[k] = val;
  return out;
}
