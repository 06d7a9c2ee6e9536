// Unit tables for the security policies of one workload: PeerAuthentication composition (docs/security.md:
// scope, levels, oldest wins, UNSET inherits, port-level modes) and AuthorizationPolicy decisions
// (docs/security.md: scope, DENY before ALLOW, empty-policy semantics, every field and value form, `when`
// keys, JWT attributes, plain TCP, dry run). YAML in, modes and decisions out.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../src/core/config/load.js';
import { validateAll } from '../src/core/config/validate.js';
import type { Resource } from '../src/core/model/resource.js';
import { compileAuthorization, type AuthzRequest, type TcpAuthzRequest } from '../src/core/policy/authorization.js';
import { compilePeerAuthentication, type WorkloadRef } from '../src/core/policy/peer-authentication.js';

function indent(body: string): string {
  return body.trim().split('\n').map((l) => `  ${l}`).join('\n');
}

function doc(kind: string, name: string, ns: string, body: string, extraMeta = ''): string {
  const spec = body.trim() === '' || body.trim() === '{}' ? 'spec: {}' : `spec:\n${indent(body)}`;
  return `apiVersion: security.istio.io/v1\nkind: ${kind}\nmetadata: {name: ${name}, namespace: ${ns}${extraMeta}}\n${spec}\n`;
}

const pa = (name: string, ns: string, body: string, extraMeta = ''): string => doc('PeerAuthentication', name, ns, body, extraMeta);
const ap = (name: string, ns: string, body: string, extraMeta = ''): string => doc('AuthorizationPolicy', name, ns, body, extraMeta);
const created = (ts: string): string => `, creationTimestamp: "${ts}"`;

/** Loads and validates: every policy in these tables must be one meshgate accepts as written. */
function load(docs: readonly string[]): Resource[] {
  const { resources, problems } = parseConfigText(docs.join('---\n'), 'policies.yaml');
  assert.deepEqual(problems, []);
  const { valid, problems: found } = validateAll(resources);
  assert.deepEqual(found.filter((p) => p.severity === 'error'), []);
  return valid;
}

const REVIEWS: WorkloadRef = { namespace: 'shop', labels: { app: 'reviews', version: 'v1' } };

// ---------------------------------------------------------------- PeerAuthentication

