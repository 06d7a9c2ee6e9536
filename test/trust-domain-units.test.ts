// Unit tables for trust domains (docs/tasks/trust-domain-migration.md): how AuthorizationPolicy
// principals are rewritten across the trust domain and its aliases (cluster.local, `*`, prefix and
// suffix trust domains), the policies compiled with them, which peers a proxy accepts, the mesh
// config's validation and the analyzer that flags principals of a domain the mesh refuses.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../src/core/config/load.js';
import { validateAll } from '../src/core/config/validate.js';
import type { Resource } from '../src/core/model/resource.js';
import { analyze } from '../src/core/analyze/run.js';
import { compileAuthorization, type AuthzRequest } from '../src/core/policy/authorization.js';
import { meshConfigMap } from './helpers/ext-authz.js';
import { withTrustDomainAliases } from '../src/core/policy/principal-aliases.js';
import { acceptsPeer, trustDomainsOf, type TrustDomains } from '../src/core/pki/trust-domain.js';

const tds = (trustDomain: string, ...aliases: string[]): TrustDomains => ({ trustDomain, aliases });

describe('principals rewritten across the trust domain and its aliases', () => {
  const rows: ReadonlyArray<readonly [string, TrustDomains, string[], string[]]> = [
    ['no alias, cluster.local: unchanged', tds('cluster.local'), ['cluster.local/ns/foo/sa/bar'], ['cluster.local/ns/foo/sa/bar']],
    ['the alias domain becomes the current one and stays itself', tds('new-td', 'old-td'), ['old-td/ns/foo/sa/bar'], ['new-td/ns/foo/sa/bar', 'old-td/ns/foo/sa/bar']],
    ['the current domain gains every alias', tds('new-td', 'old-td', 'older-td'), ['new-td/ns/a/sa/b'], ['new-td/ns/a/sa/b', 'old-td/ns/a/sa/b', 'older-td/ns/a/sa/b']],
    ['cluster.local points at the current domain and its aliases', tds('td2', 'td1'), ['cluster.local/ns/foo/sa/bar'], ['td2/ns/foo/sa/bar', 'td1/ns/foo/sa/bar']],
    ['cluster.local with no alias is the current domain only', tds('new-td'), ['cluster.local/ns/foo/sa/bar'], ['new-td/ns/foo/sa/bar']],
    ['a domain neither current nor alias is kept as written', tds('new-td', 'old-td'), ['other-td/ns/foo/sa/bar'], ['other-td/ns/foo/sa/bar']],
    ['without the alias the old domain is kept as written (and so matches no peer)', tds('new-td'), ['old-td/ns/foo/sa/bar'], ['old-td/ns/foo/sa/bar']],
    ['a `*` trust domain does not check the domain: kept', tds('new-td', 'old-td'), ['*/ns/foo/sa/bar'], ['*/ns/foo/sa/bar']],
    ['`*` alone and non-SPIFFE forms are kept', tds('new-td', 'old-td'), ['*', 'ns/foo/sa/bar', 'old-td/ns/foo/*', 'old-td/a/b/c/d/e'], ['*', 'ns/foo/sa/bar', 'old-td/ns/foo/*', 'old-td/a/b/c/d/e']],
    ['a `*suffix` domain matching every domain is kept once', tds('new-td', 'old-td'), ['*-td/ns/foo/sa/bar'], ['*-td/ns/foo/sa/bar']],
    ['a `*suffix` domain matching one of them is kept for it and replaced for the other', tds('new-td', 'old-example'), ['*-td/ns/foo/sa/bar'], ['*-td/ns/foo/sa/bar', 'old-example/ns/foo/sa/bar']],
    ['a `prefix*` domain is replaced by each domain', tds('new-td', 'old-td'), ['old*/ns/foo/sa/bar'], ['new-td/ns/foo/sa/bar', 'old-td/ns/foo/sa/bar']],
    ['a `prefix*` principal part other than the domain is carried over', tds('new-td', 'old-td'), ['old-td/ns/foo/sa/*'], ['new-td/ns/foo/sa/*', 'old-td/ns/foo/sa/*']],
    ['with cluster.local alone, `cluster*` narrows to cluster.local, as Istio rewrites it', tds('cluster.local'), ['cluster*/ns/a/sa/b'], ['cluster.local/ns/a/sa/b']],
    ['each principal in turn, order kept', tds('new-td', 'old-td'), ['x/ns/a/sa/b', 'old-td/ns/c/sa/d', '*'], ['x/ns/a/sa/b', 'new-td/ns/c/sa/d', 'old-td/ns/c/sa/d', '*']],
  ];
  for (const [what, bundle, given, expected] of rows) {
    it(what, () => assert.deepEqual([...withTrustDomainAliases(bundle, given)], expected));
  }
});

function load(text: string): Resource[] {
  const { resources, problems } = parseConfigText(text, 'config.yaml');
  assert.deepEqual(problems, []);
  return resources;
}

/** The mesh config holding these lines. */
const meshConfig = (mesh: string): string => meshConfigMap(mesh.split('\n').map((l) => `    ${l}`).join('\n'));

