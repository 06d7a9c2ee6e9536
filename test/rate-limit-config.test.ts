// RateLimitPolicy as configuration: validation problems with file, line and field, the kind being
// known to the loader and the cluster source, its CRD, and which routes each targetRef binds to
// once a snapshot is compiled.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';
import { parseConfigText } from '../src/core/config/load.js';
import { knownKind } from '../src/core/config/kinds.js';
import { formatProblem, type Problem } from '../src/core/config/problem.js';
import { validateResource } from '../src/core/config/validate.js';
import { KUBE_KINDS } from '../src/core/sources/kube-objects.js';
import { burstWindowSeconds } from '../src/core/policy/rate-limit-table.js';
import { compileYaml, lookup, repoPath, type LookupRequest } from './helpers/route-table.js';
import type { Snapshot } from '../src/core/snapshot/snapshot.js';

function policy(spec: string, name = 'p'): string {
  const body = spec.split('\n').map((l) => (l ? `  ${l}` : l)).join('\n');
  return `apiVersion: meshgate.io/v1\nkind: RateLimitPolicy\nmetadata: {name: ${name}, namespace: default}\nspec:\n${body}\n`;
}

function problemsOf(spec: string): Problem[] {
  const { resources, problems } = parseConfigText(policy(spec), 'rl.yaml');
  assert.deepEqual(problems, [], 'the test YAML itself parses');
  return validateResource(resources[0]!);
}

const VALID = `targetRef: {kind: VirtualService, name: product, route: main}
limits:
- key: {clientIp: {}}
  requests: 100
  interval: 1m
  burst: 20
- key: {header: {name: X-Api-Key}}
  requests: 10
  interval: 1s
- key: {principal: {}}
  requests: 5
  interval: 1h
store: redis`;

