// A worker's board of HTTP-01 answers (`--workers N`, file mode) once the gateway has closed its ACME
// side while listeners still drain: a miss must be answered 404 at once, not left waiting for a
// reply from the primary that nobody listens for any more.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { workerChallenges } from '../src/gateway/acme/worker-challenges.js';

describe('a worker\'s HTTP-01 answers after close', () => {
  const sent: unknown[] = [];
  const saved = { send: process.send, connected: Object.getOwnPropertyDescriptor(process, 'connected') };
  before(() => {
    // This process stands in for a worker whose channel to the primary is open.
    process.send = ((m: unknown, _h?: unknown, _o?: unknown, cb?: (err: Error | null) => void) => {
      sent.push(m);
      cb?.(null);
      return true;
    }) as typeof process.send;
    Object.defineProperty(process, 'connected', { value: true, configurable: true });
  });
  after(() => {
    process.send = saved.send;
    if (saved.connected) Object.defineProperty(process, 'connected', saved.connected);
    else delete (process as { connected?: boolean }).connected;
  });

  it('a miss after close asks nobody and is a 404', async () => {
    const board = workerChallenges();
    board.close();
    const answer = board.answer(randomBytes(32).toString('base64url'));
    assert.deepEqual(sent, [], 'no question the closed board would never hear answered');
    assert.equal(await answer, undefined);
  });
});
