// DestinationRule resolution (docs/concepts/resilience.md): short names, exportTo, lookup order, most specific host,
// merging several rules; then the effective policy per subset and port, and clusters built from them
// (with their circuit-breaker limits and outlier settings, replaced block by block).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../src/core/config/load.js';
import { indexDestinationRules, namespaceOfServiceHost } from '../src/core/policy/destination-rules.js';
import { effectivePolicy } from '../src/core/policy/traffic-policy.js';
import { buildCluster } from '../src/core/policy/cluster.js';
import { LiveClusters } from '../src/core/policy/live-clusters.js';
import { buildRegistry } from '../src/core/registry/build.js';
import type { Resource } from '../src/core/model/resource.js';
import { seededRandom } from './helpers/random.js';

function load(yaml: string): Resource[] {
  const { resources, problems } = parseConfigText(yaml, 'dr.yaml');
  assert.deepEqual(problems, []);
  return resources;
}

function dr(name: string, ns: string, body: string, extraMeta = ''): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${name}, namespace: ${ns}${extraMeta}}
spec:
${body
  .trim()
  .split('\n')
  .map((l) => `  ${l}`)
  .join('\n')}
`;
}

const REVIEWS = 'reviews.shop.svc.cluster.local';

describe('DestinationRule lookup', () => {
  const yaml = [
    dr('short', 'shop', 'host: reviews\ntrafficPolicy: {loadBalancer: {simple: RANDOM}}'),
    dr('dotted', 'shop', 'host: ratings.shop\ntrafficPolicy: {loadBalancer: {simple: RANDOM}}'),
    dr('private', 'shop', 'host: details\nexportTo: ["."]\ntrafficPolicy: {loadBalancer: {simple: RANDOM}}'),
    dr('to-gw', 'shop', 'host: productpage\nexportTo: [gw]'),
    dr('hidden', 'shop', 'host: hidden\nexportTo: ["~"]'),
    dr('gw-local', 'gw', 'host: "*.shop.svc.cluster.local"\nexportTo: ["."]'),
    dr('gw-wide', 'gw', 'host: "*.svc.cluster.local"'),
    dr('mesh-default', 'istio-system', 'host: "*.local"'),
    dr('root-private', 'istio-system', 'host: "*.cluster.local"\nexportTo: ["."]'),
  ].join('---\n');
  const index = indexDestinationRules(load(yaml));
  const cases: Array<[string, string, string | undefined, string]> = [
    // [host, proxy namespace, expected first source, why]
    [REVIEWS, 'shop', 'DestinationRule shop/short', 'short host resolved in the rule namespace'],
    [REVIEWS, 'web', 'DestinationRule shop/short', 'service namespace, exported to all'],
    [REVIEWS, 'gw', 'DestinationRule gw/gw-local', 'the proxy namespace wins; most specific wildcard'],
    ['other.other.svc.cluster.local', 'gw', 'DestinationRule gw/gw-wide', 'proxy namespace, broader wildcard'],
    ['ratings.shop.svc.cluster.local', 'web', 'DestinationRule istio-system/mesh-default', '`ratings.shop` is not expanded'],
    ['details.shop.svc.cluster.local', 'shop', 'DestinationRule shop/private', 'private rule, same namespace'],
    ['details.shop.svc.cluster.local', 'web', 'DestinationRule istio-system/mesh-default', 'private rule invisible elsewhere'],
    ['productpage.shop.svc.cluster.local', 'web', 'DestinationRule istio-system/mesh-default', 'exported to gw only'],
    ['hidden.shop.svc.cluster.local', 'shop', 'DestinationRule istio-system/mesh-default', '`~` hides it even at home'],
    ['x.y.svc.cluster.local', 'istio-system', 'DestinationRule istio-system/root-private', 'root-namespace proxy sees root private rules first'],
    ['example.com', 'web', undefined, 'nothing matches'],
  ];
  for (const [host, proxyNs, want, why] of cases) {
    it(`${host} from ${proxyNs}: ${why}`, () => assert.equal(index.forHost(host, proxyNs)?.sources[0], want));
  }

  it('a dotted host is taken literally', () => {
    assert.equal(index.forHost('ratings.shop', 'web', 'shop')?.sources[0], 'DestinationRule shop/dotted');
  });

  it('productpage is visible to the namespace it is exported to', () => {
    const idx = indexDestinationRules(load(dr('to-gw', 'shop', 'host: productpage\nexportTo: [gw]')));
    assert.equal(idx.forHost('productpage.shop.svc.cluster.local', 'gw')?.sources[0], 'DestinationRule shop/to-gw');
    assert.equal(idx.forHost('productpage.shop.svc.cluster.local', 'web'), undefined);
  });

  it('the service namespace may be passed for hosts that do not say it (ServiceEntries)', () => {
    const idx = indexDestinationRules(load(dr('ext', 'egress', 'host: api.example.com')));
    assert.equal(idx.forHost('api.example.com', 'web'), undefined);
    assert.equal(idx.forHost('api.example.com', 'web', 'egress')?.host, 'api.example.com');
  });

  it('custom root namespace and domain', () => {
    const idx = indexDestinationRules(load(dr('root', 'mesh-root', 'host: "*"') + '---\n' + dr('r', 'shop', 'host: reviews')), {
      rootNamespace: 'mesh-root',
      domain: 'corp.internal',
    });
    assert.equal(idx.forHost('reviews.shop.svc.corp.internal', 'web')?.sources[0], 'DestinationRule shop/r');
    assert.equal(idx.forHost('anything.example', 'web')?.sources[0], 'DestinationRule mesh-root/root');
  });

  const nsCases: Array<[string, string | undefined]> = [
    ['reviews.shop.svc.cluster.local', 'shop'],
    ['a.b.c.svc.cluster.local', undefined],
    ['api.example.com', undefined],
    ['.shop.svc.cluster.local', undefined],
  ];
  for (const [host, want] of nsCases) {
    it(`namespaceOfServiceHost(${host}) = ${want}`, () => assert.equal(namespaceOfServiceHost(host), want));
  }
});

describe('DestinationRule merging', () => {
  it('subsets are concatenated by name; the oldest top-level policy wins', () => {
    const yaml = [
      dr('second', 'shop', 'host: reviews\ntrafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}\nsubsets:\n- {name: v2, labels: {version: v2}}\n- {name: v1, labels: {version: other}}', ', creationTimestamp: "2024-01-02T00:00:00Z"'),
      dr('first', 'shop', 'host: reviews\nsubsets:\n- {name: v1, labels: {version: v1}}', ', creationTimestamp: "2024-01-01T00:00:00Z"'),
      dr('third', 'shop', 'host: reviews.shop.svc.cluster.local\ntrafficPolicy: {loadBalancer: {simple: RANDOM}}\nsubsets:\n- {name: v3, labels: {version: v3}}', ', creationTimestamp: "2024-01-03T00:00:00Z"'),
    ].join('---\n');
    const merged = indexDestinationRules(load(yaml)).forHost(REVIEWS, 'shop')!;
    assert.deepEqual(merged.sources, ['DestinationRule shop/first', 'DestinationRule shop/second', 'DestinationRule shop/third']);
    assert.deepEqual(
      merged.subsets.map((s) => [s.name, s.labels?.version]),
      [
        ['v1', 'v1'],
        ['v2', 'v2'],
        ['v3', 'v3'],
      ],
    );
    assert.deepEqual(merged.trafficPolicy, { loadBalancer: { simple: 'ROUND_ROBIN' } });
    assert.equal(merged.trafficPolicySource, 'DestinationRule shop/second');
    assert.equal(merged.subsetSources.get('v2'), 'DestinationRule shop/second');
  });

  it('without timestamps, load order stands for creation order', () => {
    const yaml = [dr('a', 'shop', 'host: reviews\ntrafficPolicy: {tls: {mode: SIMPLE}}'), dr('b', 'shop', 'host: reviews\ntrafficPolicy: {tls: {mode: DISABLE}}')].join('---\n');
    assert.deepEqual(indexDestinationRules(load(yaml)).forHost(REVIEWS, 'web')!.trafficPolicy, { tls: { mode: 'SIMPLE' } });
  });

  it('rules with different exportTo stay apart; the later one without a selector is used', () => {
    const yaml = [
      dr('private', 'shop', 'host: reviews\nexportTo: ["."]\nsubsets: [{name: a}]'),
      dr('public', 'shop', 'host: reviews\nexportTo: ["*"]\nsubsets: [{name: b}]'),
    ].join('---\n');
    const idx = indexDestinationRules(load(yaml));
    assert.deepEqual(idx.forHost(REVIEWS, 'shop')!.sources, ['DestinationRule shop/public']);
    assert.deepEqual(idx.forHost(REVIEWS, 'web')!.sources, ['DestinationRule shop/public']);
  });

  it('a wider exportTo without selectors merges into the narrower rule and keeps its exportTo (as Istio does)', () => {
    const yaml = [
      dr('narrow', 'shop', 'host: reviews\nexportTo: [gw]\nsubsets: [{name: a}]'),
      dr('wide', 'shop', 'host: reviews\nexportTo: [gw, web]\nsubsets: [{name: b}]'),
    ].join('---\n');
    const idx = indexDestinationRules(load(yaml));
    assert.deepEqual(idx.forHost(REVIEWS, 'gw')!.sources, ['DestinationRule shop/narrow', 'DestinationRule shop/wide']);
    assert.deepEqual(
      idx.forHost(REVIEWS, 'gw')!.subsets.map((s) => s.name),
      ['a', 'b'],
    );
    assert.equal(idx.forHost(REVIEWS, 'web'), undefined);
  });

  it('same exportTo, one rule with a selector: merged into it and also kept alone', () => {
    const yaml = [
      dr('selected', 'gw', 'host: reviews.shop.svc.cluster.local\nworkloadSelector: {matchLabels: {app: gw}}\nsubsets: [{name: s}]'),
      dr('plain', 'gw', 'host: reviews.shop.svc.cluster.local\nexportTo: ["."]\nsubsets: [{name: p}]'),
    ].join('---\n');
    const idx = indexDestinationRules(load(yaml));
    assert.deepEqual(
      idx.forHost(REVIEWS, 'gw', undefined, { app: 'gw' })!.subsets.map((s) => s.name),
      ['s', 'p'],
    );
    assert.deepEqual(
      idx.forHost(REVIEWS, 'gw', undefined, { app: 'other' })!.subsets.map((s) => s.name),
      ['p'],
    );
  });

  it('a rule with a workloadSelector applies only to the proxies it selects, in its namespace', () => {
    const yaml = [
      dr('all', 'gw', 'host: reviews.shop.svc.cluster.local\nsubsets: [{name: all}]'),
      dr('ingress-only', 'gw', 'host: reviews.shop.svc.cluster.local\nworkloadSelector: {matchLabels: {istio: ingressgateway}}\nsubsets: [{name: special}]'),
    ].join('---\n');
    const idx = indexDestinationRules(load(yaml));
    assert.deepEqual(
      idx.forHost(REVIEWS, 'gw', undefined, { istio: 'ingressgateway', app: 'x' })!.subsets.map((s) => s.name),
      ['special'],
    );
    assert.deepEqual(
      idx.forHost(REVIEWS, 'gw', undefined, { istio: 'egressgateway' })!.subsets.map((s) => s.name),
      ['all'],
    );
    assert.deepEqual(
      idx.forHost(REVIEWS, 'gw')!.subsets.map((s) => s.name),
      ['all'],
    );
    assert.equal(idx.forHost(REVIEWS, 'web'), undefined, 'selector rules are never exported; the other is private to gw');
  });

  it('never throws on odd input', () => {
    const odd = load(
      [dr('no-host', 'shop', 'trafficPolicy: {}'), dr('bad-subsets', 'shop', 'host: reviews\nsubsets: [null, {labels: {a: b}}, {name: ok}]')].join('---\n'),
    );
    assert.deepEqual(
      indexDestinationRules(odd).forHost(REVIEWS, 'shop')!.subsets.map((s) => s.name),
      ['ok'],
    );
  });
});

describe('effective traffic policy', () => {
  const rule = (body: string) => indexDestinationRules(load(dr('r', 'shop', `host: reviews\n${body}`))).forHost(REVIEWS, 'shop')!;
  const CP = { tcp: { maxConnections: 7 } };
  const OD = { consecutive5xxErrors: 3 };

  it('no rule: defaults', () => assert.deepEqual(effectivePolicy(undefined, '', 80), {}));

  const destOnly = rule(`
