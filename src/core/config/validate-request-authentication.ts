// Validation of security.istio.io RequestAuthentication: each jwtRule names an issuer, takes its keys
// from exactly one place (inline `jwks`, which must parse as a key set, or an http(s) `jwksUri`),
// and reads tokens from well-formed headers and parameters. A rule with no key source at all is
// valid Istio (its keys come from OpenID discovery), so it is a warning: meshgate does no discovery,
// and such a rule verifies nothing, turning every token of that issuer away (fail closed).

import type { FieldPath } from '../model/resource.js';
import { checkPolicyScope, strictFields } from './validate-authorization-policy.js';
import { Checker, asBool, asString, checkDuration, checkSize, eachObj, isHeaderName, isSet, stringList, type Obj } from './validate-common.js';

const RULE_FIELDS = [
  'issuer', 'audiences', 'jwksUri', 'jwks_uri', 'jwks', 'fromHeaders', 'fromParams', 'fromCookies',
  'outputPayloadToHeader', 'outputClaimToHeaders', 'forwardOriginalToken', 'timeout', 'spaceDelimitedClaims', 'presence',
];

export function validateRequestAuthentication(c: Checker, spec: Obj): void {
  strictFields(c, spec, ['spec'], ['selector', 'targetRef', 'targetRefs', 'jwtRules']);
  checkPolicyScope(c, spec);
  const issuers = new Map<string, FieldPath>();
  checkSize(c, spec.jwtRules, ['spec', 'jwtRules'], { max: 4096 });
  eachObj(c, spec.jwtRules, ['spec', 'jwtRules'], (rule, at) => {
    const issuer = checkRule(c, rule, at);
    if (issuer === undefined) return;
    const first = issuers.get(issuer);
    if (first) c.error([...at, 'issuer'], `issuer ${JSON.stringify(issuer)} is already configured by jwtRules[${String(first[first.length - 1])}]; one rule per issuer`);
    else issuers.set(issuer, at);
  });
}

function checkRule(c: Checker, rule: Obj, at: FieldPath): string | undefined {
  strictFields(c, rule, at, RULE_FIELDS);
  const issuer = asString(c, rule.issuer, [...at, 'issuer']);
  if (!issuer) c.error([...at, 'issuer'], 'issuer is required');
  stringList(c, rule.audiences, [...at, 'audiences']).forEach(({ value, at: vAt }) => {
    if (value === '') c.error(vAt, 'must not be empty');
  });
  // `jwks_uri` is the field's old spelling, still in Istio's schema; it means the same.
  const uriField = isSet(rule.jwks_uri) && !isSet(rule.jwksUri) ? 'jwks_uri' : 'jwksUri';
  if (isSet(rule.jwks_uri) && isSet(rule.jwksUri)) c.error([...at, 'jwks_uri'], 'cannot be set together with jwksUri (its new name); keep jwksUri');
  const uri = asString(c, rule[uriField], [...at, uriField]);
  const jwks = asString(c, rule.jwks, [...at, 'jwks']);
  if (uri !== undefined && jwks !== undefined) c.error([...at, 'jwks'], 'cannot be set together with jwksUri; use one of them');
  if (uri !== undefined && !isHttpUrl(uri)) c.error([...at, uriField], `${JSON.stringify(uri)} is not an http or https URL`);
  // Istio accepts a plain-http jwksUri and warns: keys fetched without TLS can be swapped on the way.
  else if (uri !== undefined && uri.startsWith('http:')) c.warn([...at, uriField], 'keys are fetched over plain http, where anyone on the path can replace them; use https');
  if (jwks !== undefined) {
    const why = jwksProblem(jwks);
    if (why) c.error([...at, 'jwks'], why);
    else if (/"kty"\s*:\s*"oct"/.test(jwks)) {
      c.warn([...at, 'jwks'], 'symmetric keys ("kty": "oct") are not used: meshgate verifies tokens only with public keys, so HS256/HS384/HS512 tokens are refused (401), where Envoy verifies them');
    }
  }
  if (uri === undefined && jwks === undefined) {
    // Istio accepts this and discovers the keys from the issuer; meshgate does not, and fails closed.
    c.warn(at, 'no jwksUri or jwks: meshgate does not discover keys from the issuer (OpenID discovery), so every token of this issuer is refused (401); set jwksUri');
  }
  eachObj(c, rule.fromHeaders, [...at, 'fromHeaders'], (h, hAt) => {
    strictFields(c, h, hAt, ['name', 'prefix']);
    const name = asString(c, h.name, [...hAt, 'name']);
    if (!name) c.error([...hAt, 'name'], 'name is required');
    else if (!isHeaderName(name.toLowerCase())) c.error([...hAt, 'name'], `${JSON.stringify(name)} is not a valid header name`);
    asString(c, h.prefix, [...hAt, 'prefix']);
  });
  for (const f of ['fromParams', 'fromCookies']) {
    for (const { value, at: vAt } of stringList(c, rule[f], [...at, f])) if (value === '') c.error(vAt, 'must not be empty');
  }
  const payloadHeader = asString(c, rule.outputPayloadToHeader, [...at, 'outputPayloadToHeader']);
  if (payloadHeader !== undefined && !isHeaderName(payloadHeader.toLowerCase())) c.error([...at, 'outputPayloadToHeader'], `${JSON.stringify(payloadHeader)} is not a valid header name`);
  eachObj(c, rule.outputClaimToHeaders, [...at, 'outputClaimToHeaders'], (o, oAt) => {
    strictFields(c, o, oAt, ['header', 'claim']);
    const header = asString(c, o.header, [...oAt, 'header']);
    const claim = asString(c, o.claim, [...oAt, 'claim']);
    if (!header) c.error([...oAt, 'header'], 'header is required');
    else if (!isHeaderName(header.toLowerCase())) c.error([...oAt, 'header'], `${JSON.stringify(header)} is not a valid header name`);
    if (!claim) c.error([...oAt, 'claim'], 'claim is required');
  });
  asBool(c, rule.forwardOriginalToken, [...at, 'forwardOriginalToken']);
  const spaced = stringList(c, rule.spaceDelimitedClaims, [...at, 'spaceDelimitedClaims']);
  for (const { value, at: vAt } of spaced) if (value === '') c.error(vAt, 'must not be empty');
  if (spaced.length > 64) c.error([...at, 'spaceDelimitedClaims'], 'at most 64 claims');
  if (isSet(rule.presence)) {
    asString(c, rule.presence, [...at, 'presence']);
    c.warn([...at, 'presence'], 'presence is not supported by meshgate: a token of this issuer is optional unless an AuthorizationPolicy requires a requestPrincipal');
  }
  checkDuration(c, rule.timeout, [...at, 'timeout']);
  return issuer || undefined;
}

function isHttpUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
  } catch {
    return false;
  }
}

/** Why an inline `jwks` is not a JSON Web Key Set, or undefined. */
export function jwksProblem(text: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return `jwks is not JSON: ${(err as Error).message}`;
  }
  if (typeof parsed !== 'object' || parsed === null || !Array.isArray((parsed as { keys?: unknown }).keys)) return 'jwks must be a JSON object with a "keys" list (a JSON Web Key Set)';
  const keys = (parsed as { keys: unknown[] }).keys;
  if (keys.length === 0) return 'jwks has no keys, so no token could verify';
  if (keys.some((k) => typeof k !== 'object' || k === null || typeof (k as { kty?: unknown }).kty !== 'string')) return 'every key in jwks needs a "kty"';
  return undefined;
}
