// Load balancers with an injected seeded random: least request (two choices / load-scaled weights),
// round robin, random, ring hash and maglev, retry exclusion, readiness, and the hash keys.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createLoadBalancer } from '../src/core/policy/load-balancer.js';
import { cookieValue, durationSeconds } from '../src/core/policy/hash-key.js';
import { hash53 } from '../src/core/policy/hash.js';
import type { LoadBalancerSettings } from '../src/core/model/istio.js';
import type { Endpoint, ServicePort } from '../src/core/registry/types.js';
import type { EndpointLoad, LoadBalancer, PickContext } from '../src/core/policy/types.js';
import { seededRandom } from './helpers/random.js';

const PORT: ServicePort = { number: 80, name: 'http', protocol: 'HTTP', targetPort: 8080 };

function ep(address: string, opts: { weight?: number; ready?: boolean; port?: number } = {}): Endpoint {
  return {
    address,
    ports: opts.port ? new Map([[80, opts.port]]) : new Map(),
    labels: {},
    locality: '',
    weight: opts.weight ?? 1,
    namespace: 'default',
    meshTls: false,
    ready: opts.ready ?? true,
  };
}

const IDLE: EndpointLoad = { active: () => 0 };

function ctx(extra: Partial<PickContext> = {}): PickContext {
  return { headers: {}, sourceIp: '10.9.9.9', query: new Map(), ...extra };
}

function lb(endpoints: Endpoint[], settings?: LoadBalancerSettings, seed = 42, load: EndpointLoad = IDLE): LoadBalancer {
  return createLoadBalancer(endpoints, PORT, settings, { random: seededRandom(seed), load });
}

/** Share of picks per address over `n` picks. */
function shares(balancer: LoadBalancer, n: number, context: (i: number) => PickContext = () => ctx()): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const a = balancer.pick(context(i))!.endpoint.address;
    counts.set(a, (counts.get(a) ?? 0) + 1);
  }
  return new Map([...counts].map(([a, c]) => [a, c / n]));
}

function near(actual: number | undefined, expected: number, tolerance: number, what: string): void {
  assert.ok(actual !== undefined && Math.abs(actual - expected) <= tolerance, `${what}: ${actual} not within ${tolerance} of ${expected}`);
}

const THREE = () => [ep('10.0.0.1'), ep('10.0.0.2'), ep('10.0.0.3')];

describe('algorithm selection', () => {
  const cases: Array<[LoadBalancerSettings | undefined, string]> = [
    [undefined, 'LEAST_REQUEST'],
    [{}, 'LEAST_REQUEST'],
    [{ simple: 'UNSPECIFIED' }, 'LEAST_REQUEST'],
    [{ simple: 'LEAST_CONN' }, 'LEAST_REQUEST'],
    [{ simple: 'LEAST_REQUEST' }, 'LEAST_REQUEST'],
    [{ simple: 'PASSTHROUGH' }, 'LEAST_REQUEST'],
    [{ simple: 'ROUND_ROBIN' }, 'ROUND_ROBIN'],
    [{ simple: 'RANDOM' }, 'RANDOM'],
    [{ consistentHash: { httpHeaderName: 'x-user' } }, 'RING_HASH'],
    [{ consistentHash: { httpHeaderName: 'x-user', ringHash: { minimumRingSize: 64 } } }, 'RING_HASH'],
    [{ consistentHash: { useSourceIp: true, maglev: { tableSize: 251 } } }, 'MAGLEV'],
  ];
  for (const [settings, want] of cases) {
    it(`${JSON.stringify(settings)} → ${want}`, () => {
      assert.equal(lb(THREE(), settings).algorithm, want);
      assert.equal(lb([], settings).algorithm, want);
      assert.equal(lb([], settings).pick(ctx()), undefined);
    });
  }
});

