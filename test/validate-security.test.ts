// Unit tables for validating PeerAuthentication and AuthorizationPolicy (docs/security.md): YAML
// in, problems out (severity, field path, message, and for some the line); then a garbage feed that
// must never make validation or compilation throw.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../src/core/config/load.js';
import type { Problem, Severity } from '../src/core/config/problem.js';
import { formatProblem } from '../src/core/config/problem.js';
import { validateResource } from '../src/core/config/validate.js';
import type { Resource } from '../src/core/model/resource.js';
import { compileAuthorization } from '../src/core/policy/authorization.js';
import { compilePeerAuthentication } from '../src/core/policy/peer-authentication.js';

interface Expected {
  readonly severity: Severity;
  readonly field: string;
  readonly message: string;
  readonly line?: number;
}
interface Case {
  readonly name: string;
  /** The spec body, indented as if under `spec:` at column 0; its first line is line 5 of the file. */
  readonly spec: string;
  readonly expect: readonly Expected[];
  readonly namespace?: string;
  readonly annotations?: string;
}

function docOf(kind: string, spec: string, namespace = 'default', annotations = ''): string {
  const body = spec.split('\n').map((l) => (l ? `  ${l}` : l)).join('\n');
  const meta = `{name: t, namespace: ${namespace}${annotations ? `, annotations: {${annotations}}` : ''}}`;
  return `apiVersion: security.istio.io/v1\nkind: ${kind}\nmetadata: ${meta}\nspec:\n${body}\n`;
}

function load(text: string): Resource[] {
  const { resources, problems } = parseConfigText(text, 'test.yaml');
  assert.deepEqual(problems, [], 'the test YAML itself parses');
  return resources;
}

const err = (field: string, message: string, line?: number): Expected => ({ severity: 'error', field, message, ...(line ? { line } : {}) });
const warn = (field: string, message: string, line?: number): Expected => ({ severity: 'warning', field, message, ...(line ? { line } : {}) });

/** Every expected problem is found, and there are no problems beyond the expected ones. */
function check(found: readonly Problem[], expect: readonly Expected[]): void {
  const shown = found.map(formatProblem).join('\n  ');
  for (const e of expect) {
    const hit = found.find((p) => p.severity === e.severity && p.field === e.field && p.message.includes(e.message));
    assert.ok(hit, `expected ${e.severity} at ${e.field} containing ${JSON.stringify(e.message)}; found:\n  ${shown}`);
    if (e.line !== undefined) assert.equal(hit.line, e.line, `line of ${e.field}`);
    assert.match(hit.resource, /^(PeerAuthentication|AuthorizationPolicy) [a-z-]+\/(t|Bad_Name)$/);
    assert.equal(hit.file, 'test.yaml');
  }
  for (const severity of ['error', 'warning'] as const) {
    assert.equal(found.filter((p) => p.severity === severity).length, expect.filter((e) => e.severity === severity).length, `unexpected ${severity}s:\n  ${shown}`);
  }
}

function table(kind: string, title: string, cases: readonly Case[]): void {
  describe(title, () => {
    for (const c of cases) {
      it(c.name, () => {
        const [r] = load(docOf(kind, c.spec, c.namespace, c.annotations));
        check(validateResource(r!), c.expect);
      });
    }
  });
}

