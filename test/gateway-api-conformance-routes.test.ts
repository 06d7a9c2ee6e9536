// The Gateway API conformance suite's simple request → backend HTTPRoute tests that
// gateway-api-conformance.test.ts does not run, as a table: per upstream test, a minimal set of
// resources written to the same facts (names, matches, listener hostnames) and the backend (or 404)
// each request must reach, looked up in the route table meshgate compiles.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compileValid, outcome, type LookupRequest } from './helpers/route-table.js';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { INFRA, k8sGatewayYaml } from './helpers/gateway-api-yaml.js';

const BACKENDS = ['infra-backend-v1', 'infra-backend-v2', 'infra-backend-v3']
  .map((name) => serviceYaml(name, [{ pod: `${name}-1`, port: 9000 }], { namespace: INFRA, port: 8080 }).trim())
  .join('\n---\n');

const gateway = (name: string, listeners: string): string => k8sGatewayYaml(name, listeners, INFRA).trimEnd();

const SAME_NAMESPACE = gateway('same-namespace', '  - {name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: Same}}}');

function route(name: string, body: string, parents = '[{name: same-namespace}]'): string {
  return `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ${name}, namespace: ${INFRA}}
spec:
  parentRefs: ${parents}
${body}`;
}

const rule = (match: string, backend: string): string => `  - matches: [${match}]\n    backendRefs: [{name: ${backend}, port: 8080}]`;

type Expect = readonly [request: LookupRequest, backend: string | 404];
interface Case {
  readonly test: string;
  readonly resources: readonly string[];
  readonly expect: readonly Expect[];
}

const CASES: readonly Case[] = [
  {
    test: 'HTTPRouteSimpleSameNamespace',
    resources: [SAME_NAMESPACE, route('gateway-conformance-infra-test', '  rules: [{backendRefs: [{name: infra-backend-v1, port: 8080}]}]')],
    expect: [[{ host: 'any.example', path: '/' }, 'infra-backend-v1']],
  },
  {
    test: 'HTTPRouteMatching',
    resources: [
      SAME_NAMESPACE,
      route('matching', `  rules:\n${rule('{path: {type: PathPrefix, value: /}}, {headers: [{name: version, value: one}]}', 'infra-backend-v1')}\n${rule('{path: {type: PathPrefix, value: /v2}}, {headers: [{name: version, value: two}]}', 'infra-backend-v2')}`),
    ],
    expect: [
      [{ host: 'x', path: '/' }, 'infra-backend-v1'],
      [{ host: 'x', path: '/example' }, 'infra-backend-v1'],
      [{ host: 'x', path: '/', headers: { Version: 'one' } }, 'infra-backend-v1'],
      [{ host: 'x', path: '/v2' }, 'infra-backend-v2'],
      [{ host: 'x', path: '/v2/example' }, 'infra-backend-v2'],
      [{ host: 'x', path: '/', headers: { Version: 'two' } }, 'infra-backend-v2'],
      [{ host: 'x', path: '/v2/' }, 'infra-backend-v2'],
      [{ host: 'x', path: '/v2example' }, 'infra-backend-v1'],
      [{ host: 'x', path: '/foo/v2/example' }, 'infra-backend-v1'],
    ],
  },
  {
    test: 'HTTPRoutePathMatchOrder',
    resources: [
      SAME_NAMESPACE,
      route('path-matching-order', `  rules:\n${[
        rule('{path: {type: Exact, value: /match}}', 'infra-backend-v1'),
        rule('{path: {type: Exact, value: /match/exact}}', 'infra-backend-v2'),
        rule('{path: {type: Exact, value: /match/exact/one}}', 'infra-backend-v3'),
        rule('{path: {type: PathPrefix, value: /match/}}', 'infra-backend-v3'),
        rule('{path: {type: PathPrefix, value: /match/prefix/}}', 'infra-backend-v1'),
        rule('{path: {type: PathPrefix, value: /match/prefix/one}}', 'infra-backend-v2'),
      ].join('\n')}`),
    ],
    expect: [
      [{ host: 'x', path: '/match/exact/one' }, 'infra-backend-v3'],
      [{ host: 'x', path: '/match/exact' }, 'infra-backend-v2'],
      [{ host: 'x', path: '/match' }, 'infra-backend-v1'],
      [{ host: 'x', path: '/match/prefix/one/any' }, 'infra-backend-v2'],
      [{ host: 'x', path: '/match/prefix/any' }, 'infra-backend-v1'],
      [{ host: 'x', path: '/match/any' }, 'infra-backend-v3'],
    ],
  },
  {
    test: 'HTTPRouteListenerHostnameMatching',
    resources: [
      gateway('listener-hostnames', ['bar.com', 'foo.bar.com', '"*.bar.com"', '"*.foo.com"'].map((h, i) => `  - {name: listener-${i + 1}, port: 80, protocol: HTTP, hostname: ${h}, allowedRoutes: {namespaces: {from: Same}}}`).join('\n')),
      route('backend-v1', '  rules: [{backendRefs: [{name: infra-backend-v1, port: 8080}]}]', '[{name: listener-hostnames, sectionName: listener-1}]'),
      route('backend-v2', '  rules: [{backendRefs: [{name: infra-backend-v2, port: 8080}]}]', '[{name: listener-hostnames, sectionName: listener-2}]'),
      route('backend-v3', '  rules: [{backendRefs: [{name: infra-backend-v3, port: 8080}]}]', '[{name: listener-hostnames, sectionName: listener-3}, {name: listener-hostnames, sectionName: listener-4}]'),
    ],
    expect: [
      [{ host: 'bar.com' }, 'infra-backend-v1'],
      [{ host: 'foo.bar.com' }, 'infra-backend-v2'],
      [{ host: 'baz.bar.com' }, 'infra-backend-v3'],
      [{ host: 'boo.bar.com' }, 'infra-backend-v3'],
      [{ host: 'multiple.prefixes.bar.com' }, 'infra-backend-v3'],
      [{ host: 'multiple.prefixes.foo.com' }, 'infra-backend-v3'],
      [{ host: 'foo.com' }, 404],
      [{ host: 'no.matching.host' }, 404],
    ],
  },
];

const cluster = (backend: string): string => `outbound|8080||${backend}.${INFRA}.svc.cluster.local`;

describe('Gateway API conformance: request → backend', () => {
  for (const c of CASES) {
    it(c.test, () => {
      const snapshot = compileValid([BACKENDS, ...c.resources].join('\n---\n') + '\n');
      const got = c.expect.map(([req]) => outcome(snapshot, req));
      assert.deepEqual(got, c.expect.map(([, backend]) => (backend === 404 ? 404 : cluster(backend))), c.expect.map(([r]) => `${r.host}${r.path ?? '/'}`).join(' '));
    });
  }
});
