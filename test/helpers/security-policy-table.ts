// Builders and table runners for the security policy unit tables (test/peer-authentication.test.ts,
// test/authz-policy-*.test.ts): policies as YAML, loaded and validated as meshgate reads them; requests
// to reviews from productpage; rows of request → expected decision.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../../src/core/config/load.js';
import { validateAll } from '../../src/core/config/validate.js';
import type { Resource } from '../../src/core/model/resource.js';
import { compileAuthorization, type AuthzRequest, type TcpAuthzRequest } from '../../src/core/policy/authorization.js';
import { type WorkloadRef } from '../../src/core/policy/peer-authentication.js';

export function indent(body: string): string {
  return body.trim().split('\n').map((l) => `  ${l}`).join('\n');
}

export function doc(kind: string, name: string, ns: string, body: string, extraMeta = ''): string {
  const spec = body.trim() === '' || body.trim() === '{}' ? 'spec: {}' : `spec:\n${indent(body)}`;
  return `apiVersion: security.istio.io/v1\nkind: ${kind}\nmetadata: {name: ${name}, namespace: ${ns}${extraMeta}}\n${spec}\n`;
}

export const pa = (name: string, ns: string, body: string, extraMeta = ''): string => doc('PeerAuthentication', name, ns, body, extraMeta);
export const ap = (name: string, ns: string, body: string, extraMeta = ''): string => doc('AuthorizationPolicy', name, ns, body, extraMeta);
export const created = (ts: string): string => `, creationTimestamp: "${ts}"`;

/** Loads and validates: every policy in these tables must be one meshgate accepts as written. */
export function load(docs: readonly string[]): Resource[] {
  const { resources, problems } = parseConfigText(docs.join('---\n'), 'policies.yaml');
  assert.deepEqual(problems, []);
  const { valid, problems: found } = validateAll(resources);
  assert.deepEqual(found.filter((p) => p.severity === 'error'), []);
  return valid;
}

export const REVIEWS: WorkloadRef = { namespace: 'shop', labels: { app: 'reviews', version: 'v1' } };

export const PRODUCTPAGE = 'cluster.local/ns/shop/sa/productpage';

/** A request to reviews from productpage over mTLS, unless told otherwise. */
export function http(over: Partial<AuthzRequest> = {}): AuthzRequest {
  return {
    principal: PRODUCTPAGE,
    sourceIp: '10.0.0.5',
    destinationIp: '10.0.1.7',
    destinationPort: 9080,
    host: 'reviews.shop.svc.cluster.local:9080',
    method: 'GET',
    path: '/',
    headers: {},
    ...over,
  };
}

export function tcp(over: Partial<TcpAuthzRequest> = {}): TcpAuthzRequest {
  return { principal: PRODUCTPAGE, sourceIp: '10.0.0.5', destinationIp: '10.0.1.7', destinationPort: 3306, ...over };
}

export interface Decision {
  readonly allowed: boolean;
  readonly policy?: string;
}
export const ALLOWED: Decision = { allowed: true };
export const DENIED: Decision = { allowed: false };
export const allowedBy = (policy: string): Decision => ({ allowed: true, policy: `AuthorizationPolicy ${policy}` });
export const deniedBy = (policy: string): Decision => ({ allowed: false, policy: `AuthorizationPolicy ${policy}` });

/** [what, request, expected decision] */
export type Row = readonly [string, AuthzRequest | TcpAuthzRequest, Decision];

export function authzTable(title: string, docs: readonly string[], rows: readonly Row[], workload: WorkloadRef = REVIEWS): void {
  describe(title, () => {
    const authorizer = compileAuthorization(load(docs), workload);
    for (const [what, req, expected] of rows) {
      it(what, () => {
        const d = 'method' in req ? authorizer.evaluate(req) : authorizer.evaluateTcp(req);
        assert.equal(d.allowed, expected.allowed, `allowed (${d.reason})`);
        if (expected.policy !== undefined) assert.equal(d.policy, expected.policy, d.reason);
        assert.ok(d.reason.length > 0);
      });
    }
  });
}

/** One ALLOW policy for reviews with these rules; a request is allowed exactly when a rule matches. */
export function allowRules(title: string, rules: string, rows: ReadonlyArray<readonly [string, AuthzRequest | TcpAuthzRequest, boolean]>, extra: readonly string[] = []): void {
  authzTable(title, [ap('allow', 'shop', `selector: {matchLabels: {app: reviews}}\nrules:\n${rules}`), ...extra], rows.map(([w, r, ok]) => [w, r, ok ? allowedBy('shop/allow') : DENIED] as const));
}

export const PLAINTEXT = { principal: undefined };