describe('every algorithm', () => {
  const settings: LoadBalancerSettings[] = [
    {},
    { simple: 'ROUND_ROBIN' },
    { simple: 'RANDOM' },
    { consistentHash: { httpHeaderName: 'x-user' } },
    { consistentHash: { httpHeaderName: 'x-user', maglev: {} } },
  ];
  for (const s of settings) {
    const name = JSON.stringify(s);
    it(`${name}: never picks a non-ready endpoint`, () => {
      const balancer = lb([ep('a', { ready: false }), ep('b'), ep('c', { ready: false })], s);
      for (let i = 0; i < 200; i++) assert.equal(balancer.pick(ctx({ headers: { 'x-user': `u${i}` } }))!.endpoint.address, 'b');
      assert.equal(lb([ep('a', { ready: false })], s).pick(ctx()), undefined);
    });

    it(`${name}: avoids excluded endpoints while others remain`, () => {
      const endpoints = [ep('a'), ep('b', { weight: 3 }), ep('c')];
      const balancer = lb(endpoints, s);
      for (let i = 0; i < 300; i++) {
        const exclude = new Set([endpoints[i % 3]!, endpoints[(i + 1) % 3]!]);
        const picked = balancer.pick(ctx({ exclude, headers: { 'x-user': `u${i}` } }))!.endpoint;
        assert.equal(picked, endpoints[(i + 2) % 3]);
      }
    });

    it(`${name}: still answers when every endpoint was tried`, () => {
      const endpoints = [ep('a'), ep('b')];
      const picked = lb(endpoints, s).pick(ctx({ exclude: new Set(endpoints), headers: { 'x-user': 'u' } }));
      assert.ok(picked && endpoints.includes(picked.endpoint));
    });
  }
});

describe('LEAST_REQUEST', () => {
  it('equal weights: two random choices, fewer active requests wins, ties keep the first', () => {
    const endpoints = [ep('a'), ep('b', { port: 9000 })];
    const asked: string[] = [];
    const active = new Map([
      ['a:8080', 5],
      ['b:9000', 1],
    ]);
    const load = { active: (k: string) => (asked.push(k), active.get(k) ?? 0) };
    const sequence = [0.1, 0.9, 0.9, 0.1, 0.1, 0.2];
    let i = 0;
    const balancer = createLoadBalancer(endpoints, PORT, undefined, { random: () => sequence[i++]!, load });
    assert.equal(balancer.pick(ctx())!.endpoint.address, 'b');
    assert.equal(balancer.pick(ctx())!.endpoint.address, 'b');
    assert.equal(balancer.pick(ctx())!.endpoint.address, 'a', 'both choices a');
    assert.deepEqual(new Set(asked), new Set(['a:8080', 'b:9000']), 'load is keyed by address:endpoint port');
  });

  it('equal weights, idle: even spread', () => {
    for (const [, share] of shares(lb(THREE()), 30000)) near(share, 1 / 3, 0.02, 'share');
  });

  it('equal weights: a busy endpoint is chosen only when both choices land on it', () => {
    const load = { active: (k: string) => (k === '10.0.0.1:8080' ? 10 : 0) };
    const s = shares(lb(THREE(), undefined, 7, load), 30000);
    near(s.get('10.0.0.1'), 1 / 9, 0.015, 'busy');
    near(s.get('10.0.0.2'), 4 / 9, 0.02, 'idle');
  });

  it('unequal weights: weight divided by (active + 1)', () => {
    const endpoints = [ep('light'), ep('heavy', { weight: 3 })];
    near(shares(lb(endpoints), 20000).get('heavy'), 0.75, 0.02, 'idle');
    const busy = { active: (k: string) => (k === 'heavy:8080' ? 2 : 0) };
    near(shares(lb(endpoints, undefined, 3, busy), 20000).get('heavy'), 0.5, 0.02, 'heavy has 2 active');
  });
});

describe('ROUND_ROBIN', () => {
  it('equal weights rotate in order from a random start', () => {
    const balancer = createLoadBalancer(THREE(), PORT, { simple: 'ROUND_ROBIN' }, { random: () => 0.5, load: IDLE });
    const seq = Array.from({ length: 6 }, () => balancer.pick(ctx())!.endpoint.address);
    assert.deepEqual(seq, ['10.0.0.2', '10.0.0.3', '10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.1']);
  });

  it('weighted rotation is smooth and exact', () => {
    const balancer = lb([ep('a', { weight: 5 }), ep('b'), ep('c')], { simple: 'ROUND_ROBIN' });
    const seq = Array.from({ length: 14 }, () => balancer.pick(ctx())!.endpoint.address).join('');
    assert.equal(seq, 'aabacaaaabacaa');
  });

  it('an excluded endpoint loses its turn only', () => {
    const endpoints = THREE();
    const balancer = createLoadBalancer(endpoints, PORT, { simple: 'ROUND_ROBIN' }, { random: () => 0, load: IDLE });
    const skip = new Set([endpoints[1]!]);
    const seq = [balancer.pick(ctx()), balancer.pick(ctx({ exclude: skip })), balancer.pick(ctx())].map((p) => p!.endpoint.address);
    assert.deepEqual(seq, ['10.0.0.1', '10.0.0.3', '10.0.0.1']);
  });
});