table('PeerAuthentication', 'PeerAuthentication (docs/security.md)', [
  { name: 'namespace-wide STRICT', spec: 'mtls: {mode: STRICT}', expect: [] },
  { name: 'empty spec (UNSET everywhere)', spec: '{}', expect: [] },
  { name: 'every mode name', spec: 'selector: {matchLabels: {app: a}}\nmtls: {mode: UNSET}\nportLevelMtls:\n  "80": {mode: DISABLE}\n  8080: {mode: PERMISSIVE}\n  9000: {mode: STRICT}\n  9001: {}', expect: [] },
  { name: 'unknown mode', spec: 'mtls: {mode: strict}', expect: [err('spec.mtls.mode', '"strict" is not allowed; use one of UNSET, DISABLE, PERMISSIVE, STRICT', 5)] },
  { name: 'portLevelMtls without a selector', spec: 'mtls: {mode: STRICT}\nportLevelMtls:\n  8080: {mode: DISABLE}', expect: [err('spec.portLevelMtls', 'needs a selector', 7)] },
  { name: 'portLevelMtls with an empty selector', spec: 'selector: {matchLabels: {}}\nportLevelMtls:\n  8080: {mode: DISABLE}', expect: [err('spec.portLevelMtls', 'needs a selector'), warn('spec.selector', 'selector has no labels')] },
  { name: 'empty portLevelMtls', spec: 'selector: {matchLabels: {app: a}}\nportLevelMtls: {}', expect: [err('spec.portLevelMtls', 'at least one port')] },
  { name: 'port 0 and a named port', spec: 'selector: {matchLabels: {app: a}}\nportLevelMtls:\n  0: {mode: DISABLE}\n  http: {mode: DISABLE}', expect: [err('spec.portLevelMtls["0"]', 'not a port number', 7), err('spec.portLevelMtls.http', 'not a port number', 8)] },
  { name: 'port too big', spec: 'selector: {matchLabels: {app: a}}\nportLevelMtls:\n  65536: {mode: DISABLE}', expect: [err('spec.portLevelMtls["65536"]', 'not a port number')] },
  { name: 'misspelt field is an error', spec: 'mtl: {mode: STRICT}', expect: [err('spec.mtl', 'unknown field; did you mean `mtls`? expected one of selector, mtls, portLevelMtls')] },
  { name: 'misspelt mode field', spec: 'mtls: {mod: STRICT}', expect: [err('spec.mtls.mod', 'unknown field')] },
  { name: 'wildcard selector label', spec: 'selector: {matchLabels: {app: "*"}}\nmtls: {mode: STRICT}', expect: [err('spec.selector.matchLabels.app', 'wildcards are not supported'), err('spec.selector.matchLabels.app', 'label value "*" is invalid')] },
  { name: 'selector in the root namespace', namespace: 'istio-system', spec: 'selector: {matchLabels: {app: a}}\nmtls: {mode: STRICT}', expect: [warn('spec.selector', 'root namespace (istio-system) is ignored')] },
  { name: 'mesh-wide in the root namespace', namespace: 'istio-system', spec: 'mtls: {mode: STRICT}', expect: [] },
  { name: 'mtls must be a mapping', spec: 'mtls: STRICT', expect: [err('spec.mtls', 'must be a mapping')] },
]);

const RULE = (body: string): string => `rules:\n${body}`;