trafficPolicy:
  loadBalancer: {simple: RANDOM}
  connectionPool: {tcp: {maxConnections: 7}}
  portLevelSettings:
  - port: {number: 8080}
    loadBalancer: {simple: ROUND_ROBIN}
subsets:
- {name: plain, labels: {version: v1}}
- name: lb
  trafficPolicy: {loadBalancer: {simple: LEAST_REQUEST}}
- name: pool
  trafficPolicy: {connectionPool: {http: {maxRetries: 1}}, outlierDetection: {consecutive5xxErrors: 3}}
- name: port-level
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 3}
    portLevelSettings:
    - port: {number: 80}
      tls: {mode: SIMPLE}
`);
  const cases: Array<[string, number, object]> = [
    ['', 80, { loadBalancer: { simple: 'RANDOM' }, connectionPool: CP, source: 'DestinationRule shop/r' }],
    // A port-level entry replaces the whole policy for its port: connectionPool is not inherited.
    ['', 8080, { loadBalancer: { simple: 'ROUND_ROBIN' }, source: 'DestinationRule shop/r' }],
    ['plain', 80, { loadBalancer: { simple: 'RANDOM' }, connectionPool: CP, source: 'DestinationRule shop/r' }],
    ['missing', 80, { loadBalancer: { simple: 'RANDOM' }, connectionPool: CP, source: 'DestinationRule shop/r' }],
    // Subset blocks replace the destination's blocks one by one.
    ['lb', 80, { loadBalancer: { simple: 'LEAST_REQUEST' }, connectionPool: CP, source: 'DestinationRule shop/r' }],
    ['lb', 8080, { loadBalancer: { simple: 'LEAST_REQUEST' }, source: 'DestinationRule shop/r' }],
    ['pool', 80, { loadBalancer: { simple: 'RANDOM' }, connectionPool: { http: { maxRetries: 1 } }, outlierDetection: OD, source: 'DestinationRule shop/r' }],
    ['pool', 8080, { loadBalancer: { simple: 'ROUND_ROBIN' }, connectionPool: { http: { maxRetries: 1 } }, outlierDetection: OD, source: 'DestinationRule shop/r' }],
    // The subset's own port-level entry replaces everything on that port, unset blocks included.
    ['port-level', 80, { tls: { mode: 'SIMPLE' }, source: 'DestinationRule shop/r' }],
    ['port-level', 9090, { loadBalancer: { simple: 'RANDOM' }, connectionPool: CP, outlierDetection: OD, source: 'DestinationRule shop/r' }],
  ];
  for (const [subset, port, want] of cases) {
    it(`subset "${subset}" port ${port}`, () => assert.deepEqual(effectivePolicy(destOnly, subset, port), want));
  }

  it('a subset policy alone, when the rule has none at the top', () => {
    const r = rule('subsets:\n- name: v1\n  trafficPolicy: {loadBalancer: {simple: RANDOM}, portLevelSettings: [{port: {number: 81}, connectionPool: {tcp: {maxConnections: 7}}}]}');
    assert.deepEqual(effectivePolicy(r, 'v1', 80), { loadBalancer: { simple: 'RANDOM' }, source: 'DestinationRule shop/r' });
    assert.deepEqual(effectivePolicy(r, 'v1', 81), { connectionPool: CP, source: 'DestinationRule shop/r' });
    assert.deepEqual(effectivePolicy(r, '', 80), {});
  });

  it('names the rule that supplied the subset when rules were merged', () => {
    const yaml = [
      dr('top', 'shop', 'host: reviews\ntrafficPolicy: {loadBalancer: {simple: RANDOM}}'),
      dr('subs', 'shop', 'host: reviews\nsubsets: [{name: v1, trafficPolicy: {tls: {mode: DISABLE}}}, {name: v2}]'),
    ].join('---\n');
    const merged = indexDestinationRules(load(yaml)).forHost(REVIEWS, 'shop')!;
    assert.equal(effectivePolicy(merged, 'v1', 80).source, 'DestinationRule shop/subs');
    assert.equal(effectivePolicy(merged, 'v2', 80).source, 'DestinationRule shop/top');
  });
});

describe('buildCluster', () => {
  const yaml = `
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec: {selector: {app: reviews}, ports: [{name: http, port: 9080}]}
---
apiVersion: v1
kind: Pod
metadata: {name: r1, namespace: shop, labels: {app: reviews, version: v1}}
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: r2, namespace: shop, labels: {app: reviews, version: v2, track: canary}}
status: {podIP: 10.0.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: r3, namespace: shop, labels: {app: reviews, version: v2}}
status: {podIP: 10.0.0.3, conditions: [{type: Ready, status: "False"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: r4, namespace: shop, labels: {app: reviews, version: v2}}
status: {podIP: 10.0.0.4}
---
${dr('reviews', 'shop', `host: reviews
trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
subsets:
- {name: v1, labels: {version: v1}}
- {name: v2, labels: {version: v2}, trafficPolicy: {loadBalancer: {simple: RANDOM}}}
- {name: canary, labels: {version: v2, track: canary}}
- {name: none, labels: {version: v9}}
- {name: all}`)}`;
  const resources = load(yaml);
  const { registry } = buildRegistry(resources);
  const service = registry.lookup(REVIEWS)!;
  const rule = indexDestinationRules(resources).forHost(REVIEWS, 'gw');
  const deps = { random: seededRandom(1), load: { active: () => 0 } };
  const cases: Array<[string, string[] | undefined, string | undefined]> = [
    ['', ['10.0.0.1', '10.0.0.2', '10.0.0.4'], 'ROUND_ROBIN'],
    ['v1', ['10.0.0.1'], 'ROUND_ROBIN'],
    ['v2', ['10.0.0.2', '10.0.0.4'], 'RANDOM'],
    ['canary', ['10.0.0.2'], 'ROUND_ROBIN'],
    ['none', [], 'ROUND_ROBIN'],
    ['all', ['10.0.0.1', '10.0.0.2', '10.0.0.4'], 'ROUND_ROBIN'],
    ['undefined-subset', undefined, undefined],
  ];
  for (const [subset, want, algorithm] of cases) {
    it(`subset "${subset}"`, () => {
      const c = buildCluster(service, service.ports[0]!, subset, rule, deps);
      assert.deepEqual(
        c?.endpoints.map((e) => e.address),
        want,
      );
      assert.equal(c?.lb.algorithm, algorithm);
      if (c) assert.equal(c.name, `outbound|9080|${subset}|${REVIEWS}`);
    });
  }

  it('a subset needs a rule; without one only the default cluster exists', () => {
    assert.equal(buildCluster(service, service.ports[0]!, 'v1', undefined, deps), undefined);
    const c = buildCluster(service, service.ports[0]!, '', undefined, deps)!;
    assert.equal(c.lb.algorithm, 'LEAST_REQUEST');
    assert.deepEqual(c.policy, {});
  });

  it('an empty subset picks nothing', () => {
    const c = buildCluster(service, service.ports[0]!, 'none', rule, deps)!;
    assert.equal(c.lb.pick({ headers: {}, sourceIp: '', query: new Map() }), undefined);
  });
});

describe('resilience blocks are replaced whole (subset, portLevelSettings)', () => {
  const yaml = `
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec: {selector: {app: reviews}, ports: [{name: http, port: 9080}, {name: http-admin, port: 9090}]}
---
apiVersion: v1
kind: Pod
metadata: {name: r1, namespace: shop, labels: {app: reviews, version: v1}}
status: {podIP: 10.0.0.1}
---
${dr('reviews', 'shop', `host: reviews
trafficPolicy:
  connectionPool:
    tcp: {maxConnections: 10}
    http: {http1MaxPendingRequests: 5, maxRetries: 2}
  outlierDetection: {consecutive5xxErrors: 2, baseEjectionTime: 1m, maxEjectionPercent: 50}
  loadBalancer:
    localityLbSetting: {failover: [{from: a, to: b}]}
  portLevelSettings:
  - port: {number: 9090}
    loadBalancer: {simple: RANDOM}
subsets:
- name: v1
  labels: {version: v1}
  trafficPolicy:
    connectionPool: {http: {http2MaxRequests: 7}}
    outlierDetection: {interval: 1s}
- name: lb
  labels: {version: v1}
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}`)}`;
  const resources = load(yaml);
  const { registry } = buildRegistry(resources);
  const service = registry.lookup(REVIEWS)!;
  const rule = indexDestinationRules(resources).forHost(REVIEWS, 'gw');
  const deps = { random: seededRandom(1), load: { active: () => 0 } };
  const build = (subset: string, port = 0) => buildCluster(service, service.ports[port]!, subset, rule, deps)!;

  it('the destination policy as written', () => {
    const t = build('').traffic!;
    assert.equal(t.limits.maxConnections, 10);
    assert.equal(t.limits.maxPendingRequests, 5);
    assert.equal(t.limits.maxRetries, 2);
    assert.deepEqual([t.outlier?.settings.consecutive5xx, t.outlier?.settings.baseEjectionMs, t.outlier?.settings.maxEjectionPercent], [2, 60_000, 50]);
  });

  it('a subset’s connectionPool and outlierDetection replace the blocks; unset fields fall back to defaults', () => {
    const t = build('v1').traffic!;
    assert.equal(t.limits.maxRequests, 7);
    assert.equal(t.limits.maxConnections, 4_294_967_295, 'tcp.maxConnections is not inherited');
    assert.equal(t.limits.maxRetries, 4_294_967_295);
    assert.deepEqual([t.outlier?.settings.consecutive5xx, t.outlier?.settings.intervalMs, t.outlier?.settings.baseEjectionMs, t.outlier?.settings.maxEjectionPercent], [5, 1000, 30_000, 10]);
  });

  it('a subset’s loadBalancer drops the destination’s localityLbSetting', () => {
    assert.deepEqual(build('lb').policy.loadBalancer, { simple: 'ROUND_ROBIN' });
    assert.ok(build('lb').traffic!.outlier, 'outlierDetection is still the destination’s');
  });

  it('a port-level entry replaces everything: no connectionPool, no outlier detection on that port', () => {
    const c = build('', 1);
    assert.equal(c.port.number, 9090);
    assert.equal(c.traffic!.limits.maxConnections, 4_294_967_295);
    assert.equal(c.traffic!.outlier, undefined);
    assert.equal(c.lb.algorithm, 'RANDOM');
  });

  it('live state is shared by every build of the same cluster', () => {
    const live = new LiveClusters();
    const a = buildCluster(service, service.ports[0]!, '', rule, { ...deps, live })!;
    const b = buildCluster(service, service.ports[0]!, '', rule, { ...deps, live })!;
    assert.equal(a.traffic!.breaker, b.traffic!.breaker);
    assert.equal(a.traffic!.outlier!.detector, b.traffic!.outlier!.detector);
    assert.notEqual(a.traffic!.breaker, build('').traffic!.breaker);
  });
});
