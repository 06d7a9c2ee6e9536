// The worker's side of `--workers` circuit breaking (core/runtime/worker-breakers.ts): clusters
// without finite limits never touch the channel to the primary, and limited ones fail closed (503 UO)
// when the primary cannot be reached.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_LIMITS, type ConnectionLimits } from '../src/core/policy/connection-limits.js';
import { workerBreakers } from '../src/core/runtime/worker-breakers.js';

const limited: ConnectionLimits = { ...DEFAULT_LIMITS, maxConnections: 1, maxPendingRequests: 1 };

function channel(connected: boolean) {
  const sent: unknown[] = [];
  return {
    sent,
    send: (ask: unknown) => {
      if (!connected) return false;
      sent.push(ask);
      return true;
    },
    expect: () => new Promise<never>(() => undefined),
  };
}

describe('worker breakers', () => {
  it('counts unlimited clusters in the worker, without a message to the primary', () => {
    const ch = channel(true);
    const b = workerBreakers(2, ch)('outbound|80||app.default.svc.cluster.local');
    const a = b.admit(DEFAULT_LIMITS, false);
    assert.ok(typeof a === 'object' && 'release' in a);
    assert.equal(b.counters().connections, 1);
    a.release();
    assert.equal(b.counters().connections, 0);
    assert.equal(ch.sent.length, 0);
  });

  it('asks the primary for a limited cluster, and turns traffic away when it cannot (fail closed)', () => {
    const up = channel(true);
    assert.ok(workerBreakers(2, up)('c').admit(limited, false) instanceof Promise);
    assert.equal(up.sent.length, 1);
    const down = workerBreakers(2, channel(false))('c');
    assert.equal(down.admit(limited, false), 'overflow');
    assert.equal(down.openConnection(limited), 'overflow');
    assert.equal(down.counters().overflows.pending, 2);
  });

  it('gives each worker its share of maxRetries, which is decided without a round trip', () => {
    const b = workerBreakers(2, channel(true))('c');
    const l = { ...limited, maxRetries: 3 };
    assert.equal(b.tryRetry(l), true);
    assert.equal(b.tryRetry(l), true);
    assert.equal(b.tryRetry(l), false, 'ceil(3 / 2) = 2 per worker');
  });
});
