// Circuit breaking (docs/concepts/resilience.md): the limits Istio derives from a connectionPool
// block (MaxUint32 defaults, 0 = default), and the breaker's counting: connections, a bounded
// first-come-first-served wait, overflow at once beyond it, request and retry limits, cancelled waits;
// and the per-request guard forward() uses to admit attempts, hold retries and report results.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CircuitBreaker, type Cancel, type Slot } from '../src/core/policy/circuit-breaker.js';
import { DEFAULT_LIMITS, MAX_UINT32, connectionLimits, connectTimeoutFor, hasFiniteLimits, isDefaultLimits, limitsWithConnectTimeout, type ConnectionLimits } from '../src/core/policy/connection-limits.js';
import { buildSnapshot } from '../src/core/snapshot/build.js';
import { parseConfigText } from '../src/core/config/load.js';
import { OutlierDetector, outlierSettings } from '../src/core/policy/outlier-detection.js';
import type { Cluster } from '../src/core/policy/types.js';
import { AttemptGuard } from '../src/core/proxy/attempt-guard.js';

describe('connectionLimits', () => {
  it('defaults are MaxUint32, not Envoy’s 1024, and a 10 s connect timeout', () => {
    for (const pool of [undefined, {}, { tcp: {}, http: {} }]) {
      const l = connectionLimits(pool);
      assert.deepEqual(l, DEFAULT_LIMITS);
      assert.equal(l.maxConnections, MAX_UINT32);
      assert.equal(l.maxPendingRequests, MAX_UINT32);
      assert.equal(l.maxRequests, MAX_UINT32);
      assert.equal(l.maxRetries, MAX_UINT32);
      assert.equal(l.connectTimeoutMs, 10_000);
      assert.ok(isDefaultLimits(l));
    }
  });

  it('0 means the default; set values are taken', () => {
    const l = connectionLimits({
      tcp: { maxConnections: 0, connectTimeout: '250ms' },
      http: { http1MaxPendingRequests: 3, http2MaxRequests: 0, maxRetries: 2, maxRequestsPerConnection: 1, idleTimeout: '90s' },
    });
    assert.deepEqual(l, {
      maxConnections: MAX_UINT32,
      maxPendingRequests: 3,
      maxRequests: MAX_UINT32,
      maxRetries: 2,
      maxRequestsPerConnection: 1,
      connectTimeoutMs: 250,
      idleTimeoutMs: 90_000,
    });
    assert.ok(!isDefaultLimits(l));
  });

  it('limits are the totals for the whole proxy (workers count them in one place), and empty blocks are the defaults', () => {
    const pool = { tcp: { maxConnections: 10, connectTimeout: '1s' }, http: { http1MaxPendingRequests: 1, http2MaxRequests: 7, maxRetries: 2, maxRequestsPerConnection: 5 } };
    assert.deepEqual(connectionLimits(pool), {
      maxConnections: 10,
      maxPendingRequests: 1,
      maxRequests: 7,
      maxRetries: 2,
      maxRequestsPerConnection: 5,
      connectTimeoutMs: 1000,
    });
    assert.ok(hasFiniteLimits(connectionLimits(pool)));
    assert.ok(isDefaultLimits(connectionLimits({ tcp: {}, http: {} })));
    assert.ok(!hasFiniteLimits(connectionLimits({ tcp: {}, http: { maxRequestsPerConnection: 1 } })));
  });
});

const limits = (over: Partial<ConnectionLimits>): ConnectionLimits => ({ ...DEFAULT_LIMITS, ...over });

function slot(a: unknown): Slot {
  assert.ok(a && typeof a === 'object' && 'release' in a, `expected a slot, got ${String(a)}`);
  return a as Slot;
}