table('AuthorizationPolicy', 'AuthorizationPolicy: action, scope, rules (docs/security.md)', [
  { name: 'spec: {} (allow nothing) is valid', spec: '{}', expect: [] },
  { name: 'rules: [{}] (allow all) is valid', spec: 'rules: [{}]', expect: [] },
  { name: 'DENY without rules', spec: 'action: DENY', expect: [err('spec.rules', 'DENY without rules never triggers', 5)] },
  { name: 'DENY with an empty list of rules', spec: 'action: DENY\nrules: []', expect: [err('spec.rules', 'DENY without rules')] },
  { name: 'DENY with an empty rule', spec: 'action: DENY\nrules: [{}]', expect: [] },
  { name: 'AUDIT without rules', spec: 'action: AUDIT', expect: [] },
  { name: 'CUSTOM with a provider and rules is valid', spec: 'action: CUSTOM\nprovider: {name: ext}\nrules: [{}]', expect: [] },
  { name: 'CUSTOM without rules', spec: 'action: CUSTOM\nprovider: {name: ext}', expect: [err('spec.rules', 'CUSTOM without rules')] },
  { name: 'CUSTOM without provider', spec: 'action: CUSTOM\nrules: [{}]', expect: [err('spec.provider.name', 'provider.name is required')] },
  { name: 'provider with ALLOW', spec: 'provider: {name: ext}\nrules: [{}]', expect: [err('spec.provider', 'only for action CUSTOM, not ALLOW')] },
  { name: 'unknown action', spec: 'action: REJECT\nrules: [{}]', expect: [err('spec.action', '"REJECT" is not allowed')] },
  { name: 'lower-case action', spec: 'action: deny\nrules: [{}]', expect: [err('spec.action', 'is not allowed')] },
  { name: 'selector and targetRefs', spec: 'selector: {matchLabels: {app: a}}\ntargetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]', expect: [err('spec.targetRefs', 'cannot be set together with selector'), warn('spec.targetRefs', 'applies it nowhere')] },
  { name: 'targetRef and targetRefs', spec: 'targetRef: {kind: Service, name: s}\ntargetRefs: [{kind: Service, name: s}]', expect: [err('spec.targetRefs', 'cannot be set together with targetRef'), warn('spec.targetRefs', 'applies it nowhere')] },
  { name: 'targetRefs: a Service', spec: 'targetRefs: [{kind: Service, group: "", name: s}]', expect: [warn('spec.targetRefs', 'never to a sidecar workload')] },
  { name: 'targetRefs: a Deployment', spec: 'targetRefs: [{kind: Deployment, group: apps, name: d}]', expect: [err('spec.targetRefs[0].kind', 'cannot target apps/Deployment'), warn('spec.targetRefs', 'applies it nowhere')] },
  { name: 'targetRef in another namespace, no name', spec: 'targetRef: {kind: ServiceEntry, group: networking.istio.io, namespace: other}', expect: [err('spec.targetRef.name', 'name is required'), err('spec.targetRef.namespace', 'must not be set'), warn('spec.targetRef', 'applies it nowhere')] },
  { name: 'empty selector labels', spec: 'selector: {matchLabels: {}}\nrules: [{}]', expect: [warn('spec.selector', 'selector has no labels')] },
  { name: 'misspelt top-level field', spec: 'rule: [{}]', expect: [err('spec.rule', 'unknown field; did you mean `rules`? expected one of selector, targetRef, targetRefs, action, provider, rules')] },
  { name: 'null rule', spec: 'rules: [null]', expect: [err('spec.rules[0]', 'must not be empty')] },
  { name: 'misspelt rule field', spec: RULE('- form: [{source: {namespaces: [a]}}]'), expect: [err('spec.rules[0].form', 'unknown field')] },
  { name: 'empty from and to lists', spec: RULE('- from: []\n  to: []'), expect: [err('spec.rules[0].from', 'must not be empty'), err('spec.rules[0].to', 'must not be empty')] },
  { name: 'from without source', spec: RULE('- from: [{}]'), expect: [err('spec.rules[0].from[0].source', 'source is required')] },
  { name: 'empty source', spec: RULE('- from: [{source: {}}]'), expect: [err('spec.rules[0].from[0].source', 'must set at least one field')] },
  { name: 'empty operation', spec: RULE('- to: [{operation: {}}]'), expect: [err('spec.rules[0].to[0].operation', 'must set at least one field')] },
  { name: 'misspelt source field', spec: RULE('- from: [{source: {principal: [a]}}]'), expect: [err('spec.rules[0].from[0].source.principal', 'unknown field'), err('spec.rules[0].from[0].source', 'must set at least one field')] },
  { name: 'misspelt operation field', spec: RULE('- to: [{operation: {path: [/a]}}]'), expect: [err('spec.rules[0].to[0].operation.path', 'unknown field'), err('spec.rules[0].to[0].operation', 'must set at least one field')] },
]);