const POLICIES = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow, namespace: default}
spec:
  selector: {matchLabels: {app: httpbin}}
  rules:
  - from: [{source: {principals: [old-td/ns/sleep-allow/sa/sleep]}}]
  - from: [{source: {notPrincipals: [cluster.local/ns/default/sa/sleep]}}]
    when: [{key: source.principal, values: [old-td/ns/tools/sa/*]}]
`;

describe('policies compiled with the mesh config\'s aliases', () => {
  const resources = load(`${POLICIES}---\n${meshConfig('trustDomain: new-td\ntrustDomainAliases: [old-td]')}`);
  const authz = compileAuthorization(resources, { namespace: 'default', labels: { app: 'httpbin' } }, 'istio-system', trustDomainsOf(resources, 'spiffe://new-td/ns/default/sa/httpbin'));
  const ask = (principal: string): boolean => {
    const req: AuthzRequest = { principal, sourceIp: '10.0.0.5', destinationIp: '10.0.0.6', destinationPort: 8000, host: 'httpbin', method: 'GET', path: '/ip', headers: {} };
    return authz.evaluate(req).allowed;
  };
  it('principals: the old domain\'s identity in the new domain and in the old one', () => {
    assert.equal(ask('new-td/ns/sleep-allow/sa/sleep'), true);
    assert.equal(ask('old-td/ns/sleep-allow/sa/sleep'), true);
    assert.equal(ask('other-td/ns/sleep-allow/sa/sleep'), false);
  });
  it('source.principal conditions and notPrincipals are rewritten too', () => {
    assert.equal(ask('new-td/ns/tools/sa/curl'), true);
    assert.equal(ask('old-td/ns/tools/sa/curl'), true);
    assert.equal(ask('new-td/ns/default/sa/sleep'), false, 'cluster.local/ns/default/sa/sleep in notPrincipals names it in new-td');
  });
});

describe('peers a proxy accepts', () => {
  const mesh = (text: string): Resource[] => load(meshConfig(text));
  it('its certificate\'s trust domain, without mesh config', () => {
    const t = trustDomainsOf([], 'spiffe://new-td/ns/a/sa/b');
    assert.deepEqual(t, { trustDomain: 'new-td', aliases: [] });
    assert.equal(acceptsPeer(t, 'spiffe://new-td/ns/x/sa/y'), true);
    assert.equal(acceptsPeer(t, 'spiffe://cluster.local/ns/x/sa/y'), false);
  });
  it('the aliases, and the mesh config\'s domain while its own certificate is still of the old one', () => {
    const t = trustDomainsOf(mesh('trustDomain: new-td\ntrustDomainAliases: [old-td, new-td]'), 'spiffe://old-td/ns/a/sa/b');
    assert.deepEqual(t, { trustDomain: 'old-td', aliases: ['new-td'] });
    assert.equal(acceptsPeer(t, 'spiffe://new-td/ns/x/sa/y'), true);
    assert.equal(acceptsPeer(t, 'spiffe://old-td/ns/x/sa/y'), true);
  });
  it('fails closed: another domain, a malformed id, none at all', () => {
    const t = trustDomainsOf(mesh('trustDomain: new-td\ntrustDomainAliases: [old-td]'), 'spiffe://new-td/ns/a/sa/b');
    for (const id of ['spiffe://unrelated-td/ns/x/sa/y', 'spiffe://old-td/x', 'spiffe://old-td.evil/ns/x/sa/y', undefined]) assert.equal(acceptsPeer(t, id), false, String(id));
  });
  it('without a certificate: the mesh config\'s domain, else cluster.local', () => {
    assert.equal(trustDomainsOf(mesh('trustDomain: new-td'), undefined).trustDomain, 'new-td');
    assert.equal(trustDomainsOf([], undefined).trustDomain, 'cluster.local');
  });
});

describe('mesh config validation and analysis', () => {
  const problems = (mesh: string) => validateAll(load(meshConfig(mesh))).problems.map((p) => `${p.severity} ${p.field}: ${p.message}`);
  it('accepts DNS-style trust domains and aliases', () => {
    assert.deepEqual(problems('trustDomain: new-td\ntrustDomainAliases: [old-td, cluster.local, td.example.com.]'), []);
  });
  it('refuses malformed aliases and trust domains, naming the entry', () => {
    const found = problems('trustDomain: New_TD\ntrustDomainAliases: ["spiffe://old-td", "*-td", "", "a..b", 7]');
    assert.equal(found.filter((p) => p.startsWith('error')).length, 6, found.join('\n'));
    assert.ok(found.some((p) => p.includes('trustDomainAliases[1]') && p.includes('without spiffe://, path or wildcard')), found.join('\n'));
  });
  it('warns of aliases that change nothing', () => {
    const found = problems('trustDomain: new-td\ntrustDomainAliases: [new-td, old-td, old-td]');
    assert.deepEqual(found.map((p) => p.split(':')[0]), ['warning data.mesh.trustDomainAliases[0]', 'warning data.mesh.trustDomainAliases[2]']);
  });
  it('MG0009: a principal of a domain that is neither the mesh\'s nor an alias', () => {
    const codes = (mesh: string) => analyze(load(`${POLICIES}---\n${meshConfig(mesh)}`)).filter((p) => p.code === 'MG0009').map((p) => p.field);
    assert.deepEqual(codes('trustDomain: new-td'), ['spec.rules[0].from[0].source.principals[0]', 'spec.rules[1].when[0].values[0]']);
    assert.deepEqual(codes('trustDomain: new-td\ntrustDomainAliases: [old-td]'), []);
    assert.deepEqual(analyze(load(POLICIES)).filter((p) => p.code === 'MG0009'), [], 'a mesh config silent on trust domains says nothing');
  });
});