describe('connect timeout: the rule\'s, else the mesh config\'s connectTimeout, else 10 s', () => {
  const config = (mesh: string): string => `apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
${mesh}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: default}
spec:
  hosts: [db.example.com]
  ports: [{number: 5432, name: tcp, protocol: TCP}, {number: 80, name: http, protocol: HTTP}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: db, namespace: default}
spec:
  host: db.example.com
  trafficPolicy:
    portLevelSettings:
    - port: {number: 80}
      connectionPool: {tcp: {connectTimeout: 250ms}}
`;
  const snapshotOf = (mesh: string) =>
    buildSnapshot(parseConfigText(config(mesh), 'mesh.yaml'), { kind: 'sidecar', namespace: 'default', labels: { app: 'curl' }, serviceAccount: 'curl', outboundTrafficPolicy: 'ALLOW_ANY' }, { random: () => 0.5, load: { active: () => 0 } }).snapshot;

  it('a destination no cluster describes (PassthroughCluster, the app) takes the mesh config\'s; clusters keep it unless their rule says', () => {
    const s = snapshotOf('    connectTimeout: 2s');
    assert.equal(connectTimeoutFor(s), 2000);
    const cluster = (port: number) => [...s.clusters.values()].find((c) => c.port.number === port);
    assert.equal(connectTimeoutFor(s, cluster(5432)), 2000, 'no rule of its own: the mesh\'s');
    assert.equal(connectTimeoutFor(s, cluster(80)), 250, 'the rule\'s port-level connectTimeout');
  });

  it('without one, 10 s, with the default limits\' fast paths intact', () => {
    const s = snapshotOf('    enableTracing: false');
    assert.equal(connectTimeoutFor(s), 10_000);
    assert.equal(connectTimeoutFor(undefined), 10_000);
    assert.equal(limitsWithConnectTimeout(10_000), DEFAULT_LIMITS);
    assert.ok(!isDefaultLimits(limitsWithConnectTimeout(2000)));
    assert.equal(limitsWithConnectTimeout(2000), limitsWithConnectTimeout(2000), 'one object per value');
  });
});

describe('CircuitBreaker', () => {
  it('past maxConnections attempts wait up to http1MaxPendingRequests, then overflow at once', async () => {
    const b = new CircuitBreaker();
    const l = limits({ maxConnections: 2, maxPendingRequests: 1 });
    const first = slot(b.admit(l, false));
    slot(b.admit(l, false));
    const waiting = b.admit(l, false);
    assert.ok(waiting instanceof Promise);
    assert.equal(b.admit(l, false), 'overflow');
    assert.deepEqual(b.counters(), { connections: 2, pending: 1, requests: 3, retries: 0, waited: 1, overflows: { connections: 2, pending: 1, requests: 0, retries: 0 } });
    first.release();
    first.release(); // twice is harmless
    const handed = slot(await waiting);
    assert.deepEqual({ ...b.counters(), overflows: undefined }, { connections: 2, pending: 0, requests: 2, retries: 0, waited: 1, overflows: undefined });
    handed.release();
    assert.equal(b.counters().connections, 1);
  });

  it('waiters are served first come, first served, and a cancelled wait leaves the queue', async () => {
    const b = new CircuitBreaker();
    const l = limits({ maxConnections: 1, maxPendingRequests: 5 });
    const held = slot(b.admit(l, false));
    const order: string[] = [];
    let cancelB: Cancel | undefined;
    const a = (b.admit(l, false) as Promise<unknown>).then((s) => (order.push('a'), s));
    const bw = (b.admit(l, false, (c) => (cancelB = c)) as Promise<unknown>).then((s) => (order.push(`b:${String(s)}`), s));
    const c = (b.admit(l, false) as Promise<unknown>).then((s) => (order.push('c'), s));
    cancelB!.cancel(new Error('route timeout'));
    assert.equal(await bw, 'cancelled');
    held.release();
    slot(await a).release();
    slot(await c).release();
    assert.deepEqual(order, ['b:cancelled', 'a', 'c']);
    assert.deepEqual(b.counters(), { connections: 0, pending: 0, requests: 0, retries: 0, waited: 3, overflows: { connections: 3, pending: 0, requests: 0, retries: 0 } });
  });

  it('a new attempt does not overtake the ones already waiting', async () => {
    const b = new CircuitBreaker();
    const l = limits({ maxConnections: 1, maxPendingRequests: 1 });
    const held = slot(b.admit(l, false));
    const waiting = b.admit(l, false) as Promise<unknown>;
    held.release();
    // The freed connection went to the waiter: the newcomer waits in its turn.
    const newcomer = b.admit(l, false);
    assert.ok(newcomer instanceof Promise);
    slot(await waiting).release();
    slot(await newcomer).release();
  });

  it('http2MaxRequests bounds requests in flight for every protocol; HTTP/2 ignores connections', () => {
    const b = new CircuitBreaker();
    const l = limits({ maxRequests: 2, maxConnections: 1, maxPendingRequests: 0 });
    const a = slot(b.admit(l, true));
    slot(b.admit(l, true));
    assert.equal(b.admit(l, true), 'overflow');
    assert.equal(b.admit(l, false), 'overflow');
    assert.equal(b.counters().overflows.requests, 2);
    a.release();
    slot(b.admit(l, false));
  });

  it('maxRetries bounds retries in flight', () => {
    const b = new CircuitBreaker();
    const l = limits({ maxRetries: 1 });
    assert.equal(b.tryRetry(l), true);
    assert.equal(b.tryRetry(l), false);
    b.retryDone();
    assert.equal(b.tryRetry(l), true);
    assert.deepEqual(b.counters().overflows, { connections: 0, pending: 0, requests: 0, retries: 1 });
  });

  it('TCP connections never wait', () => {
    const b = new CircuitBreaker();
    const l = limits({ maxConnections: 1 });
    const s = slot(b.openConnection(l));
    assert.equal(b.openConnection(l), 'overflow');
    s.release();
    slot(b.openConnection(l));
  });

  it('a limit lowered by a reload lets connections drain before waiters go on', async () => {
    const b = new CircuitBreaker();
    const wide = limits({ maxConnections: 3, maxPendingRequests: 5 });
    const held = [slot(b.admit(wide, false)), slot(b.admit(wide, false)), slot(b.admit(wide, false))];
    const narrow = limits({ maxConnections: 1, maxPendingRequests: 5 });
    let served = false;
    const waiting = (b.admit(narrow, false) as Promise<unknown>).then((s) => ((served = true), s));
    held[0]!.release();
    held[1]!.release();
    await Promise.resolve();
    assert.equal(served, false);
    held[2]!.release();
    slot(await waiting).release();
    assert.equal(b.counters().connections, 0);
  });
});

