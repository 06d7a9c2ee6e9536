// Locality-aware and health-aware balancing: the priorities Istio assigns (failover, failoverPriority),
// distribute weights, Envoy's split of traffic over priorities by health (overprovisioning 1.4),
// panic below minHealthPercent, and locality weights scaled by health. Seeded randomness, no timing.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { localityMatches, localityPlan, parseLocality, type ProxyPlacement } from '../src/core/policy/locality.js';
import { priorityBalancer, priorityLoads, type EndpointHealth } from '../src/core/policy/priority-lb.js';
import { createLoadBalancer } from '../src/core/policy/load-balancer.js';
import type { LocalityLbSetting } from '../src/core/model/istio.js';
import type { Endpoint, ServicePort } from '../src/core/registry/types.js';
import type { LoadBalancer } from '../src/core/policy/types.js';
import { seededRandom } from './helpers/random.js';

const PORT: ServicePort = { number: 80, name: 'http', protocol: 'HTTP' };

function ep(address: string, locality: string, labels: Record<string, string> = {}, weight = 1): Endpoint {
  return { address, ports: new Map(), labels, locality, weight, namespace: 'default', meshTls: false, ready: true };
}

const HERE: ProxyPlacement = { locality: 'region-a/zone-1/sub-1', labels: { app: 'gw', 'topology.istio.io/network': 'n1' } };

const ENDPOINTS = [
  ep('10.0.0.1', 'region-a/zone-1/sub-1'), // same subzone
  ep('10.0.0.2', 'region-a/zone-1/sub-2'), // same zone
  ep('10.0.0.3', 'region-a/zone-2'), // same region
  ep('10.0.0.4', 'region-b/zone-1'),
  ep('10.0.0.5', 'region-c/zone-9'),
];

/** Priorities as lists of addresses. */
function priorities(endpoints: readonly Endpoint[], setting: LocalityLbSetting | undefined, outlier = true, proxy = HERE): string[][] {
  const plan = localityPlan(endpoints, setting, outlier, proxy);
  return plan.priorities.map((groups) => groups.flatMap((g) => g.members.map((i) => endpoints[i]!.address)));
}

describe('locality matching', () => {
  const l = parseLocality('us-east/us-east-1a/rack-7');
  const cases: Array<[string, boolean]> = [
    ['us-east', true],
    ['us-east/*', true],
    ['us-east/us-east-1a', true],
    ['us-east/us-east-1a/rack-7', true],
    ['us-east/us-east-1b/*', false],
    ['*', true],
    ['us-west/*', false],
  ];
  for (const [pattern, want] of cases) it(`${pattern} → ${want}`, () => assert.equal(localityMatches(l, pattern), want));
});