describe('RateLimitPolicy validation', () => {
  it('accepts the documented forms without a problem', () => {
    assert.deepEqual(problemsOf(VALID).map(formatProblem), []);
    assert.deepEqual(problemsOf('targetRef: {kind: Gateway, name: demo-gateway, host: api.example.com}\nlimits: [{key: {clientIp: {}}, requests: 1, interval: 30s}]').map(formatProblem), []);
    assert.deepEqual(problemsOf('targetRef: {kind: VirtualService, name: product}\nlimits: [{key: {clientIp: {}}, requests: 1, interval: 1m}]\nstore: memory').map(formatProblem), []);
  });

  const cases: Array<{ name: string; spec: string; field: string; message: string; line?: number; severity?: 'warning' }> = [
    { name: 'no targetRef', spec: 'limits: [{key: {clientIp: {}}, requests: 1, interval: 1s}]', field: 'spec.targetRef', message: 'targetRef is required' },
    { name: 'unknown target kind', spec: 'targetRef: {kind: Service, name: a}\nlimits: [{key: {clientIp: {}}, requests: 1, interval: 1s}]', field: 'spec.targetRef.kind', message: 'use one of VirtualService, Gateway' },
    { name: 'no target name', spec: 'targetRef: {kind: Gateway}\nlimits: [{key: {clientIp: {}}, requests: 1, interval: 1s}]', field: 'spec.targetRef.name', message: 'name is required' },
    { name: 'route on a Gateway', spec: 'targetRef: {kind: Gateway, name: gw, route: main}\nlimits: [{key: {clientIp: {}}, requests: 1, interval: 1s}]', field: 'spec.targetRef.route', message: 'route goes with kind VirtualService' },
    { name: 'host on a VirtualService', spec: 'targetRef: {kind: VirtualService, name: vs, host: a.example.com}\nlimits: [{key: {clientIp: {}}, requests: 1, interval: 1s}]', field: 'spec.targetRef.host', message: 'host goes with kind Gateway' },
    { name: 'wildcard host', spec: 'targetRef: {kind: Gateway, name: gw, host: "*.example.com"}\nlimits: [{key: {clientIp: {}}, requests: 1, interval: 1s}]', field: 'spec.targetRef.host', message: 'cannot contain a wildcard' },
    { name: 'another namespace', spec: 'targetRef: {kind: Gateway, name: gw, namespace: shop}\nlimits: [{key: {clientIp: {}}, requests: 1, interval: 1s}]', field: 'spec.targetRef.namespace', message: 'only to resources in its own namespace (default)' },
    { name: 'no limits', spec: 'targetRef: {kind: Gateway, name: gw}\nlimits: []', field: 'spec.limits', message: 'at least one limit' },
    { name: 'no key', spec: 'targetRef: {kind: Gateway, name: gw}\nlimits:\n- requests: 1\n  interval: 1s', field: 'spec.limits[0].key', message: 'key is required', line: 7 },
    { name: 'two keys', spec: 'targetRef: {kind: Gateway, name: gw}\nlimits:\n- key: {clientIp: {}, principal: {}}\n  requests: 1\n  interval: 1s', field: 'spec.limits[0].key.principal', message: 'cannot be set together with clientIp' },
    { name: 'empty key', spec: 'targetRef: {kind: Gateway, name: gw}\nlimits:\n- key: {}\n  requests: 1\n  interval: 1s', field: 'spec.limits[0].key', message: 'key needs one of' },
    { name: 'bad header name', spec: 'targetRef: {kind: Gateway, name: gw}\nlimits:\n- key: {header: {name: "x api key"}}\n  requests: 1\n  interval: 1s', field: 'spec.limits[0].key.header.name', message: 'not a valid header name', line: 7 },
    { name: 'header without name', spec: 'targetRef: {kind: Gateway, name: gw}\nlimits:\n- key: {header: {}}\n  requests: 1\n  interval: 1s', field: 'spec.limits[0].key.header.name', message: 'name is required' },
    { name: 'zero requests', spec: 'targetRef: {kind: Gateway, name: gw}\nlimits:\n- key: {clientIp: {}}\n  requests: 0\n  interval: 1s', field: 'spec.limits[0].requests', message: 'must be at least 1', line: 8 },
    { name: 'fractional requests', spec: 'targetRef: {kind: Gateway, name: gw}\nlimits:\n- key: {clientIp: {}}\n  requests: 1.5\n  interval: 1s', field: 'spec.limits[0].requests', message: 'whole number' },
    { name: 'no requests', spec: 'targetRef: {kind: Gateway, name: gw}\nlimits:\n- key: {clientIp: {}}\n  interval: 1s', field: 'spec.limits[0].requests', message: 'requests is required' },
    { name: 'sub-second interval', spec: 'targetRef: {kind: Gateway, name: gw}\nlimits:\n- key: {clientIp: {}}\n  requests: 1\n  interval: 500ms', field: 'spec.limits[0].interval', message: 'whole seconds', line: 9 },
    { name: 'not a duration', spec: 'targetRef: {kind: Gateway, name: gw}\nlimits:\n- key: {clientIp: {}}\n  requests: 1\n  interval: 1 minute', field: 'spec.limits[0].interval', message: 'is not a duration' },
    { name: 'zero interval', spec: 'targetRef: {kind: Gateway, name: gw}\nlimits:\n- key: {clientIp: {}}\n  requests: 1\n  interval: 0s', field: 'spec.limits[0].interval', message: 'at least 1ms' },
    { name: 'negative burst', spec: 'targetRef: {kind: Gateway, name: gw}\nlimits:\n- key: {clientIp: {}}\n  requests: 1\n  interval: 1s\n  burst: -1', field: 'spec.limits[0].burst', message: 'must not be negative' },
    { name: 'unknown store', spec: 'targetRef: {kind: Gateway, name: gw}\nlimits: [{key: {clientIp: {}}, requests: 1, interval: 1s}]\nstore: disk', field: 'spec.store', message: 'use one of memory, redis' },
    { name: 'a typo is an error', spec: 'targetRef: {kind: Gateway, name: gw}\nlimits: [{key: {clientIp: {}}, requests: 1, interval: 1s, brust: 5}]', field: 'spec.limits[0].brust', message: 'unknown field; did you mean `burst`?' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const found = problemsOf(c.spec);
      const shown = found.map(formatProblem).join('\n  ');
      const hit = found.find((p) => p.field === c.field && p.message.includes(c.message));
      assert.ok(hit, `expected ${c.field}: ${c.message}; found:\n  ${shown}`);
      assert.equal(hit.severity, c.severity ?? 'error');
      assert.equal(hit.file, 'rl.yaml');
      assert.equal(hit.resource, 'RateLimitPolicy default/p');
      if (c.line !== undefined) assert.equal(hit.line, c.line, shown);
      if (c.severity === 'warning') assert.equal(found.filter((p) => p.severity === 'error').length, 0, shown);
    });
  }

  it('is a kind the loader, the cluster source and the CRD manifest all know', async () => {
    assert.equal(knownKind('meshgate.io/v1', 'RateLimitPolicy'), 'known');
    assert.equal(knownKind('meshgate.io/v2', 'RateLimitPolicy'), 'unsupported-version');
    const kube = KUBE_KINDS.find((k) => k.kind === 'RateLimitPolicy');
    assert.deepEqual(kube, { kind: 'RateLimitPolicy', apiVersion: 'meshgate.io/v1', plural: 'ratelimitpolicies', crd: true });
    const crds = parseAllDocuments(await readFile(repoPath('deploy/crds/meshgate-io.yaml'), 'utf8')).map((d) => d.toJS() as Record<string, any>);
    const crd = crds.find((c) => c.metadata.name === 'ratelimitpolicies.meshgate.io')!;
    assert.equal(crd.spec.group, 'meshgate.io');
    assert.equal(crd.spec.names.kind, 'RateLimitPolicy');
    assert.deepEqual(crd.spec.versions.map((v: any) => [v.name, v.served, v.storage]), [['v1', true, true]]);
    const kustomization = parseAllDocuments(await readFile(repoPath('deploy/crds/kustomization.yaml'), 'utf8'))[0]!.toJS() as { resources: string[] };
    assert.ok(kustomization.resources.includes('meshgate-io.yaml'));
  });
});

