// Unit tables for how AuthorizationPolicies make one decision (docs/security.md): scope, DENY before
// ALLOW, empty-policy semantics, the policy and reason a decision carries, and plain TCP connections,
// where HTTP-only fields drop out. YAML in, decisions out.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compileAuthorization } from '../src/core/policy/authorization.js';
import { allowedBy, ALLOWED, ap, authzTable, DENIED, deniedBy, http, load, REVIEWS, tcp } from './helpers/security-policy-table.js';

describe('AuthorizationPolicy scope', () => {
  const cases: ReadonlyArray<readonly [string, readonly string[], boolean]> = [
    // [what, policies, whether they apply to reviews in shop]
    ['a root-namespace policy without selector is mesh-wide', [ap('deny-all', 'istio-system', '{}')], true],
    ['a namespace policy without selector covers the namespace', [ap('deny-all', 'shop', '{}')], true],
    ['a policy in another namespace does not apply', [ap('deny-all', 'web', '{}')], false],
    ['a matching selector in the own namespace applies', [ap('x', 'shop', 'selector: {matchLabels: {app: reviews, version: v1}}')], true],
    ['a selector that does not match does not apply', [ap('x', 'shop', 'selector: {matchLabels: {app: reviews, version: v2}}')], false],
    ['a selector in another namespace does not apply', [ap('x', 'web', 'selector: {matchLabels: {app: reviews}}')], false],
    ['a root-namespace selector applies in every namespace', [ap('x', 'istio-system', 'selector: {matchLabels: {app: reviews}}')], true],
    ['targetRefs never attach to a workload', [ap('x', 'shop', 'targetRefs: [{kind: Service, group: "", name: reviews}]')], false],
    ['AUDIT never changes the decision', [ap('x', 'shop', 'action: AUDIT\nrules: [{}]')], false],
    ['a dry-run policy never changes the decision', [ap('x', 'shop', '{}', ', annotations: {"istio.io/dry-run": "true"}')], false],
    ['a dry-run DENY never changes the decision', [ap('x', 'shop', 'action: DENY\nrules: [{}]', ', annotations: {"istio.io/dry-run": "True"}')], false],
    ['dry-run "false" is enforced', [ap('x', 'shop', '{}', ', annotations: {"istio.io/dry-run": "false"}')], true],
  ];
  for (const [what, docs, applies] of cases) {
    it(what, () => {
      const a = compileAuthorization(load(docs), REVIEWS);
      assert.equal(a.empty, !applies, 'empty');
      // Every policy above denies all when it applies.
      assert.equal(a.evaluate(http()).allowed, !applies);
      assert.equal(a.evaluateTcp(tcp()).allowed, !applies);
    });
  }
  it('CUSTOM names its provider for the requests its rules match; on plain TCP it denies (fail closed)', () => {
    const a = compileAuthorization(load([ap('x', 'shop', 'action: CUSTOM\nprovider: {name: ext}\nrules: [{to: [{operation: {paths: [/admin]}}]}]'), ap('y', 'shop', 'action: CUSTOM\nprovider: {name: ext}\nrules: [{}]')]), REVIEWS);
    assert.equal(a.empty, false);
    const asked = a.evaluate(http({ path: '/admin' }));
    assert.equal(asked.allowed, true, 'DENY and ALLOW allow it once the provider has');
    assert.deepEqual(asked.ask, [{ provider: 'ext', policy: 'AuthorizationPolicy shop/x' }], 'one ask per provider');
    assert.equal(a.evaluateTcp(tcp()).allowed, false);
    const none = compileAuthorization(load([ap('x', 'shop', 'action: CUSTOM\nprovider: {name: ext}\nrules: [{to: [{operation: {paths: [/admin]}}]}]')]), REVIEWS);
    assert.equal(none.evaluate(http({ path: '/other' })).ask, undefined);
  });
  it('no policy at all: empty, and everything is allowed', () => {
    const a = compileAuthorization([], REVIEWS);
    assert.equal(a.empty, true);
    assert.deepEqual({ ...a.evaluate(http({ principal: undefined })) }, { allowed: true, reason: 'no authorization policy applies' });
  });
  it('a different root namespace', () => {
    const docs = load([ap('mesh', 'mesh-root', 'selector: {matchLabels: {app: reviews}}'), ap('not-root', 'istio-system', '{}')]);
    const a = compileAuthorization(docs, REVIEWS, 'mesh-root');
    assert.equal(a.evaluate(http()).policy, undefined);
    assert.equal(a.evaluate(http()).allowed, false);
    assert.equal(compileAuthorization(docs, { namespace: 'shop', labels: {} }, 'mesh-root').empty, true);
  });
});