describe('PeerAuthentication: the mode of one workload port (docs/security.md)', () => {
  interface Case {
    readonly name: string;
    readonly docs: readonly string[];
    readonly workload?: WorkloadRef;
    readonly root?: string;
    /** [port, mode, deciding policy] */
    readonly expect: ReadonlyArray<readonly [number, string, string | undefined]>;
  }
  const cases: Case[] = [
    { name: 'no policy at all is PERMISSIVE', docs: [], expect: [[9080, 'PERMISSIVE', undefined]] },
    { name: 'mesh-wide STRICT', docs: [pa('default', 'istio-system', 'mtls: {mode: STRICT}')], expect: [[9080, 'STRICT', 'PeerAuthentication istio-system/default']] },
    {
      name: 'namespace overrides mesh',
      docs: [pa('default', 'istio-system', 'mtls: {mode: STRICT}'), pa('ns', 'shop', 'mtls: {mode: PERMISSIVE}')],
      expect: [[9080, 'PERMISSIVE', 'PeerAuthentication shop/ns']],
    },
    {
      name: 'UNSET namespace inherits the mesh',
      docs: [pa('default', 'istio-system', 'mtls: {mode: STRICT}'), pa('ns', 'shop', 'mtls: {mode: UNSET}')],
      expect: [[9080, 'STRICT', 'PeerAuthentication istio-system/default']],
    },
    {
      name: 'a namespace policy without mtls inherits too',
      docs: [pa('default', 'istio-system', 'mtls: {mode: DISABLE}'), pa('ns', 'shop', '{}')],
      expect: [[9080, 'DISABLE', 'PeerAuthentication istio-system/default']],
    },
    {
      name: 'UNSET everywhere is PERMISSIVE',
      docs: [pa('default', 'istio-system', 'mtls: {mode: UNSET}'), pa('ns', 'shop', 'mtls: {}')],
      expect: [[9080, 'PERMISSIVE', undefined]],
    },
    {
      name: 'workload overrides namespace',
      docs: [pa('ns', 'shop', 'mtls: {mode: DISABLE}'), pa('reviews', 'shop', 'selector: {matchLabels: {app: reviews}}\nmtls: {mode: STRICT}')],
      expect: [[9080, 'STRICT', 'PeerAuthentication shop/reviews']],
    },
    {
      name: 'a selector that does not match leaves the namespace policy',
      docs: [pa('ns', 'shop', 'mtls: {mode: DISABLE}'), pa('ratings', 'shop', 'selector: {matchLabels: {app: ratings}}\nmtls: {mode: STRICT}')],
      expect: [[9080, 'DISABLE', 'PeerAuthentication shop/ns']],
    },
    {
      name: 'a selector policy in another namespace does not apply',
      docs: [pa('reviews', 'web', 'selector: {matchLabels: {app: reviews}}\nmtls: {mode: STRICT}'), pa('ns', 'web', 'mtls: {mode: STRICT}')],
      expect: [[9080, 'PERMISSIVE', undefined]],
    },
    {
      name: 'selector policies in the root namespace are ignored',
      docs: [pa('default', 'istio-system', 'mtls: {mode: PERMISSIVE}'), pa('reviews', 'istio-system', 'selector: {matchLabels: {app: reviews}}\nmtls: {mode: STRICT}')],
      expect: [[9080, 'PERMISSIVE', 'PeerAuthentication istio-system/default']],
    },
    {
      name: '... also for a workload that lives in the root namespace',
      workload: { namespace: 'istio-system', labels: { app: 'reviews' } },
      docs: [pa('reviews', 'istio-system', 'selector: {matchLabels: {app: reviews}}\nmtls: {mode: STRICT}')],
      expect: [[9080, 'PERMISSIVE', undefined]],
    },
    {
      name: 'in the root namespace a namespace-wide policy is the mesh level',
      workload: { namespace: 'istio-system', labels: { app: 'x' } },
      docs: [pa('default', 'istio-system', 'mtls: {mode: STRICT}'), pa('other', 'shop', 'mtls: {mode: DISABLE}')],
      expect: [[9080, 'STRICT', 'PeerAuthentication istio-system/default']],
    },
    {
      name: 'an empty selector is namespace-wide',
      docs: [pa('ns', 'shop', 'selector: {matchLabels: {}}\nmtls: {mode: STRICT}')],
      expect: [[9080, 'STRICT', 'PeerAuthentication shop/ns']],
    },
    {
      name: 'oldest namespace policy wins (creationTimestamp beats file order)',
      docs: [
        pa('newer', 'shop', 'mtls: {mode: DISABLE}', created('2024-05-02T00:00:00Z')),
        pa('older', 'shop', 'mtls: {mode: STRICT}', created('2024-05-01T00:00:00Z')),
      ],
      expect: [[9080, 'STRICT', 'PeerAuthentication shop/older']],
    },
    {
      name: 'without timestamps, file order stands in for age',
      docs: [pa('first', 'shop', 'mtls: {mode: DISABLE}'), pa('second', 'shop', 'mtls: {mode: STRICT}')],
      expect: [[9080, 'DISABLE', 'PeerAuthentication shop/first']],
    },
    {
      name: 'the oldest workload policy alone counts, even when it is UNSET',
      docs: [
        pa('ns', 'shop', 'mtls: {mode: PERMISSIVE}'),
        pa('old', 'shop', 'selector: {matchLabels: {app: reviews}}\nmtls: {mode: UNSET}', created('2024-01-01T00:00:00Z')),
        pa('new', 'shop', 'selector: {matchLabels: {version: v1}}\nmtls: {mode: STRICT}\nportLevelMtls: {"8080": {mode: DISABLE}}', created('2024-02-01T00:00:00Z')),
      ],
      expect: [[9080, 'PERMISSIVE', 'PeerAuthentication shop/ns'], [8080, 'PERMISSIVE', 'PeerAuthentication shop/ns']],
    },
    {
      name: 'portLevelMtls beats the workload mode on its port only',
      docs: [pa('reviews', 'shop', 'selector: {matchLabels: {app: reviews}}\nmtls: {mode: STRICT}\nportLevelMtls:\n  8080: {mode: DISABLE}\n  8443: {mode: PERMISSIVE}')],
      expect: [[8080, 'DISABLE', 'PeerAuthentication shop/reviews'], [8443, 'PERMISSIVE', 'PeerAuthentication shop/reviews'], [9080, 'STRICT', 'PeerAuthentication shop/reviews']],
    },
    {
      name: 'an UNSET port inherits the workload result, wherever it came from',
      docs: [
        pa('default', 'istio-system', 'mtls: {mode: STRICT}'),
        pa('reviews', 'shop', 'selector: {matchLabels: {app: reviews}}\nportLevelMtls:\n  8080: {mode: UNSET}\n  9000: {mode: DISABLE}'),
      ],
      expect: [[8080, 'STRICT', 'PeerAuthentication istio-system/default'], [9000, 'DISABLE', 'PeerAuthentication shop/reviews'], [9080, 'STRICT', 'PeerAuthentication istio-system/default']],
    },
    {
      name: 'a different root namespace',
      root: 'mesh-root',
      docs: [pa('default', 'mesh-root', 'mtls: {mode: STRICT}'), pa('ignored', 'mesh-root', 'selector: {matchLabels: {app: reviews}}\nmtls: {mode: DISABLE}'), pa('not-root', 'istio-system', 'mtls: {mode: DISABLE}')],
      expect: [[9080, 'STRICT', 'PeerAuthentication mesh-root/default']],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const policy = compilePeerAuthentication(load(c.docs), c.workload ?? REVIEWS, c.root);
      for (const [port, mode, source] of c.expect) {
        assert.equal(policy.modeFor(port), mode, `mode of port ${port}`);
        assert.equal(policy.sourceFor(port), source, `source of port ${port}`);
      }
    });
  }
  it('other kinds are not read', () => {
    const policy = compilePeerAuthentication(load([ap('strict', 'shop', 'rules: [{}]')]), REVIEWS);
    assert.equal(policy.modeFor(1), 'PERMISSIVE');
  });
});

