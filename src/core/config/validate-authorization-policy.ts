// Validation of security.istio.io AuthorizationPolicy (docs/security.md): Istio's own rules (selector
// or targetRefs, DENY/CUSTOM need rules, non-empty sources and operations, IPs, ports, path templates,
// known `when` keys) plus warnings where meshgate cannot do what the policy asks (targetRefs) and
// where a DENY rule silently widens on plain TCP traffic. Whether a CUSTOM policy's provider exists
// is the analyzers' question (analyze/ext-authz-providers.ts): it lives in the mesh config.

import type { FieldPath } from '../model/resource.js';
import { DRY_RUN_ANNOTATION } from '../model/security.js';
import {
  isPathTemplate, parseConditionKey, parsePortText, pathTemplateProblem, serviceAccountProblem, wildcardProblem, type ConditionAttribute,
} from '../policy/authz-match.js';
import { closest } from './suggest.js';
import { Checker, asEnum, asObj, asString, checkSize, checkWorkloadSelector, eachObj, isIpOrCidr, isSet, stringList, type Obj } from './validate-common.js';

const ACTIONS = ['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'] as const;
type Action = (typeof ACTIONS)[number];

const SOURCE_FIELDS = [
  'principals', 'notPrincipals', 'requestPrincipals', 'notRequestPrincipals', 'namespaces', 'notNamespaces',
  'serviceAccounts', 'notServiceAccounts', 'trustDomains', 'notTrustDomains', 'ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks',
] as const;
const OPERATION_FIELDS = ['hosts', 'notHosts', 'ports', 'notPorts', 'methods', 'notMethods', 'paths', 'notPaths'] as const;
const IP_FIELDS = new Set(['ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks']);
/** Target kinds Istio accepts, by canonical group (`core` for the empty group). */
const TARGET_KINDS: Readonly<Record<string, string>> = {
  Service: 'core',
  ServiceEntry: 'networking.istio.io',
  Gateway: 'gateway.networking.k8s.io',
  GatewayClass: 'gateway.networking.k8s.io',
};
const GO_TRUE = ['1', 't', 'T', 'true', 'TRUE', 'True'];
const GO_FALSE = ['0', 'f', 'F', 'false', 'FALSE', 'False'];

/**
 * Unknown fields are errors in the security kinds: a misspelt field would otherwise be dropped and
 * the policy would silently let in (or keep out) someone else than it says.
 */