authzTable('DENY first, then ALLOW; no ALLOW policy allows', [
  ap('deny-delete', 'shop', 'action: DENY\nrules: [{to: [{operation: {methods: [DELETE]}}]}]'),
  ap('deny-bad-ns', 'istio-system', 'action: DENY\nrules: [{from: [{source: {namespaces: [bad]}}]}]'),
  ap('audit-all', 'shop', 'action: AUDIT\nrules: [{}]'),
], [
  ['a request no DENY matches is allowed: there is no ALLOW policy', http(), ALLOWED],
  ['DENY matches', http({ method: 'DELETE' }), deniedBy('shop/deny-delete')],
  ['root-namespace DENY', http({ principal: 'cluster.local/ns/bad/sa/x' }), deniedBy('istio-system/deny-bad-ns')],
  ['both DENY policies match: the root namespace is reported first', http({ principal: 'cluster.local/ns/bad/sa/x', method: 'DELETE' }), deniedBy('istio-system/deny-bad-ns')],
]);

authzTable('DENY beats ALLOW', [
  ap('allow-all', 'shop', 'rules: [{}]'),
  ap('deny-admin', 'shop', 'action: DENY\nrules: [{to: [{operation: {paths: ["/admin*"]}}]}]'),
], [
  ['allowed by rules: [{}]', http({ path: '/reviews/1' }), allowedBy('shop/allow-all')],
  ['denied although an ALLOW matches', http({ path: '/admin/users' }), deniedBy('shop/deny-admin')],
]);

authzTable('spec: {} denies all, rules: [{}] allows all, ALLOW policies are ORed', [
  ap('allow-nothing', 'shop', '{}'),
  ap('allow-get', 'shop', 'rules: [{to: [{operation: {methods: [GET]}}]}]'),
], [
  ['GET is allowed by the second policy', http(), allowedBy('shop/allow-get')],
  ['POST matches no ALLOW policy', http({ method: 'POST' }), DENIED],
  ['TCP: allow-get has only HTTP fields, so nothing allows', tcp(), DENIED],
]);

describe('decisions carry the policy and a reason', () => {
  const a = compileAuthorization(load([ap('allow-get', 'shop', 'rules: [{to: [{operation: {methods: [PUT]}}]}, {to: [{operation: {methods: [GET]}}]}]')]), REVIEWS);
  it('allowed by a rule', () => assert.deepEqual({ ...a.evaluate(http()) }, { allowed: true, policy: 'AuthorizationPolicy shop/allow-get', reason: 'ALLOW rules[1] of AuthorizationPolicy shop/allow-get matched' }));
  it('denied by no rule', () => assert.deepEqual({ ...a.evaluate(http({ method: 'POST' })) }, { allowed: false, reason: 'no ALLOW policy matched' }));
});
// ---------------------------------------------------------------- plain TCP

