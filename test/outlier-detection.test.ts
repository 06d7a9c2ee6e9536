// Outlier detection with an injected clock (docs/concepts/resilience.md): Istio's defaults and
// field mapping, consecutive 5xx / gateway / local-origin counting, ejection times that grow with
// each ejection and return on interval ticks, maxEjectionPercent with its "at least one" rule.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { OutlierDetector, outlierSettings, type OutlierSettings } from '../src/core/policy/outlier-detection.js';

const HOSTS = ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80', '10.0.0.4:80'];
const [A, B, C, D] = HOSTS as [string, string, string, string];

function clock(start = 1_000_000): { now: () => number; advance(ms: number): void; set(t: number): void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms), set: (v) => (t = v) };
}

function settings(o: Parameters<typeof outlierSettings>[0]): OutlierSettings {
  const s = outlierSettings(o);
  assert.ok(s);
  return s;
}

describe('outlierSettings', () => {
  it('no block: no detection', () => assert.equal(outlierSettings(undefined), undefined));

  it('an empty block: Envoy’s consecutive-5xx of 5 and Istio’s defaults', () => {
    assert.deepEqual(outlierSettings({}), {
      consecutive5xx: 5,
      consecutiveGateway: 0,
      consecutiveLocalOrigin: 0,
      splitLocalOrigin: false,
      intervalMs: 10_000,
      baseEjectionMs: 30_000,
      maxEjectionMs: 300_000,
      maxEjectionPercent: 10,
      minHealthPercent: 0,
    });
  });

  it('fields as Istio maps them', () => {
    const s = settings({ consecutive5xxErrors: 0, consecutiveGatewayErrors: 2, interval: '1s', baseEjectionTime: '10m', maxEjectionPercent: 0, minHealthPercent: 50 });
    assert.equal(s.consecutive5xx, 0, '0 turns 5xx ejection off');
    assert.equal(s.consecutiveGateway, 2);
    assert.equal(s.intervalMs, 1000);
    assert.equal(s.baseEjectionMs, 600_000);
    assert.equal(s.maxEjectionMs, 600_000, 'the cap is never below the base');
    assert.equal(s.maxEjectionPercent, 10, '0 leaves Envoy’s default');
    assert.equal(s.minHealthPercent, 50);
  });

  it('the deprecated consecutiveErrors means gateway errors only', () => {
    const s = settings({ consecutiveErrors: 3 });
    assert.equal(s.consecutiveGateway, 3);
    assert.equal(s.consecutive5xx, 0);
  });

  it('split local-origin errors default to 5 consecutive failures', () => {
    assert.equal(settings({ splitExternalLocalOriginErrors: true }).consecutiveLocalOrigin, 5);
    assert.equal(settings({ splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 2 }).consecutiveLocalOrigin, 2);
  });
});