export function strictFields(c: Checker, o: Obj, path: FieldPath, fields: readonly string[]): void {
  for (const key of Object.keys(o)) {
    if (fields.includes(key)) continue;
    const near = closest(key, fields);
    c.error([...path, key], `unknown field; ${near ? `did you mean \`${near}\`? ` : ''}expected one of ${fields.join(', ')}`);
  }
}

export function validateAuthorizationPolicy(c: Checker, spec: Obj): void {
  strictFields(c, spec, ['spec'], ['selector', 'targetRef', 'targetRefs', 'action', 'provider', 'rules']);
  const action: Action | undefined = isSet(spec.action) ? asEnum(c, spec.action, ['spec', 'action'], ACTIONS) : 'ALLOW';
  checkDryRun(c);
  checkPolicyScope(c, spec);

  const hasRules = Array.isArray(spec.rules) && spec.rules.length > 0;
  const provider = asObj(c, spec.provider, ['spec', 'provider']);
  if (provider) strictFields(c, provider, ['spec', 'provider'], ['name']);
  const providerName = provider ? asString(c, provider.name, ['spec', 'provider', 'name']) : undefined;
  if (action === 'CUSTOM') {
    if (!hasRules) c.error(['spec', 'rules'], 'CUSTOM without rules never triggers; add an empty rule {} to send every request to the provider');
    else if (!providerName) c.error(['spec', 'provider', 'name'], 'provider.name is required with action CUSTOM');
  } else if (provider && action !== undefined) {
    c.error(['spec', 'provider'], `provider is only for action CUSTOM, not ${action}`);
  }
  if (action === 'DENY' && !hasRules) c.error(['spec', 'rules'], 'DENY without rules never triggers; add an empty rule {} to deny every request');

  checkSize(c, spec.rules, ['spec', 'rules'], { max: 512 });
  eachObj(c, spec.rules, ['spec', 'rules'], (rule, at) => checkRule(c, rule, at, action ?? 'ALLOW'));
}

function checkDryRun(c: Checker): void {
  const value = c.resource.metadata.annotations[DRY_RUN_ANNOTATION];
  if (value === undefined || GO_TRUE.includes(value) || GO_FALSE.includes(value)) return;
  c.warn(['metadata', 'annotations', DRY_RUN_ANNOTATION], `${JSON.stringify(value)} is not "true" or "false"; the policy is enforced`);
}

/** selector, or targetRef, or targetRefs (at most one), as AuthorizationPolicy, RequestAuthentication and Telemetry share them. */
export function checkPolicyScope(c: Checker, spec: Obj): void {
  checkWorkloadSelector(c, spec.selector, ['spec', 'selector'], 'matchLabels');
  const set = ['selector', 'targetRef', 'targetRefs'].filter((f) => isSet(spec[f]) && !(Array.isArray(spec[f]) && (spec[f] as unknown[]).length === 0));
  for (const extra of set.slice(1)) c.error(['spec', extra], `cannot be set together with ${set[0]}; use only one of selector, targetRef, targetRefs`);
  const target = asObj(c, spec.targetRef, ['spec', 'targetRef']);
  if (target) checkTargetRef(c, target, ['spec', 'targetRef']);
  checkSize(c, spec.targetRefs, ['spec', 'targetRefs'], { max: 16 });
  eachObj(c, spec.targetRefs, ['spec', 'targetRefs'], (ref, at) => checkTargetRef(c, ref, at));
  if (set.includes('targetRef') || set.includes('targetRefs')) {
    const field = set.includes('targetRefs') ? 'targetRefs' : 'targetRef';
    c.warn(['spec', field], 'a policy with targetRefs attaches to Gateway API gateways and waypoints, never to a sidecar workload; meshgate applies it nowhere');
  }
}

function checkTargetRef(c: Checker, ref: Obj, at: FieldPath): void {
  strictFields(c, ref, at, ['group', 'kind', 'name', 'namespace']);
  const group = asString(c, ref.group, [...at, 'group']) ?? '';
  const kind = asString(c, ref.kind, [...at, 'kind']);
  const name = asString(c, ref.name, [...at, 'name']);
  if (!name) c.error([...at, 'name'], 'targetRef name is required');
  // Istio's schema: a DNS subdomain's 253 characters for the group and the name.
  checkSize(c, group, [...at, 'group'], { max: 253 });
  checkSize(c, name, [...at, 'name'], { max: 253 });
  if (asString(c, ref.namespace, [...at, 'namespace'])) c.error([...at, 'namespace'], 'must not be set: a policy can only target resources in its own namespace');
  if (!kind) c.error([...at, 'kind'], 'targetRef kind is required');
  else if (TARGET_KINDS[kind] !== (group === '' ? 'core' : group)) {
    const allowed = Object.entries(TARGET_KINDS).map(([k, g]) => `${g === 'core' ? '' : `${g}/`}${k}`).join(', ');
    c.error([...at, 'kind'], `cannot target ${group ? `${group}/` : ''}${kind}; use one of ${allowed}`);
  }
}

function checkRule(c: Checker, rule: Obj, at: FieldPath, action: Action): void {
  strictFields(c, rule, at, ['from', 'to', 'when']);
  if (Array.isArray(rule.from) && rule.from.length === 0) c.error([...at, 'from'], 'must not be empty; leave from out to match any source');
  checkSize(c, rule.from, [...at, 'from'], { max: 512 });
  if (Array.isArray(rule.to) && rule.to.length === 0) c.error([...at, 'to'], 'must not be empty; leave to out to match any operation');
  const sources: Obj[] = [];
  const operations: Obj[] = [];
  eachObj(c, rule.from, [...at, 'from'], (from, fAt) => {
    strictFields(c, from, fAt, ['source']);
    if (!isSet(from.source)) c.error([...fAt, 'source'], 'source is required; leave the whole entry out to match any source');
    const source = asObj(c, from.source, [...fAt, 'source']);
    if (source) {
      checkSource(c, source, [...fAt, 'source'], action);
      sources.push(source);
    }
  });
  eachObj(c, rule.to, [...at, 'to'], (to, tAt) => {
    strictFields(c, to, tAt, ['operation']);
    if (!isSet(to.operation)) c.error([...tAt, 'operation'], 'operation is required; leave the whole entry out to match any operation');
    const operation = asObj(c, to.operation, [...tAt, 'operation']);
    if (operation) {
      checkOperation(c, operation, [...tAt, 'operation']);
      operations.push(operation);
    }
  });
  const keys: ConditionAttribute[] = [];
  eachObj(c, rule.when, [...at, 'when'], (cond, wAt) => {
    const attr = checkCondition(c, cond, wAt, action);
    if (attr) keys.push(attr);
  });
}

function checkSource(c: Checker, source: Obj, at: FieldPath, action: Action): void {
  strictFields(c, source, at, SOURCE_FIELDS);
  if (!SOURCE_FIELDS.some((f) => isSet(source[f]) && !(Array.isArray(source[f]) && (source[f] as unknown[]).length === 0))) {
    c.error(at, 'source must set at least one field; leave the whole entry out to match any source');
  }
  for (const f of SOURCE_FIELDS) {
    for (const { value, at: vAt } of stringList(c, source[f], [...at, f])) {
      if (IP_FIELDS.has(f)) {
        if (!isIpOrCidr(value)) c.error(vAt, `${JSON.stringify(value)} is not an IP address or CIDR block`);
      } else if (f === 'serviceAccounts' || f === 'notServiceAccounts') {
        const why = serviceAccountProblem(value);
        if (why) c.error(vAt, why);
      } else {
        const why = wildcardProblem(value);
        if (why) c.error(vAt, why);
        else if ((f === 'principals' || f === 'notPrincipals') && value.startsWith('spiffe://')) {
          c.warn(vAt, 'principals are written without "spiffe://" (cluster.local/ns/<ns>/sa/<sa>); this value never matches');
        }
      }
    }
  }
  for (const f of ['serviceAccounts', 'notServiceAccounts']) {
    if (Array.isArray(source[f]) && (source[f] as unknown[]).length > 16) c.error([...at, f], 'at most 16 service accounts are allowed');
  }
  const usesSa = ['serviceAccounts', 'notServiceAccounts'].find((f) => Array.isArray(source[f]) && (source[f] as unknown[]).length > 0);
  const usesIdentity = ['principals', 'notPrincipals', 'namespaces', 'notNamespaces'].find((f) => Array.isArray(source[f]) && (source[f] as unknown[]).length > 0);
  if (usesSa && usesIdentity) c.error([...at, usesSa], `cannot be set together with ${usesIdentity}; serviceAccounts already names the namespace`);
}

function checkOperation(c: Checker, op: Obj, at: FieldPath): void {
  strictFields(c, op, at, OPERATION_FIELDS);
  if (!OPERATION_FIELDS.some((f) => isSet(op[f]) && !(Array.isArray(op[f]) && (op[f] as unknown[]).length === 0))) {
    c.error(at, 'operation must set at least one field; leave the whole entry out to match any operation');
  }
  for (const f of OPERATION_FIELDS) {
    for (const { value, at: vAt } of stringList(c, op[f], [...at, f])) {
      if (f === 'ports' || f === 'notPorts') {
        if (parsePortText(value) === undefined) c.error(vAt, `${JSON.stringify(value)} is not a port number (0 to 65535)`);
        continue;
      }
      if ((f === 'paths' || f === 'notPaths') && isPathTemplate(value)) {
        const why = pathTemplateProblem(value);
        if (why) c.error(vAt, why);
        continue;
      }
      const why = wildcardProblem(value);
      if (why) {
        c.error(vAt, why);
        continue;
      }
      if ((f === 'methods' || f === 'notMethods') && value !== value.toUpperCase()) {
        c.warn(vAt, `methods are compared case-sensitively and requests carry upper-case methods; ${JSON.stringify(value)} never matches`);
      }
      if (f === 'paths' || f === 'notPaths') {
        if (value.includes('?')) c.warn(vAt, 'paths are compared without the query string, so a value with "?" never matches');
        else if (!value.startsWith('/') && !value.startsWith('*')) c.warn(vAt, 'request paths start with "/"; this value never matches');
      }
    }
  }
}

/** The key's attribute when the key is usable, for the TCP check. */
function checkCondition(c: Checker, cond: Obj, at: FieldPath, action: Action): ConditionAttribute | undefined {
  strictFields(c, cond, at, ['key', 'values', 'notValues']);
  const key = asString(c, cond.key, [...at, 'key']);
  if (!key) c.error([...at, 'key'], 'key is required');
  const values = [...stringList(c, cond.values, [...at, 'values']), ...stringList(c, cond.notValues, [...at, 'notValues'])];
  if (values.length === 0) c.error(at, `at least one of values or notValues must be set${key ? ` for ${key}` : ''}`);
  if (!key) return undefined;
  const attr = parseConditionKey(key);
  switch (attr.kind) {
    case 'invalid':
      c.error([...at, 'key'], attr.message);
      return undefined;
    case 'envoy-filter':
      c.warn([...at, 'key'], action === 'ALLOW'
        ? `${key} reads Envoy filter metadata, which meshgate does not have; an ALLOW rule that uses it never matches`
        : `${key} reads Envoy filter metadata, which meshgate does not have; the value always counts as absent`);
      break;
    default:
      break;
  }
  for (const { value, at: vAt } of values) {
    let why: string | undefined;
    switch (attr.kind) {
      case 'source.ip':
      case 'remote.ip':
      case 'destination.ip':
        why = isIpOrCidr(value) ? undefined : `${JSON.stringify(value)} is not an IP address or CIDR block`;
        break;
      case 'destination.port':
        why = parsePortText(value) === undefined ? `${JSON.stringify(value)} is not a port number (0 to 65535)` : undefined;
        break;
      case 'source.serviceAccount':
        why = serviceAccountProblem(value);
        break;
      default:
        why = wildcardProblem(value);
    }
    if (why) c.error(vAt, why);
  }
  return attr;
}