table('AuthorizationPolicy', 'AuthorizationPolicy: source values', [
  { name: 'every source field', spec: RULE('- from:\n  - source: {principals: [cluster.local/ns/a/sa/b, "*"], notPrincipals: ["*/sa/x"], namespaces: [a, "pre*"], notNamespaces: ["*-dev"], trustDomains: [cluster.local], ipBlocks: [10.0.0.0/8, 1.2.3.4, "2001:db8::/32", "::1"], notIpBlocks: [10.1.0.0/16], remoteIpBlocks: [203.0.113.0/24], notRemoteIpBlocks: [203.0.113.9]}\n  - source: {serviceAccounts: [a/b, c], notServiceAccounts: [x/y]}'), expect: [] },
  { name: 'bad IP blocks', spec: RULE('- from:\n  - source: {ipBlocks: [10.0.0.0/33, 1.2.3], remoteIpBlocks: [example.com], notIpBlocks: [""]}'), expect: [err('spec.rules[0].from[0].source.ipBlocks[0]', '"10.0.0.0/33" is not an IP address or CIDR block', 7), err('spec.rules[0].from[0].source.ipBlocks[1]', 'not an IP'), err('spec.rules[0].from[0].source.remoteIpBlocks[0]', 'not an IP'), err('spec.rules[0].from[0].source.notIpBlocks[0]', 'not an IP')] },
  { name: 'empty principal', spec: RULE('- from: [{source: {principals: [""]}}]'), expect: [err('spec.rules[0].from[0].source.principals[0]', 'must not be empty')] },
  { name: 'wildcard in the middle', spec: RULE('- from: [{source: {principals: ["cluster.local/ns/*/sa/a"]}}]'), expect: [err('spec.rules[0].from[0].source.principals[0]', 'allowed only as the whole value, at the start')] },
  { name: 'wildcards at both ends', spec: RULE('- from: [{source: {namespaces: ["*dev*"]}}]'), expect: [err('spec.rules[0].from[0].source.namespaces[0]', 'not both')] },
  { name: 'principal with spiffe://', spec: RULE('- from: [{source: {principals: ["spiffe://cluster.local/ns/a/sa/b"]}}]'), expect: [warn('spec.rules[0].from[0].source.principals[0]', 'written without "spiffe://"')] },
  { name: 'serviceAccounts: wildcard, too many parts, empty namespace', spec: RULE('- from: [{source: {serviceAccounts: ["a*", a/b/c, /b]}}]'), expect: [err('spec.rules[0].from[0].source.serviceAccounts[0]', 'no wildcards'), err('spec.rules[0].from[0].source.serviceAccounts[1]', '<namespace>/<serviceaccount>'), err('spec.rules[0].from[0].source.serviceAccounts[2]', 'both non-empty')] },
  { name: 'serviceAccounts with namespaces', spec: RULE('- from: [{source: {serviceAccounts: [a/b], namespaces: [a]}}]'), expect: [err('spec.rules[0].from[0].source.serviceAccounts', 'cannot be set together with namespaces')] },
  { name: 'more than 16 serviceAccounts', spec: RULE(`- from: [{source: {serviceAccounts: [${Array.from({ length: 17 }, (_, i) => `s${i}`).join(', ')}]}}]`), expect: [err('spec.rules[0].from[0].source.serviceAccounts', 'at most 16')] },
  { name: 'requestPrincipals in ALLOW', spec: RULE('- from: [{source: {requestPrincipals: ["*"]}}]'), expect: [] },
  { name: 'notRequestPrincipals in DENY', spec: `action: DENY\n${RULE('- from: [{source: {notRequestPrincipals: ["*"]}}]')}`, expect: [] },
  { name: 'a number where a string belongs', spec: RULE('- from: [{source: {namespaces: [42]}}]'), expect: [err('spec.rules[0].from[0].source.namespaces[0]', 'quote 42 in YAML')] },
]);