describe('localityPlan', () => {
  it('failover by locality: subzone, zone, region, then the other regions', () => {
    assert.deepEqual(priorities(ENDPOINTS, undefined), [['10.0.0.1'], ['10.0.0.2'], ['10.0.0.3'], ['10.0.0.4', '10.0.0.5']]);
  });

  it('a failover rule for our region puts its target region before the rest', () => {
    assert.deepEqual(priorities(ENDPOINTS, { failover: [{ from: 'region-a', to: 'region-c' }] }), [['10.0.0.1'], ['10.0.0.2'], ['10.0.0.3'], ['10.0.0.5'], ['10.0.0.4']]);
    // A rule for another region changes nothing here.
    assert.deepEqual(priorities(ENDPOINTS, { failover: [{ from: 'region-b', to: 'region-c' }] }), priorities(ENDPOINTS, undefined));
  });

  it('priorities have no gaps', () => {
    const eps = [ep('10.0.1.1', 'region-b/z'), ep('10.0.1.2', 'region-a/zone-2')];
    assert.deepEqual(priorities(eps, undefined), [['10.0.1.2'], ['10.0.1.1']]);
  });

  it('without outlier detection, or with enabled: false, there is one priority', () => {
    assert.deepEqual(priorities(ENDPOINTS, undefined, false), [ENDPOINTS.map((e) => e.address)]);
    assert.deepEqual(priorities(ENDPOINTS, { enabled: false }), [ENDPOINTS.map((e) => e.address)]);
  });

  it('failoverPriority: the longest run of labels that match the proxy’s', () => {
    const eps = [
      ep('10.0.2.1', 'region-a/zone-1', { 'topology.istio.io/network': 'n1' }),
      ep('10.0.2.2', 'region-b/zone-1', { 'topology.istio.io/network': 'n1' }),
      ep('10.0.2.3', 'region-a/zone-1', { 'topology.istio.io/network': 'n2' }),
    ];
    const setting = { failoverPriority: ['topology.istio.io/network', 'topology.kubernetes.io/region'] };
    assert.deepEqual(priorities(eps, setting), [['10.0.2.1'], ['10.0.2.2'], ['10.0.2.3']]);
    // `label=value` compares with the value given instead of the proxy's.
    assert.deepEqual(priorities(eps, { failoverPriority: ['topology.istio.io/network=n2'] }), [['10.0.2.3'], ['10.0.2.1', '10.0.2.2']]);
  });

  it('distribute: the first rule for the proxy’s locality, shares split by endpoint weight, unmatched localities left out', () => {
    const eps = [ep('10.0.3.1', 'region-a/zone-1'), ep('10.0.3.2', 'region-a/zone-1'), ep('10.0.3.3', 'region-b/zone-1'), ep('10.0.3.4', 'region-b/zone-2'), ep('10.0.3.5', 'region-c/zone-1')];
    const plan = localityPlan(
      eps,
      {
        distribute: [
          { from: 'region-z/*', to: { 'region-z/*': 100 } },
          { from: 'region-a/zone-1/*', to: { 'region-a/zone-1/*': 80, 'region-b/*': 20 } },
        ],
      },
      false,
      HERE,
    );
    assert.equal(plan.weighted, true);
    assert.deepEqual(
      plan.priorities[0]!.map((g) => [g.locality, g.members.map((i) => eps[i]!.address), g.weight]),
      [
        ['region-a/zone-1', ['10.0.3.1', '10.0.3.2'], 80],
        ['region-b/zone-1', ['10.0.3.3'], 10],
        ['region-b/zone-2', ['10.0.3.4'], 10],
      ],
    );
    // No rule for this proxy: distribute does nothing.
    assert.equal(localityPlan(eps, { distribute: [{ from: 'region-z/*', to: { 'region-z/*': 100 } }] }, true, HERE).weighted, false);
  });
});

describe('priorityLoads (Envoy’s split by health)', () => {
  const s = (total: number, healthy: number) => ({ total, healthy, health: Math.min(100, Math.floor((140 * healthy) / total)) });
  const cases: Array<[string, ReturnType<typeof s>[], number, number[], boolean[]]> = [
    ['all healthy: priority 0 takes everything', [s(2, 2), s(2, 2)], 0, [100, 0], [false, false]],
    ['3 of 4 healthy is still 100 % with overprovisioning', [s(4, 3), s(2, 2)], 0, [100, 0], [false, false]],
    ['1 of 2 healthy: 70 / 30', [s(2, 1), s(2, 2)], 0, [70, 30], [false, false]],
    ['nothing healthy at priority 0', [s(2, 0), s(2, 2), s(1, 1)], 0, [0, 100, 0], [false, false, false]],
    ['not enough health anywhere: normalised', [s(10, 1), s(10, 2)], 0, [34, 66], [false, false]],
    ['nothing healthy at all, no panic threshold: priority 0 (and no endpoint)', [s(2, 0), s(2, 0)], 0, [100, 0], [false, false]],
    ['nothing healthy, threshold set: total panic, shares by endpoint count', [s(3, 0), s(1, 0)], 50, [75, 25], [true, true]],
    ['under the threshold: that priority panics', [s(4, 1), s(2, 2)], 50, [35, 65], [true, false]],
  ];
  for (const [name, stats, threshold, load, panic] of cases) {
    it(name, () => assert.deepEqual(priorityLoads(stats, threshold), { load, panic }));
  }
});