const ROUTING = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [product.example.com, api.example.com, "*.wild.example.com"]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: other, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [other.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: product, namespace: default}
spec:
  hosts: [product.example.com]
  gateways: [gw]
  http:
  - name: other
    match: [{uri: {prefix: /other}}]
    directResponse: {status: 200}
  - name: main
    directResponse: {status: 200}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: default}
spec:
  hosts: [api.example.com, "*.wild.example.com", other.example.com]
  gateways: [gw, other]
  http:
  - directResponse: {status: 200}
`;

function limitsAt(snapshot: Snapshot, r: LookupRequest): string[] {
  const hit = lookup(snapshot, r);
  if (hit.status !== 'route') return [];
  return (snapshot.rateLimits.lookup(hit.virtualHost, hit.route) ?? []).map((b) => `${b.rule.id}${b.onlyHost ? ` only ${b.onlyHost}` : ''}`);
}

describe('RateLimitPolicy targets, compiled', () => {
  const compile = (target: string) => compileYaml(ROUTING + '---\n' + policy(`targetRef: ${target}\nlimits: [{key: {clientIp: {}}, requests: 1, interval: 1s}]`));

  it('a VirtualService http route by name: only that route', () => {
    const { snapshot, problems } = compile('{kind: VirtualService, name: product, route: main}');
    assert.deepEqual(problems.map(formatProblem), []);
    assert.deepEqual(limitsAt(snapshot, { host: 'product.example.com', path: '/' }), ['default/p[0]']);
    assert.deepEqual(limitsAt(snapshot, { host: 'product.example.com', path: '/other' }), []);
    assert.deepEqual(limitsAt(snapshot, { host: 'api.example.com' }), []);
  });

  it('a whole VirtualService: each of its routes, on every host and gateway it serves', () => {
    const { snapshot } = compile('{kind: VirtualService, name: api}');
    assert.deepEqual(limitsAt(snapshot, { host: 'api.example.com' }), ['default/p[0]']);
    assert.deepEqual(limitsAt(snapshot, { host: 'a.wild.example.com' }), ['default/p[0]']);
    assert.deepEqual(limitsAt(snapshot, { host: 'other.example.com' }), ['default/p[0]']);
    assert.deepEqual(limitsAt(snapshot, { host: 'product.example.com' }), []);
  });

  it('a Gateway: the hosts of its servers, not those of another Gateway on the same port', () => {
    const { snapshot } = compile('{kind: Gateway, name: gw}');
    assert.deepEqual(limitsAt(snapshot, { host: 'product.example.com', path: '/other' }), ['default/p[0]']);
    assert.deepEqual(limitsAt(snapshot, { host: 'api.example.com' }), ['default/p[0]']);
    assert.deepEqual(limitsAt(snapshot, { host: 'x.wild.example.com' }), ['default/p[0]']);
    assert.deepEqual(limitsAt(snapshot, { host: 'other.example.com' }), []);
  });

  it('a Gateway host: that virtual host, or that one name inside a wildcard virtual host', () => {
    assert.deepEqual(limitsAt(compile('{kind: Gateway, name: gw, host: api.example.com}').snapshot, { host: 'api.example.com' }), ['default/p[0]']);
    assert.deepEqual(limitsAt(compile('{kind: Gateway, name: gw, host: api.example.com}').snapshot, { host: 'product.example.com' }), []);
    const wild = compile('{kind: Gateway, name: gw, host: a.wild.example.com}').snapshot;
    assert.deepEqual(limitsAt(wild, { host: 'b.wild.example.com' }), ['default/p[0] only a.wild.example.com']);
  });

  it('a target that is not there is a warning that names it; the policy stays', () => {
    const cases: Array<[string, string, string]> = [
      ['{kind: VirtualService, name: nope}', 'spec.targetRef.name', 'VirtualService default/nope does not exist'],
      ['{kind: VirtualService, name: product, route: nope}', 'spec.targetRef.route', 'no http route named "nope" (its http routes are named other, main)'],
      ['{kind: Gateway, name: nope}', 'spec.targetRef.name', 'Gateway default/nope does not exist'],
      ['{kind: Gateway, name: gw, host: nope.example.com}', 'spec.targetRef.host', 'serves no host nope.example.com'],
    ];
    for (const [target, field, message] of cases) {
      const { snapshot, problems } = compile(target);
      const hit = problems.find((p) => p.field === field && p.message.includes(message));
      assert.ok(hit, `${target}: ${problems.map(formatProblem).join('; ')}`);
      assert.equal(hit.severity, 'warning');
      assert.equal(snapshot.rateLimits.rules.length, 0);
      assert.ok(snapshot.resources.some((r) => r.kind === 'RateLimitPolicy'));
    }
  });

  it('rules carry their settings; equal settings in a new snapshot are the same counters', () => {
    const yaml = ROUTING + '---\n' + policy('targetRef: {kind: Gateway, name: gw}\nlimits:\n- {key: {header: {name: X-Api-Key}}, requests: 100, interval: 1m, burst: 20}\nstore: redis');
    const a = compileYaml(yaml).snapshot.rateLimits.rules;
    const b = compileYaml(yaml.replace('product.example.com, api', 'api')).snapshot.rateLimits.rules;
    assert.equal(a.length, 1);
    const rule = a[0]!;
    assert.deepEqual({ ...rule, settings: undefined }, {
      id: 'default/p[0]', policy: 'default/p', key: { kind: 'header', name: 'x-api-key' },
      requests: 100, intervalSeconds: 60, burst: 20, burstSeconds: 60, store: 'redis', position: 'after-authz', settings: undefined,
    });
    assert.equal(b[0]!.settings, rule.settings);
    const c = compileYaml(yaml.replace('requests: 100', 'requests: 101')).snapshot.rateLimits.rules;
    assert.notEqual(c[0]!.settings, rule.settings);
  });

  it('the burst reserve comes back after the time a token bucket needs to earn it, at least one interval', () => {
    assert.equal(burstWindowSeconds(100, 60, 20), 60);
    assert.equal(burstWindowSeconds(10, 60, 30), 180);
    assert.equal(burstWindowSeconds(3, 10, 1), 10);
    assert.equal(burstWindowSeconds(7, 1, 10), 2);
  });
});