table('AuthorizationPolicy', 'AuthorizationPolicy: operation values', [
  { name: 'every operation field', spec: RULE('- to:\n  - operation: {hosts: [a.com, "a.com:*", "*.b.com"], notHosts: ["*"], ports: ["8080"], notPorts: ["0"], methods: [GET, "*"], notMethods: [DELETE], paths: [/a, "/b/*", "*.png", "/c/{*}/d", "/e/{**}", "/{*}.txt"], notPaths: ["/admin*"]}'), expect: [] },
  { name: 'ports written as numbers', spec: RULE('- to: [{operation: {ports: [8080]}}]'), expect: [err('spec.rules[0].to[0].operation.ports[0]', 'quote 8080 in YAML')] },
  { name: 'bad ports', spec: RULE('- to: [{operation: {ports: ["65536", http, "-1"]}}]'), expect: [err('spec.rules[0].to[0].operation.ports[0]', 'not a port number'), err('spec.rules[0].to[0].operation.ports[1]', 'not a port number'), err('spec.rules[0].to[0].operation.ports[2]', 'not a port number')] },
  { name: 'lower-case method', spec: RULE('- to: [{operation: {methods: [get]}}]'), expect: [warn('spec.rules[0].to[0].operation.methods[0]', '"get" never matches')] },
  { name: 'path with a query', spec: RULE('- to: [{operation: {paths: ["/a?b=c"]}}]'), expect: [warn('spec.rules[0].to[0].operation.paths[0]', 'without the query string')] },
  { name: 'path without a slash', spec: RULE('- to: [{operation: {paths: [admin]}}]'), expect: [warn('spec.rules[0].to[0].operation.paths[0]', 'start with "/"')] },
  { name: 'wildcard inside a path', spec: RULE('- to: [{operation: {paths: ["/a/*/b"]}}]'), expect: [err('spec.rules[0].to[0].operation.paths[0]', 'allowed only as the whole value')] },
  { name: 'template: {**} before another operator', spec: RULE('- to: [{operation: {paths: ["/{**}/a/{*}"]}}]'), expect: [err('spec.rules[0].to[0].operation.paths[0]', '{**} must be the last operator')] },
  { name: 'template: named variable', spec: RULE('- to: [{operation: {paths: ["/{*}/{name}"]}}]'), expect: [err('spec.rules[0].to[0].operation.paths[0]', 'only whole-segment {*} and {**}')] },
  { name: 'template: bare glob', spec: RULE('- to: [{operation: {notPaths: ["/{*}/*"]}}]'), expect: [err('spec.rules[0].to[0].operation.notPaths[0]', 'only whole-segment')] },
  { name: 'template: operator inside a segment', spec: RULE('- to: [{operation: {paths: ["/a{*}/b"]}}]'), expect: [err('spec.rules[0].to[0].operation.paths[0]', 'only whole-segment')] },
  { name: 'template: empty segment', spec: RULE('- to: [{operation: {paths: ["/a//{*}"]}}]'), expect: [err('spec.rules[0].to[0].operation.paths[0]', 'empty segment')] },
  { name: 'template: text after an operator mid-path', spec: RULE('- to: [{operation: {paths: ["/{*}.d/x"]}}]'), expect: [err('spec.rules[0].to[0].operation.paths[0]', 'only in the last segment')] },
  { name: 'template: not absolute', spec: RULE('- to: [{operation: {paths: ["{*}/a"]}}]'), expect: [err('spec.rules[0].to[0].operation.paths[0]', 'must start with "/"')] },
  { name: 'template: characters a template cannot hold', spec: RULE('- to: [{operation: {paths: ["/a[b/{*}"]}}]'), expect: [err('spec.rules[0].to[0].operation.paths[0]', 'characters a path template cannot hold')] },
  { name: 'template: "=" in a literal, as Envoy allows it', spec: RULE('- to: [{operation: {paths: ["/a=b/{*}"]}}]'), expect: [] },
  // meshgate's sidecars serve HTTP only, so Envoy's widening of HTTP-only DENY rules on TCP never applies.
  { name: 'DENY with only methods is valid', spec: `action: DENY\n${RULE('- to: [{operation: {methods: [POST]}}]')}`, expect: [] },
  { name: 'DENY with methods and ports is valid', spec: `action: DENY\n${RULE('- to: [{operation: {methods: [POST], ports: ["80"]}}]')}`, expect: [] },
  { name: 'DENY with paths and a namespace source is valid', spec: `action: DENY\n${RULE('- from: [{source: {namespaces: [a]}}]\n  to: [{operation: {paths: [/x]}}]')}`, expect: [] },
  { name: 'DENY with only ports is fine', spec: `action: DENY\n${RULE('- to: [{operation: {ports: ["22"]}}]')}`, expect: [] },
  { name: 'ALLOW with only methods does not warn', spec: RULE('- to: [{operation: {methods: [GET]}}]'), expect: [] },
]);