describe('RANDOM', () => {
  it('weighted', () => {
    const s = shares(lb([ep('a'), ep('b', { weight: 3 }), ep('c', { weight: 6 })], { simple: 'RANDOM' }), 40000);
    near(s.get('a'), 0.1, 0.01, 'a');
    near(s.get('b'), 0.3, 0.015, 'b');
    near(s.get('c'), 0.6, 0.015, 'c');
  });

  it('equal weights', () => {
    for (const [, share] of shares(lb(THREE(), { simple: 'RANDOM' }), 30000)) near(share, 1 / 3, 0.02, 'share');
  });
});

const FIVE = () => ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5'].map((a) => ep(a));

for (const [name, settings] of [
  ['ring hash', { consistentHash: { httpHeaderName: 'X-User' } }],
  ['maglev', { consistentHash: { httpHeaderName: 'X-User', maglev: { tableSize: 65537 } } }],
] as Array<[string, LoadBalancerSettings]>) {
  describe(`consistent hash: ${name}`, () => {
    const keys = Array.from({ length: 5000 }, (_, i) => `user-${i}`);
    const byKey = (balancer: LoadBalancer) => keys.map((k) => balancer.pick(ctx({ headers: { 'x-user': k } }))!.endpoint.address);

    it('the same key always reaches the same endpoint, across rebuilds and seeds', () => {
      assert.deepEqual(byKey(lb(FIVE(), settings, 1)), byKey(lb(FIVE(), settings, 99)));
    });

    it('keys spread evenly', () => {
      const counts = new Map<string, number>();
      for (const a of byKey(lb(FIVE(), settings))) counts.set(a, (counts.get(a) ?? 0) + 1);
      assert.equal(counts.size, 5);
      for (const [, c] of counts) near(c / keys.length, 0.2, 0.05, 'share');
    });

    it('removing one endpoint moves about 1/N of the keys, nearly all from that endpoint', () => {
      const before = byKey(lb(FIVE(), settings));
      const after = byKey(lb(FIVE().filter((e) => e.address !== '10.0.0.3'), settings));
      let moved = 0;
      let movedElsewhere = 0;
      before.forEach((a, i) => {
        if (a !== after[i]) {
          moved++;
          if (a !== '10.0.0.3') movedElsewhere++;
        }
      });
      near(moved / keys.length, 0.2, 0.06, 'moved');
      assert.ok(movedElsewhere / keys.length < 0.03, `keys of other endpoints moved: ${movedElsewhere}`);
      if (name === 'ring hash') assert.equal(movedElsewhere, 0);
    });

    it('weights give proportional shares', () => {
      const endpoints = [ep('a'), ep('b', { weight: 3 })];
      const counts = new Map<string, number>();
      for (const a of byKey(lb(endpoints, settings))) counts.set(a, (counts.get(a) ?? 0) + 1);
      near((counts.get('b') ?? 0) / keys.length, 0.75, 0.06, 'heavy');
    });

    it('a request without the header gets a random endpoint', () => {
      const s = shares(lb(FIVE(), settings, 5), 5000);
      assert.equal(s.size, 5);
      for (const [, share] of s) near(share, 0.2, 0.05, 'share');
    });

    it('a retry walks on to the next endpoint, deterministically', () => {
      const balancer = lb(FIVE(), settings);
      const first = balancer.pick(ctx({ headers: { 'x-user': 'alice' } }))!.endpoint;
      const second = balancer.pick(ctx({ headers: { 'x-user': 'alice' }, exclude: new Set([first]) }))!.endpoint;
      assert.notEqual(second, first);
      assert.equal(balancer.pick(ctx({ headers: { 'x-user': 'alice' }, exclude: new Set([first]) }))!.endpoint, second);
    });
  });
}