authzTable('TCP: ALLOW rules with HTTP-only fields are skipped', [
  ap('allow', 'shop', `selector: {matchLabels: {app: reviews}}
rules:
- to: [{operation: {methods: [GET]}}]
- from: [{source: {namespaces: [shop]}}]
  to: [{operation: {ports: ["3306"], paths: [/x]}}]
- from: [{source: {namespaces: [db-clients]}}]
  to: [{operation: {ports: ["3306"]}}]
- when: [{key: "request.headers[x-a]", values: ["*"]}]
- to: [{operation: {hosts: ["*"]}}]`),
], [
  ['HTTP GET', http(), allowedBy('shop/allow')],
  ['TCP from shop: its rule also has paths, so it is skipped', tcp(), DENIED],
  ['TCP from db-clients on 3306', tcp({ principal: 'cluster.local/ns/db-clients/sa/app' }), allowedBy('shop/allow')],
  ['TCP from db-clients on another port', tcp({ principal: 'cluster.local/ns/db-clients/sa/app', destinationPort: 5432 }), DENIED],
]);

authzTable('TCP: a DENY with only HTTP fields denies every connection', [
  ap('deny-post', 'shop', 'action: DENY\nrules: [{to: [{operation: {methods: [POST]}}]}]'),
], [
  ['HTTP GET', http(), ALLOWED],
  ['HTTP POST', http({ method: 'POST' }), deniedBy('shop/deny-post')],
  ['any TCP connection', tcp(), deniedBy('shop/deny-post')],
]);

authzTable('TCP: in DENY only the HTTP-only conditions are dropped', [
  ap('deny', 'shop', `action: DENY
rules:
- from: [{source: {namespaces: [untrusted]}}]
  to: [{operation: {notPaths: [/public*]}}]
- to: [{operation: {ports: ["3307"], hosts: [admin.local]}}]
- when: [{key: "request.headers[x-debug]", values: ["*"]}, {key: destination.port, values: ["3308"]}]`),
], [
  ['HTTP from untrusted to a public path', http({ principal: 'cluster.local/ns/untrusted/sa/x', path: '/public/a' }), ALLOWED],
  ['HTTP from untrusted elsewhere', http({ principal: 'cluster.local/ns/untrusted/sa/x', path: '/a' }), deniedBy('shop/deny')],
  ['TCP from untrusted: notPaths is ignored, so denied', tcp({ principal: 'cluster.local/ns/untrusted/sa/x' }), deniedBy('shop/deny')],
  ['TCP from shop', tcp(), ALLOWED],
  ['TCP to 3307: hosts is ignored', tcp({ destinationPort: 3307 }), deniedBy('shop/deny')],
  ['TCP to 3308: the header condition is ignored', tcp({ destinationPort: 3308 }), deniedBy('shop/deny')],
  ['HTTP to 3308 without the header', http({ destinationPort: 3308 }), ALLOWED],
]);

authzTable('TCP: requestPrincipals in DENY is ignored like any HTTP-only field', [
  ap('deny', 'shop', 'action: DENY\nrules: [{from: [{source: {requestPrincipals: [issuer/bob], namespaces: [web]}}]}]'),
], [
  ['HTTP from web: no token, so no bob', http({ principal: 'cluster.local/ns/web/sa/x' }), ALLOWED],
  ['TCP from web', tcp({ principal: 'cluster.local/ns/web/sa/x' }), deniedBy('shop/deny')],
  ['TCP from shop', tcp(), ALLOWED],
]);

authzTable('Envoy filter metadata is absent', [
  ap('allow', 'shop', 'rules: [{when: [{key: "experimental.envoy.filters.network.mysql_proxy[db.table]", values: ["[users]"]}]}]'),
  ap('deny', 'shop', 'action: DENY\nrules: [{when: [{key: "experimental.envoy.filters.network.mysql_proxy[db.table]", notValues: ["[users]"]}], to: [{operation: {ports: ["3306"]}}]}]'),
], [
  ['the ALLOW rule never matches', http(), DENIED],
  ['the DENY rule matches: the value is absent', tcp(), deniedBy('shop/deny')],
]);