describe('OutlierDetector', () => {
  it('ejects after consecutive 5xx; any other answer starts the count again', () => {
    const d = new OutlierDetector(clock().now);
    const s = settings({ consecutive5xxErrors: 3, maxEjectionPercent: 100 });
    d.report(A, 500, s, HOSTS);
    d.report(A, 503, s, HOSTS);
    d.report(A, 404, s, HOSTS);
    d.report(A, 500, s, HOSTS);
    d.report(A, 500, s, HOSTS);
    assert.equal(d.isEjected(A), false);
    const v = d.version;
    assert.equal(d.report(A, 502, s, HOSTS), true);
    assert.equal(d.isEjected(A), true);
    assert.notEqual(d.version, v);
    assert.equal(d.isEjected(B), false);
    assert.equal(d.status(A).ejections, 1);
  });

  it('gateway errors: 502, 503, 504 count; a 500 breaks the run', () => {
    const d = new OutlierDetector(clock().now);
    const s = settings({ consecutive5xxErrors: 0, consecutiveGatewayErrors: 2, maxEjectionPercent: 100 });
    d.report(A, 502, s, HOSTS);
    d.report(A, 500, s, HOSTS);
    d.report(A, 504, s, HOSTS);
    assert.equal(d.isEjected(A), false);
    d.report(A, 503, s, HOSTS);
    assert.equal(d.isEjected(A), true);
    // 500s alone never eject when only gateway errors are enforced.
    for (let i = 0; i < 10; i++) d.report(B, 500, s, HOSTS);
    assert.equal(d.isEjected(B), false);
  });

  it('connect failures, resets and timeouts count as 503/504 unless split', () => {
    const d = new OutlierDetector(clock().now);
    const s = settings({ consecutive5xxErrors: 0, consecutiveGatewayErrors: 3, maxEjectionPercent: 100 });
    d.report(A, 'connect-failure', s, HOSTS);
    d.report(A, 'reset', s, HOSTS);
    d.report(A, 'timeout', s, HOSTS);
    assert.equal(d.isEjected(A), true);

    const split = settings({ splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 2, consecutive5xxErrors: 2, maxEjectionPercent: 100 });
    d.report(B, 'reset', split, HOSTS);
    d.report(B, 503, split, HOSTS); // an answer: the connection worked, the local count starts over
    d.report(B, 'timeout', split, HOSTS);
    assert.equal(d.isEjected(B), false);
    d.report(B, 'connect-failure', split, HOSTS);
    assert.equal(d.isEjected(B), true);
  });

  it('an ejected endpoint returns on the first interval tick after baseEjectionTime × times ejected', () => {
    const c = clock(0);
    const d = new OutlierDetector(c.now); // ticks at 0, 10 s, 20 s, …
    const s = settings({ consecutive5xxErrors: 1, interval: '10s', baseEjectionTime: '30s', maxEjectionPercent: 100 });
    c.set(4_000);
    d.report(A, 503, s, HOSTS);
    assert.equal(d.status(A).ejectedUntil, 40_000);
    c.set(39_999);
    assert.equal(d.isEjected(A), true);
    const v = d.version;
    c.set(40_000);
    assert.notEqual(d.version, v, 'balancers see the return');
    assert.equal(d.isEjected(A), false);
    // Ejected again right away: twice the base.
    d.report(A, 503, s, HOSTS);
    assert.deepEqual(d.status(A), { ejected: true, ejectedUntil: 100_000, ejections: 2, consecutive5xx: 0, consecutiveGatewayErrors: 1, consecutiveLocalOriginFailures: 0 });
  });

  it('the multiplier decays by one per interval spent healthy after returning', () => {
    const c = clock(0);
    const d = new OutlierDetector(c.now);
    const s = settings({ consecutive5xxErrors: 1, interval: '10s', baseEjectionTime: '30s', maxEjectionPercent: 100 });
    d.report(A, 503, s, HOSTS); // ×1: back at 30 s
    c.set(30_000);
    d.report(A, 503, s, HOSTS); // ×2: back at 90 s
    assert.equal(d.status(A).ejectedUntil, 90_000);
    c.set(90_000);
    assert.equal(d.isEjected(A), false);
    // Healthy ticks at 100 s and 110 s bring the multiplier from 2 to 0; the next ejection is ×1 again.
    c.set(115_000);
    d.report(A, 503, s, HOSTS);
    assert.equal(d.status(A).ejectedUntil, 150_000);
  });

  it('ejection time is capped at 300 s', () => {
    const c = clock(0);
    const d = new OutlierDetector(c.now);
    const s = settings({ consecutive5xxErrors: 1, interval: '1s', baseEjectionTime: '200s', maxEjectionPercent: 100 });
    d.report(A, 503, s, HOSTS);
    c.set(200_000);
    d.report(A, 503, s, HOSTS);
    assert.equal(d.status(A).ejectedUntil, 500_000);
  });

  it('maxEjectionPercent bounds the ejected share, but one endpoint may always go', () => {
    const d = new OutlierDetector(clock().now);
    const s = settings({ consecutive5xxErrors: 1, maxEjectionPercent: 50 });
    for (const h of HOSTS) d.report(h, 503, s, HOSTS);
    assert.deepEqual(HOSTS.map((h) => d.isEjected(h)), [true, true, false, false]);

    const two = [A, B];
    const d2 = new OutlierDetector(clock().now);
    const byDefault = settings({ consecutive5xxErrors: 1 }); // 10 %
    d2.report(A, 503, byDefault, two);
    d2.report(B, 503, byDefault, two);
    assert.deepEqual([d2.isEjected(A), d2.isEjected(B)], [true, false]);
  });

  it('answers that arrive while ejected are not counted', () => {
    const d = new OutlierDetector(clock().now);
    const s = settings({ consecutive5xxErrors: 2, maxEjectionPercent: 100 });
    d.report(C, 503, s, HOSTS);
    d.report(C, 503, s, HOSTS);
    assert.equal(d.report(C, 503, s, HOSTS), false);
    assert.equal(d.status(C).ejections, 1);
    assert.equal(d.status(D).ejected, false);
  });
});
