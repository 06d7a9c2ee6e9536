// The worker's side of `--workers` circuit breaking (core/runtime/worker-breakers.ts): clusters
// without finite limits never touch the channel to the primary, and limited ones fail closed (503 UO)
// when the primary cannot be reached; the primary's side counts for every worker and frees what a
// worker that died held.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Worker } from 'node:cluster';
import { EventEmitter } from 'node:events';
import { DEFAULT_LIMITS, MAX_UINT32, type ConnectionLimits } from '../src/core/policy/connection-limits.js';
import { PrimaryBreakers, workerBreakers } from '../src/core/runtime/worker-breakers.js';

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

describe('primary breakers', () => {
  /** A stand-in for a cluster Worker: what the primary sends it, and a way to send the primary something. */
  function fakeWorker() {
    const w = new EventEmitter() as EventEmitter & { got: Array<{ id: number; verdict: string }>; send(m: unknown, h?: unknown, cb?: () => void): boolean; isConnected(): boolean };
    w.got = [];
    w.send = (m) => {
      w.got.push(m as { id: number; verdict: string });
      return true;
    };
    w.isConnected = () => true;
    return w;
  }
  const ask = (w: EventEmitter, m: Record<string, unknown>) => w.emit('message', { meshgate: 'breaker', ...m });
  const admit = (id: number) => ({ op: 'admit', id, cluster: 'c', limits: [1, 1, MAX_UINT32], mux: false });

  it('counts one limit for all workers, hands a freed connection to the oldest waiter, and frees what a dead worker held', async () => {
    const primary = new PrimaryBreakers();
    const a = fakeWorker();
    const b = fakeWorker();
    primary.attach(a as unknown as Worker);
    primary.attach(b as unknown as Worker);
    ask(a, admit(1));
    ask(b, admit(1));
    ask(b, admit(2));
    assert.deepEqual(a.got.map((m) => m.verdict), ['admitted']);
    assert.deepEqual(b.got.map((m) => m.verdict), ['overflow'], 'one waits, the next overflows');
    // Worker a dies holding the connection: b's waiting request gets it.
    primary.detach(a as unknown as Worker);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(b.got.map((m) => `${m.id}:${m.verdict}`), ['2:overflow', '1:admitted']);
    ask(b, { op: 'release', id: 1 });
    assert.equal(primary.counters('c')?.connections, 0);
    assert.equal(primary.counters('c')?.pending, 0);
  });
});