table('AuthorizationPolicy', 'AuthorizationPolicy: when conditions', [
  { name: 'every supported key', spec: RULE('- when:\n  - {key: "request.headers[X-Token]", values: [abc, "*"]}\n  - {key: source.ip, values: [10.0.0.0/8]}\n  - {key: remote.ip, notValues: ["2001:db8::1"]}\n  - {key: source.namespace, values: [a]}\n  - {key: source.principal, values: ["*"]}\n  - {key: source.serviceAccount, values: [a/b]}\n  - {key: source.trustDomain, values: [cluster.local]}\n  - {key: destination.ip, values: [10.0.0.1]}\n  - {key: destination.port, values: ["8080"]}\n  - {key: connection.sni, values: ["*.example.com"]}'), expect: [] },
  { name: 'unknown key', spec: RULE('- when: [{key: source.name, values: [a]}]'), expect: [err('spec.rules[0].when[0].key', 'unknown attribute "source.name"', 6)] },
  { name: 'removed keys', spec: RULE('- when:\n  - {key: destination.namespace, values: [a]}\n  - {key: "destination.labels[app]", values: [a]}\n  - {key: destination.user, values: [a]}'), expect: [err('spec.rules[0].when[0].key', 'replaced by the policy namespace'), err('spec.rules[0].when[1].key', 'replaced by the workload selector'), err('spec.rules[0].when[2].key', 'removed after v1alpha1')] },
  { name: 'header key without a name', spec: RULE('- when: [{key: "request.headers[]", values: [a]}, {key: request.headers, values: [a]}]'), expect: [err('spec.rules[0].when[0].key', 'write request.headers[<header-name>]'), err('spec.rules[0].when[1].key', 'write request.headers')] },
  { name: 'no values', spec: RULE('- when: [{key: source.ip}]'), expect: [err('spec.rules[0].when[0]', 'at least one of values or notValues must be set for source.ip')] },
  { name: 'no key', spec: RULE('- when: [{values: [a]}]'), expect: [err('spec.rules[0].when[0].key', 'key is required')] },
  { name: 'bad values for typed keys', spec: RULE('- when:\n  - {key: source.ip, values: [nope]}\n  - {key: destination.port, notValues: ["99999"]}\n  - {key: source.serviceAccount, values: ["a/*"]}\n  - {key: connection.sni, values: [""]}'), expect: [err('spec.rules[0].when[0].values[0]', 'not an IP address'), err('spec.rules[0].when[1].notValues[0]', 'not a port number'), err('spec.rules[0].when[2].values[0]', 'no wildcards'), err('spec.rules[0].when[3].values[0]', 'must not be empty')] },
  { name: 'JWT claims', spec: RULE('- when: [{key: "request.auth.claims[groups]", values: [admin]}]'), expect: [] },
  { name: 'nested JWT claims', spec: RULE('- when: [{key: "request.auth.claims[a][b]", values: [x]}, {key: request.auth.audiences, values: [y]}]'), expect: [] },
  { name: 'bad JWT claim key', spec: RULE('- when: [{key: request.auth.claims, values: [x]}]'), expect: [err('spec.rules[0].when[0].key', 'write request.auth.claims[<claim>]')] },
  { name: 'Envoy filter metadata', spec: RULE('- when: [{key: "experimental.envoy.filters.network.mysql_proxy[db.table]", values: ["[update]"]}]'), expect: [warn('spec.rules[0].when[0].key', 'Envoy filter metadata')] },
  { name: 'misspelt condition field', spec: RULE('- when: [{key: source.ip, value: [1.2.3.4]}]'), expect: [err('spec.rules[0].when[0].value', 'unknown field'), err('spec.rules[0].when[0]', 'at least one of values or notValues')] },
  { name: 'DENY on a header is valid', spec: `action: DENY\n${RULE('- when: [{key: "request.headers[x-evil]", values: ["*"]}]')}`, expect: [] },
]);