describe('AttemptGuard (what forward() holds per request)', () => {
  const cluster = (over: Partial<ConnectionLimits>, outlier?: Parameters<typeof outlierSettings>[0]) => {
    const detector = new OutlierDetector(() => 0);
    const traffic = {
      limits: limits(over),
      breaker: new CircuitBreaker(),
      ...(outlier ? { outlier: { settings: outlierSettings(outlier)!, detector } } : {}),
      hostKeys: ['10.0.0.1:80', '10.0.0.2:80'],
    };
    return { traffic, detector, cluster: { traffic } as unknown as Cluster };
  };

  it('retries in flight across requests are bounded by maxRetries; a retry holds its slot until its attempt ends', async () => {
    const { cluster: c, traffic } = cluster({ maxRetries: 1 });
    const one = new AttemptGuard(c);
    const two = new AttemptGuard(c);
    assert.equal(await one.admit(false, () => undefined), 'admitted');
    one.done('10.0.0.1:80', { kind: 'retry-status', status: 503 }, 503, undefined);
    assert.equal(one.mayRetry(), true);
    assert.equal(two.mayRetry(), false, 'the only retry slot is taken');
    assert.equal(await one.admit(false, () => undefined), 'admitted');
    assert.equal(traffic.breaker.counters().retries, 1);
    one.done('10.0.0.2:80', { kind: 'responded', complete: true }, 200, undefined);
    assert.equal(traffic.breaker.counters().retries, 0);
    assert.equal(two.mayRetry(), true);
    two.close();
    two.close();
    assert.deepEqual({ ...traffic.breaker.counters(), overflows: undefined }, { connections: 0, pending: 0, requests: 0, retries: 0, waited: 0, overflows: undefined });
  });

  it('reports each attempt: statuses as they are, failures as local-origin errors, a departed client not at all', async () => {
    const { cluster: c, detector } = cluster({}, { consecutiveGatewayErrors: 3, consecutive5xxErrors: 0, maxEjectionPercent: 100 });
    const g = new AttemptGuard(c);
    const attempt = async (outcome: Parameters<AttemptGuard['done']>[1], status: number, stopped?: 'timeout' | 'downstream') => {
      assert.equal(await g.admit(false, () => undefined), 'admitted');
      g.done('10.0.0.1:80', outcome, status, stopped);
    };
    await attempt({ kind: 'failed', error: new Error('ECONNREFUSED') }, 200);
    await attempt({ kind: 'failed', error: new Error('downstream closed') }, 200, 'downstream');
    await attempt({ kind: 'failed', error: new Error('route timeout') }, 200, 'timeout');
    assert.equal(detector.status('10.0.0.1:80').consecutiveGatewayErrors, 2);
    await attempt({ kind: 'responded', complete: true }, 502);
    assert.equal(detector.isEjected('10.0.0.1:80'), true);
    g.close();
  });

  it('overflow and a cancelled wait become 503 UO and the stopped request’s own answer', () => {
    assert.equal(AttemptGuard.refusal('overflow', undefined).flag, 'UO');
    assert.equal(AttemptGuard.refusal('overflow', undefined).status, 503);
    assert.equal(AttemptGuard.refusal('cancelled', 'timeout').flag, 'UT');
    assert.equal(AttemptGuard.refusal('admitted', 'downstream').flag, 'DC');
  });
});