// ---------------------------------------------------------------- AuthorizationPolicy

const PRODUCTPAGE = 'cluster.local/ns/shop/sa/productpage';

/** A request to reviews from productpage over mTLS, unless told otherwise. */
function http(over: Partial<AuthzRequest> = {}): AuthzRequest {
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

function tcp(over: Partial<TcpAuthzRequest> = {}): TcpAuthzRequest {
  return { principal: PRODUCTPAGE, sourceIp: '10.0.0.5', destinationIp: '10.0.1.7', destinationPort: 3306, ...over };
}

interface Decision {
  readonly allowed: boolean;
  readonly policy?: string;
}
const ALLOWED: Decision = { allowed: true };
const DENIED: Decision = { allowed: false };
const allowedBy = (policy: string): Decision => ({ allowed: true, policy: `AuthorizationPolicy ${policy}` });
const deniedBy = (policy: string): Decision => ({ allowed: false, policy: `AuthorizationPolicy ${policy}` });

/** [what, request, expected decision] */
type Row = readonly [string, AuthzRequest | TcpAuthzRequest, Decision];

function authzTable(title: string, docs: readonly string[], rows: readonly Row[], workload: WorkloadRef = REVIEWS): void {
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
function allowRules(title: string, rules: string, rows: ReadonlyArray<readonly [string, AuthzRequest | TcpAuthzRequest, boolean]>, extra: readonly string[] = []): void {
  authzTable(title, [ap('allow', 'shop', `selector: {matchLabels: {app: reviews}}\nrules:\n${rules}`), ...extra], rows.map(([w, r, ok]) => [w, r, ok ? allowedBy('shop/allow') : DENIED] as const));
}

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

// ---------------------------------------------------------------- sources

const PLAINTEXT = { principal: undefined };

allowRules('principals: exact, prefix, suffix, and * needs mTLS', `- from: [{source: {principals: [cluster.local/ns/shop/sa/productpage, "cluster.local/ns/web/*", "*/sa/admin"]}}]`, [
  ['exact', http(), true],
  ['prefix', http({ principal: 'cluster.local/ns/web/sa/frontend' }), true],
  ['suffix', http({ principal: 'cluster.local/ns/ops/sa/admin' }), true],
  ['none of them', http({ principal: 'cluster.local/ns/shop/sa/ratings' }), false],
  ['plaintext has no principal', http(PLAINTEXT), false],
]);

allowRules('principals: ["*"] does not match plaintext', `- from: [{source: {principals: ["*"]}}]`, [
  ['any mTLS peer', http({ principal: 'other.domain/ns/x/sa/y' }), true],
  ['plaintext', http(PLAINTEXT), false],
  ['an empty principal counts as none', http({ principal: '' }), false],
]);

allowRules('notPrincipals: ["*"] matches plaintext only', `- from: [{source: {notPrincipals: ["*"]}}]`, [
  ['mTLS peer', http(), false],
  ['plaintext', http(PLAINTEXT), true],
]);

allowRules('namespaces over the principal', `- from: [{source: {namespaces: [shop, "team-*", "*-dev"]}}]`, [
  ['own namespace', http(), true],
  ['prefix', http({ principal: 'cluster.local/ns/team-a/sa/x' }), true],
  ['suffix', http({ principal: 'cluster.local/ns/web-dev/sa/x' }), true],
  ['a namespace that only starts like one', http({ principal: 'cluster.local/ns/shopping/sa/x' }), false],
  ['a service account named like the namespace', http({ principal: 'cluster.local/ns/web/sa/shop' }), false],
  ['plaintext', http(PLAINTEXT), false],
]);

allowRules('namespaces: ["*"] and notNamespaces', `- from: [{source: {namespaces: ["*"], notNamespaces: [kube-system]}}]`, [
  ['any mTLS namespace', http(), true],
  ['but not kube-system', http({ principal: 'cluster.local/ns/kube-system/sa/x' }), false],
  ['plaintext', http(PLAINTEXT), false],
]);

allowRules('serviceAccounts: ns/sa, or sa in the policy namespace', `- from: [{source: {serviceAccounts: [productpage, web/my.frontend]}}]`, [
  ['sa in the policy namespace', http(), true],
  ['ns/sa', http({ principal: 'cluster.local/ns/web/sa/my.frontend' }), true],
  ['dots are literal', http({ principal: 'cluster.local/ns/web/sa/myxfrontend' }), false],
  ['same sa, other namespace', http({ principal: 'cluster.local/ns/web/sa/productpage' }), false],
  ['a longer sa name', http({ principal: 'cluster.local/ns/shop/sa/productpage-v2' }), false],
  ['another trust domain', http({ principal: 'example.org/ns/shop/sa/productpage' }), true],
  ['plaintext', http(PLAINTEXT), false],
]);

authzTable('serviceAccounts without a namespace in a root-namespace policy mean the root namespace', [
  ap('allow', 'istio-system', 'selector: {matchLabels: {app: reviews}}\nrules: [{from: [{source: {serviceAccounts: [productpage]}}]}]'),
], [
  ['productpage in shop is not istio-system/productpage', http(), DENIED],
  ['istio-system/productpage', http({ principal: 'cluster.local/ns/istio-system/sa/productpage' }), allowedBy('istio-system/allow')],
]);

allowRules('trustDomains', `- from: [{source: {trustDomains: [cluster.local]}}]`, [
  ['own trust domain', http(), true],
  ['another one', http({ principal: 'example.org/ns/shop/sa/productpage' }), false],
]);

allowRules('ipBlocks: CIDR and single addresses, IPv4 and IPv6', `- from: [{source: {ipBlocks: [10.0.0.0/16, 192.168.1.10, "2001:db8::/32", "fd00::1"], notIpBlocks: [10.0.9.0/24]}}]`, [
  ['inside the IPv4 block', http(), true],
  ['an IPv4-mapped IPv6 peer counts as IPv4', http({ sourceIp: '::ffff:10.0.3.4' }), true],
  ['carved out by notIpBlocks', http({ sourceIp: '10.0.9.1' }), false],
  ['outside', http({ sourceIp: '10.1.0.1' }), false],
  ['single IPv4 address', http({ sourceIp: '192.168.1.10' }), true],
  ['its neighbour', http({ sourceIp: '192.168.1.11' }), false],
  ['inside the IPv6 block', http({ sourceIp: '2001:db8:1::5' }), true],
  ['single IPv6 address, written differently', http({ sourceIp: 'fd00:0:0::0001' }), true],
  ['outside IPv6', http({ sourceIp: '2001:db9::1' }), false],
  ['the direct peer, not the remote client', http({ sourceIp: '172.16.0.1', remoteIp: '10.0.0.5' }), false],
  ['an address that cannot be read is in no block', http({ sourceIp: 'not-an-ip' }), false],
]);

allowRules('an IPv6 block never matches an IPv4 peer', `- from: [{source: {ipBlocks: ["::/0"]}}]`, [
  ['IPv4 peer', http({ sourceIp: '1.2.3.4' }), false],
  ['IPv6 peer', http({ sourceIp: '::1' }), true],
]);

allowRules('remoteIpBlocks: the original client, defaulting to the peer', `- from: [{source: {remoteIpBlocks: [203.0.113.0/24], notRemoteIpBlocks: [203.0.113.66]}}]`, [
  ['remote client inside', http({ sourceIp: '10.0.0.5', remoteIp: '203.0.113.7' }), true],
  ['carved out', http({ remoteIp: '203.0.113.66' }), false],
  ['no remote address: the peer stands in', http({ sourceIp: '203.0.113.8' }), true],
  ['peer inside, remote outside', http({ sourceIp: '203.0.113.8', remoteIp: '198.51.100.1' }), false],
]);

allowRules('requestPrincipals and request.auth: read from the verified JWT (RequestAuthentication)', `- from: [{source: {requestPrincipals: ["https://issuer.example/*"]}}]\n  when: [{key: "request.auth.claims[groups]", values: [admin]}]\n- from: [{source: {requestPrincipals: ["https://other.example/bob"]}}]\n  when: [{key: request.auth.audiences, values: ["api.*"]}, {key: "request.auth.claims[org][team]", values: [blue]}, {key: request.auth.presenter, values: [web]}]`, [
  ['no token: no principal', http(), false],
  ['TCP: never', tcp(), false],
  ['admin in the groups list', http({ auth: { principal: 'https://issuer.example/alice', audiences: [], claims: { groups: ['dev', 'admin'] } } }), true],
  ['not in the group', http({ auth: { principal: 'https://issuer.example/alice', audiences: [], claims: { groups: ['dev'] } } }), false],
  ['nested claim, audience and presenter', http({ auth: { principal: 'https://other.example/bob', audiences: ['web', 'api.shop'], presenter: 'web', claims: { org: { team: 'blue' } } } }), true],
  ['nested claim differs', http({ auth: { principal: 'https://other.example/bob', audiences: ['api.shop'], presenter: 'web', claims: { org: { team: 'red' } } } }), false],
]);

allowRules('notRequestPrincipals ["*"]: requests without a token', `- from: [{source: {notRequestPrincipals: ["*"]}}]`, [
  ['no token', http(), true],
  ['a token', http({ auth: { principal: 'iss/sub', audiences: [], claims: {} } }), false],
]);

authzTable('requestPrincipals in DENY: every request carries no token', [
  ap('deny-anonymous', 'shop', 'action: DENY\nrules: [{from: [{source: {notRequestPrincipals: ["*"]}}], to: [{operation: {paths: ["/private/*"]}}]}]'),
  ap('deny-user', 'shop', 'action: DENY\nrules: [{from: [{source: {requestPrincipals: ["issuer/bob"]}}]}]'),
], [
  ['no token on a private path', http({ path: '/private/a' }), deniedBy('shop/deny-anonymous')],
  ['public path', http({ path: '/public' }), ALLOWED],
]);

// ---------------------------------------------------------------- operations

allowRules('hosts: case-insensitive, and the port is part of the host', `- to: [{operation: {hosts: [reviews.example.com, "api.example.com:*", "*.shop.local"], notHosts: ["admin.shop.local"]}}]`, [
  ['exact', http({ host: 'reviews.example.com' }), true],
  ['different case', http({ host: 'Reviews.EXAMPLE.com' }), true],
  ['with a port it is another host', http({ host: 'reviews.example.com:8080' }), false],
  ['prefix with any port', http({ host: 'api.example.com:8443' }), true],
  ['the prefix needs the colon', http({ host: 'api.example.com' }), false],
  ['suffix', http({ host: 'a.b.shop.local' }), true],
  ['suffix, but excluded', http({ host: 'admin.shop.local' }), false],
  ['no host', http({ host: '' }), false],
]);

allowRules('ports and notPorts: the destination port', `- to: [{operation: {ports: ["9080", "9443"]}}]\n- to: [{operation: {notPorts: ["9080", "9443", "15000"]}}]`, [
  ['listed', http(), true],
  ['any other port but the excluded', http({ destinationPort: 8000 }), true],
  ['excluded', http({ destinationPort: 15000 }), false],
  ['TCP on a listed port', tcp({ destinationPort: 9443 }), true],
]);

allowRules('methods: exact and case-sensitive', `- to: [{operation: {methods: [GET, HEAD]}}]`, [
  ['GET', http(), true],
  ['HEAD', http({ method: 'HEAD' }), true],
  ['get', http({ method: 'get' }), false],
  ['POST', http({ method: 'POST' }), false],
]);

allowRules('notMethods', `- to: [{operation: {notMethods: [DELETE]}}]`, [
  ['GET', http(), true],
  ['DELETE', http({ method: 'DELETE' }), false],
]);

allowRules('paths: /admin/* does not match /admin', `- to: [{operation: {paths: ["/admin/*"]}}]`, [
  ['/admin', http({ path: '/admin' }), false],
  ['/admin/', http({ path: '/admin/' }), true],
  ['/admin/users', http({ path: '/admin/users' }), true],
  ['/administrator', http({ path: '/administrator' }), false],
]);

allowRules('paths: prefix, suffix, exact; the query never counts', `- to: [{operation: {paths: ["/admin*", "*.png", /health], notPaths: [/admin/secret]}}]`, [
  ['/admin', http({ path: '/admin' }), true],
  ['/administrator', http({ path: '/administrator' }), true],
  ['excluded', http({ path: '/admin/secret' }), false],
  ['suffix', http({ path: '/img/logo.png' }), true],
  ['exact', http({ path: '/health' }), true],
  ['exact, with a query left on by mistake', http({ path: '/health?full=1' }), true],
  ['case matters', http({ path: '/Health' }), false],
]);

allowRules('paths: URI templates', `- to: [{operation: {paths: ["/api/{*}/items", "/static/{**}", "/files/{*}.pdf"]}}]`, [
  ['{*} is one segment', http({ path: '/api/v1/items' }), true],
  ['{*} is not two segments', http({ path: '/api/v1/x/items' }), false],
  ['{*} is not an empty segment', http({ path: '/api//items' }), false],
  ['{*} does not take "="', http({ path: '/api/a=b/items' }), false],
  ['{**} takes any number of segments', http({ path: '/static/css/site/a.css' }), true],
  ['{**} takes none', http({ path: '/static/' }), true],
  ['{**} still needs the slash', http({ path: '/static' }), false],
  ['operator with a suffix', http({ path: '/files/report.pdf' }), true],
  ['wrong suffix', http({ path: '/files/report.txt' }), false],
]);

// ---------------------------------------------------------------- combining

allowRules('from and to are ORed lists, fields are ANDed, values are ORed', `- from:
  - source: {namespaces: [shop], ipBlocks: [10.0.0.0/8]}
  - source: {principals: [cluster.local/ns/web/sa/frontend]}
  to:
  - operation: {methods: [GET], paths: [/reviews*]}
  - operation: {methods: [POST], paths: [/ratings]}`, [
  ['first source, first operation', http({ path: '/reviews/1' }), true],
  ['first source, second operation', http({ method: 'POST', path: '/ratings' }), true],
  ['first source, no operation matches', http({ method: 'POST', path: '/reviews/1' }), false],
  ['first source needs both namespace and IP', http({ sourceIp: '192.168.0.1', path: '/reviews' }), false],
  ['second source', http({ principal: 'cluster.local/ns/web/sa/frontend', sourceIp: '192.168.0.1', path: '/reviews' }), true],
  ['no source matches', http({ principal: 'cluster.local/ns/web/sa/other', path: '/reviews' }), false],
]);

allowRules('rules are ORed', `- to: [{operation: {paths: [/a]}}]\n- to: [{operation: {paths: [/b]}}]`, [
  ['/a', http({ path: '/a' }), true],
  ['/b', http({ path: '/b' }), true],
  ['/c', http({ path: '/c' }), false],
]);

// ---------------------------------------------------------------- when

allowRules('when: headers (name case-insensitive, * is presence), all conditions ANDed', `- when:
  - {key: "request.headers[X-User]", values: [alice, "adm-*"], notValues: [adm-root]}
  - {key: "request.headers[x-trace]", values: ["*"]}`, [
  ['both present', http({ headers: { 'x-user': 'alice', 'x-trace': '1' } }), true],
  ['an empty header is present', http({ headers: { 'x-user': 'alice', 'x-trace': '' } }), true],
  ['missing header', http({ headers: { 'x-user': 'alice' } }), false],
  ['prefix', http({ headers: { 'x-user': 'adm-bob', 'x-trace': '1' } }), true],
  ['excluded by notValues', http({ headers: { 'x-user': 'adm-root', 'x-trace': '1' } }), false],
  ['other value', http({ headers: { 'x-user': 'mallory', 'x-trace': '1' } }), false],
  ['repeated header values are joined', http({ headers: { 'x-user': ['alice', 'bob'] as unknown as string, 'x-trace': '1' } }), false],
]);

allowRules('when: request.headers[host] reads :authority', `- when: [{key: "request.headers[host]", values: ["reviews.*"]}]`, [
  ['host', http({ host: 'reviews.shop:9080' }), true],
  ['host is case-sensitive here', http({ host: 'Reviews.shop' }), false],
]);

allowRules('when: addresses and ports', `- when:
  - {key: source.ip, values: [10.0.0.0/8]}
  - {key: remote.ip, notValues: [198.51.100.0/24]}
  - {key: destination.ip, values: ["10.0.1.7"]}
  - {key: destination.port, values: ["9080", "3306"]}`, [
  ['all hold', http(), true],
  ['source.ip', http({ sourceIp: '192.168.0.1' }), false],
  ['remote.ip excluded', http({ remoteIp: '198.51.100.9' }), false],
  ['destination.ip', http({ destinationIp: '10.0.1.8' }), false],
  ['no destination address known', http({ destinationIp: undefined }), false],
  ['destination.port', http({ destinationPort: 9081 }), false],
  ['all hold on TCP', tcp(), true],
]);

allowRules('when: peer identity', `- when:
  - {key: source.namespace, values: [shop]}
  - {key: source.principal, values: ["*/sa/productpage"]}
  - {key: source.serviceAccount, values: [shop/productpage]}
  - {key: source.trustDomain, values: [cluster.local]}`, [
  ['productpage', http(), true],
  ['another sa', http({ principal: 'cluster.local/ns/shop/sa/ratings' }), false],
  ['plaintext', http(PLAINTEXT), false],
]);

allowRules('when: connection.sni', `- when: [{key: connection.sni, values: ["*.example.com"]}]`, [
  ['matching SNI', tcp({ sni: 'db.example.com' }), true],
  ['other SNI', tcp({ sni: 'db.example.org' }), false],
  ['no SNI', tcp(), false],
  ['HTTP over TLS with SNI', http({ sni: 'api.example.com' }), true],
]);

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