class FakeHealth implements EndpointHealth {
  version = 0;
  readonly ejected = new Set<string>();
  isEjected(key: string): boolean {
    return this.ejected.has(key);
  }
  eject(...keys: string[]): void {
    keys.forEach((k) => this.ejected.add(k));
    this.version++;
  }
}

function shares(lb: LoadBalancer, n = 2000): Record<string, number> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const a = lb.pick({ headers: {}, sourceIp: '', query: new Map() })?.endpoint.address ?? 'none';
    counts[a] = (counts[a] ?? 0) + 1;
  }
  return Object.fromEntries(Object.entries(counts).map(([a, c]) => [a, c / n]));
}

function near(actual: number | undefined, expected: number, what: string): void {
  assert.ok(actual !== undefined && Math.abs(actual - expected) <= 0.04, `${what}: ${actual} is not about ${expected}`);
}

describe('priorityBalancer', () => {
  const eps = [ep('10.0.0.1', 'region-a/zone-1'), ep('10.0.0.2', 'region-a/zone-1'), ep('10.0.0.3', 'region-a/zone-2'), ep('10.0.0.4', 'region-b/zone-1')];
  const keys = eps.map((e) => `${e.address}:80`);
  const balancer = (health: FakeHealth, panicThreshold = 0, setting?: LocalityLbSetting) => {
    const random = seededRandom(7);
    return priorityBalancer({
      endpoints: eps,
      keys,
      plan: localityPlan(eps, setting, true, { locality: 'region-a/zone-1', labels: {} }),
      health,
      panicThreshold,
      algorithm: 'ROUND_ROBIN',
      random,
      build: (members) => createLoadBalancer(members, PORT, { simple: 'ROUND_ROBIN' }, { random, load: { active: () => 0 } }),
    });
  };

  it('stays in its own zone while healthy, and skips ejected endpoints', () => {
    const h = new FakeHealth();
    const lb = balancer(h);
    assert.deepEqual(shares(lb), { '10.0.0.1': 0.5, '10.0.0.2': 0.5 });
    h.eject('10.0.0.1:80');
    const s = shares(lb);
    // Half of zone-1 is left: 70 % stays, 30 % spills to zone-2.
    near(s['10.0.0.2'], 0.7, 'zone-1');
    near(s['10.0.0.3'], 0.3, 'zone-2');
    assert.equal(s['10.0.0.1'], undefined);
    h.eject('10.0.0.2:80');
    assert.deepEqual(shares(lb), { '10.0.0.3': 1 });
    h.eject('10.0.0.3:80');
    assert.deepEqual(shares(lb), { '10.0.0.4': 1 });
    h.eject('10.0.0.4:80');
    assert.deepEqual(shares(lb, 10), { none: 1 });
  });

  it('below minHealthPercent a priority panics and uses all of its endpoints', () => {
    const h = new FakeHealth();
    const lb = balancer(h, 60);
    h.eject('10.0.0.1:80');
    const s = shares(lb);
    near(s['10.0.0.1'], 0.35, 'ejected, but in panic');
    near(s['10.0.0.2'], 0.35, 'healthy');
    near(s['10.0.0.3'], 0.3, 'zone-2');
  });

  it('distribute weights localities, and a locality’s weight shrinks with its health', () => {
    const h = new FakeHealth();
    const lb = balancer(h, 0, { distribute: [{ from: 'region-a/zone-1', to: { 'region-a/zone-1': 75, 'region-b': 25 } }] });
    let s = shares(lb, 4000);
    near((s['10.0.0.1'] ?? 0) + (s['10.0.0.2'] ?? 0), 0.75, 'zone-1');
    near(s['10.0.0.4'], 0.25, 'region-b');
    assert.equal(s['10.0.0.3'], undefined, 'zone-2 is in no rule');
    h.eject('10.0.0.1:80');
    s = shares(lb, 4000);
    // zone-1: 75 × 0.7 = 52.5 against region-b's 25.
    near(s['10.0.0.2'], 52.5 / 77.5, 'zone-1, half healthy');
    near(s['10.0.0.4'], 25 / 77.5, 'region-b');
  });
});