table('AuthorizationPolicy', 'AuthorizationPolicy: dry run', [
  { name: 'dry-run true', annotations: '"istio.io/dry-run": "true"', spec: 'rules: [{}]', expect: [] },
  { name: 'dry-run that is not a boolean', annotations: '"istio.io/dry-run": "yes"', spec: 'rules: [{}]', expect: [warn('metadata.annotations["istio.io/dry-run"]', 'the policy is enforced')] },
]);

describe('metadata of the security kinds', () => {
  it('names must be DNS subdomains', () => {
    const [r] = load('apiVersion: security.istio.io/v1beta1\nkind: AuthorizationPolicy\nmetadata: {name: Bad_Name, namespace: default}\nspec: {}\n');
    check(validateResource(r!), [err('metadata.name', 'may use only')]);
  });
});

describe('garbage never makes validation or compilation throw', () => {
  const GARBAGE: readonly unknown[] = [null, 'text', '80', 42, -1, 1.5, true, [], [null], ['x', 3], {}, { a: null }, [[[]]], 1e308, '', '*', '{**}'];

  function* mutations(value: unknown): Generator<unknown> {
    for (const g of GARBAGE) yield g;
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) for (const m of mutations(value[i])) yield value.map((v, j) => (j === i ? m : v));
    } else if (value !== null && typeof value === 'object') {
      for (const key of Object.keys(value)) {
        for (const m of mutations((value as Record<string, unknown>)[key])) yield { ...(value as object), [key]: m };
      }
    }
  }

  const seeds = load([
    docOf('PeerAuthentication', 'selector: {matchLabels: {app: a}}\nmtls: {mode: STRICT}\nportLevelMtls: {"8080": {mode: DISABLE}}'),
    docOf('AuthorizationPolicy', 'selector: {matchLabels: {app: a}}\naction: DENY\nrules:\n- from: [{source: {principals: [a], notNamespaces: [b], ipBlocks: [10.0.0.0/8], serviceAccounts: [c/d]}}]\n  to: [{operation: {hosts: [h], ports: ["1"], methods: [GET], paths: ["/{*}"]}}]\n  when: [{key: "request.headers[x]", values: [v], notValues: [w]}, {key: source.ip, values: [1.2.3.4]}]'),
    docOf('AuthorizationPolicy', 'targetRefs: [{kind: Service, name: s}]\naction: CUSTOM\nprovider: {name: p}\nrules: [{}]'),
  ].join('---\n'));

  it('over many mutated resources', () => {
    let runs = 0;
    const workload = { namespace: 'default', labels: { app: 'a' } };
    for (const seed of seeds) {
      for (const mutated of mutations(seed.spec)) {
        const r: Resource = { ...seed, spec: mutated, raw: { ...seed.raw, spec: mutated } };
        const found = validateResource(r);
        runs++;
        const crash = found.find((p) => p.message.startsWith('could not be validated'));
        assert.equal(crash, undefined, `${seed.kind} ${JSON.stringify(mutated).slice(0, 300)}: ${crash?.message}`);
        const pa = compilePeerAuthentication([r], workload);
        assert.ok(['STRICT', 'PERMISSIVE', 'DISABLE'].includes(pa.modeFor(8080)));
        const authz = compileAuthorization([r], workload);
        const d = authz.evaluate({ sourceIp: '10.0.0.1', destinationPort: 1, host: 'h', method: 'GET', path: '/x', headers: {} });
        assert.equal(typeof d.allowed, 'boolean');
        assert.equal(typeof authz.evaluateTcp({ sourceIp: 'junk', destinationPort: 1 }).allowed, 'boolean');
      }
    }
    assert.ok(runs > 500, `only ${runs} mutations`);
  });
});