describe('consistent hash keys', () => {
  it('a non-prime maglev table size falls back to the default and still works', () => {
    const balancer = lb(FIVE(), { consistentHash: { useSourceIp: true, maglev: { tableSize: 1000 } } });
    const a = balancer.pick(ctx({ sourceIp: '1.2.3.4' }))!.endpoint;
    assert.equal(balancer.pick(ctx({ sourceIp: '1.2.3.4' }))!.endpoint, a);
  });

  it('source IP', () => {
    const balancer = lb(FIVE(), { consistentHash: { useSourceIp: true } });
    const ips = Array.from({ length: 200 }, (_, i) => `192.168.1.${i}`);
    const first = ips.map((ip) => balancer.pick(ctx({ sourceIp: ip }))!.endpoint.address);
    assert.deepEqual(
      ips.map((ip) => balancer.pick(ctx({ sourceIp: ip }))!.endpoint.address),
      first,
    );
    assert.ok(new Set(first).size > 1);
  });

  it('query parameter', () => {
    const balancer = lb(FIVE(), { consistentHash: { httpQueryParameterName: 'session' } });
    const pick = (v: string) => balancer.pick(ctx({ query: new Map([['session', v]]) }))!.endpoint.address;
    assert.equal(pick('abc'), pick('abc'));
    assert.ok(new Set(Array.from({ length: 50 }, (_, i) => pick(`s${i}`))).size > 1);
  });

  it('header with several values hashes them together', () => {
    const balancer = lb(FIVE(), { consistentHash: { httpHeaderName: 'x-user' } });
    assert.equal(balancer.pick(ctx({ headers: { 'x-user': ['a', 'b'] } }))!.endpoint, balancer.pick(ctx({ headers: { 'x-user': 'a,b' } }))!.endpoint);
  });

  it('cookie with a ttl: generated when absent, then sticky', () => {
    const balancer = lb(FIVE(), { consistentHash: { httpCookie: { name: 'affinity', path: '/', ttl: '60s' } } });
    const first = balancer.pick(ctx())!;
    assert.match(first.setCookie ?? '', /^affinity=[0-9a-f]{16}; Path=\/; Max-Age=60; HttpOnly$/);
    const value = first.setCookie!.slice('affinity='.length, 'affinity='.length + 16);
    for (const cookie of [`affinity=${value}`, `a=1; affinity=${value}; b=2`, `affinity="${value}"`]) {
      const again = balancer.pick(ctx({ headers: { cookie } }))!;
      assert.equal(again.endpoint, first.endpoint, cookie);
      assert.equal(again.setCookie, undefined);
    }
  });

  it('cookie ttl 0 makes a session cookie; no ttl generates nothing', () => {
    const session = lb(FIVE(), { consistentHash: { httpCookie: { name: 'sid', ttl: '0s' } } }).pick(ctx())!;
    assert.match(session.setCookie ?? '', /^sid=[0-9a-f]{16}; HttpOnly$/);
    const none = lb(FIVE(), { consistentHash: { httpCookie: { name: 'sid' } } }).pick(ctx())!;
    assert.equal(none.setCookie, undefined);
  });

  const cookies: Array<[string | undefined, string, string | undefined]> = [
    ['a=1; b=2', 'b', '2'],
    ['a=1;b=2', 'b', '2'],
    ['ab=1; b=2', 'b', '2'],
    ['b=', 'b', ''],
    ['xb=1', 'b', undefined],
    ['b', 'b', undefined],
    [undefined, 'b', undefined],
    ['b="q"', 'b', 'q'],
  ];
  for (const [header, name, want] of cookies) {
    it(`cookieValue(${header}, ${name}) = ${want}`, () => assert.equal(cookieValue(header, name), want));
  }

  const durations: Array<[string, number | undefined]> = [
    ['60s', 60],
    ['1.5s', 1],
    ['0s', 0],
    ['0', 0],
    ['1h', 3600],
    ['1h30m', 5400],
    ['1500ms', 1],
    ['', undefined],
    ['10', undefined],
    ['5x', undefined],
  ];
  for (const [text, want] of durations) {
    it(`durationSeconds(${JSON.stringify(text)}) = ${want}`, () => assert.equal(durationSeconds(text), want));
  }

  it('hash53 is deterministic, seeded, and within 53 bits', () => {
    assert.equal(hash53('hello'), hash53('hello'));
    assert.notEqual(hash53('hello'), hash53('hellp'));
    assert.notEqual(hash53('hello', 0), hash53('hello', 1));
    for (const s of ['', 'a', 'é', '日本', 'x'.repeat(1000)]) {
      const h = hash53(s);
      assert.ok(Number.isSafeInteger(h) && h >= 0, s);
    }
  });
});
