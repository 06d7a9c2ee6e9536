// The JWKS cache against a real loopback server and an injected clock: one fetch serves until the
// refresh interval, then keys are fetched again; a failed refetch keeps serving the stale keys
// (stale-if-error); an unknown key id refetches early but at most once per minRefetch; a URI that
// never answered has no keys (tokens fail closed); concurrent requests share one fetch.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { JwksCache, fetchJwks } from '../src/core/policy/jwks-cache.js';

// The fetch timeout is not under test: a generous one, so a slow machine (the first fetch also loads
// the HTTP client) never turns into a miss.
const FETCH_TIMEOUT_MS = 30_000;

describe('JwksCache', () => {
  let server: Server;
  let uri: string;
  let hits = 0;
  let mode: 'ok' | 'fail' | 'rotated' = 'ok';

  before(async () => {
    server = createServer((_req, res) => {
      hits++;
      if (mode === 'fail') {
        res.writeHead(503);
        res.end('down');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [{ kty: 'oct', kid: mode === 'rotated' ? 'k2' : 'k1', k: 'AAAA' }] }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    uri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
  });
  after(() => new Promise((r) => server.close(r)));

  it('fetches once, serves from cache until the refresh interval, then refetches', async () => {
    mode = 'ok';
    hits = 0;
    let now = 1_000_000;
    const cache = new JwksCache({ now: () => now, refreshMs: 60_000, minRefetchMs: 5_000 });
    const [a, b] = await Promise.all([cache.keys(uri, FETCH_TIMEOUT_MS), cache.keys(uri, FETCH_TIMEOUT_MS)]);
    assert.equal(hits, 1, 'concurrent first requests share one fetch');
    assert.equal(a?.keys[0]?.kid, 'k1');
    assert.equal(a, b);
    now += 59_000;
    await cache.keys(uri, FETCH_TIMEOUT_MS);
    assert.equal(hits, 1);
    now += 2_000;
    mode = 'rotated';
    const c = await cache.keys(uri, FETCH_TIMEOUT_MS);
    assert.equal(hits, 2);
    assert.equal(c?.keys[0]?.kid, 'k2');
  });

  it('stale-if-error: a failed refresh keeps the last keys, and is not retried on every request', async () => {
    mode = 'ok';
    hits = 0;
    let now = 0;
    const cache = new JwksCache({ now: () => now, refreshMs: 60_000, minRefetchMs: 5_000 });
    await cache.keys(uri, FETCH_TIMEOUT_MS);
    mode = 'fail';
    now += 61_000;
    const stale = await cache.keys(uri, FETCH_TIMEOUT_MS);
    assert.equal(stale?.keys[0]?.kid, 'k1');
    assert.equal(hits, 2);
    assert.match(cache.status(uri).lastError ?? '', /503/);
    now += 1_000;
    await cache.keys(uri, FETCH_TIMEOUT_MS);
    assert.equal(hits, 2, 'within minRefetch the stale keys serve without asking');
    mode = 'rotated';
    now += 5_000;
    const fresh = await cache.keys(uri, FETCH_TIMEOUT_MS);
    assert.equal(fresh?.keys[0]?.kid, 'k2');
    assert.equal(cache.status(uri).lastError, undefined);
  });

  it('an unknown key id forces one early refetch, no more often than minRefetch', async () => {
    mode = 'ok';
    hits = 0;
    let now = 0;
    const cache = new JwksCache({ now: () => now, refreshMs: 60_000, minRefetchMs: 5_000 });
    await cache.keys(uri, FETCH_TIMEOUT_MS);
    now += 5_000;
    mode = 'rotated';
    assert.equal((await cache.keys(uri, FETCH_TIMEOUT_MS, true))?.keys[0]?.kid, 'k2');
    assert.equal(hits, 2);
    now += 1_000;
    await cache.keys(uri, FETCH_TIMEOUT_MS, true);
    assert.equal(hits, 2, 'forced again too soon: the cached keys serve');
  });

  it('a key set larger than 1 MiB is refused while it is read, not after the deadline', async () => {
    // Streams 2 MiB and never ends: read whole, it held the proxy's memory until the deadline.
    const endless = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(`{"keys": [${' '.repeat(2 << 20)}`);
    });
    await new Promise<void>((r) => endless.listen(0, '127.0.0.1', r));
    try {
      const at = `http://127.0.0.1:${(endless.address() as AddressInfo).port}/jwks`;
      await assert.rejects(fetchJwks(at, 10_000), /larger than 1 MiB/);
    } finally {
      endless.closeAllConnections();
      await new Promise((r) => endless.close(r));
    }
  });

  it('a URI that never answered has no keys', async () => {
    mode = 'fail';
    const told: Array<[string, boolean]> = [];
    const cache = new JwksCache({ minRefetchMs: 5_000, onFetchError: (u, _error, stale) => told.push([u, stale]) });
    assert.equal(await cache.keys(uri, FETCH_TIMEOUT_MS), undefined);
    assert.equal(await cache.keys(uri, FETCH_TIMEOUT_MS), undefined);
    assert.equal(await cache.keys('http://127.0.0.1:1/none', FETCH_TIMEOUT_MS), undefined);
    // Each failed fetch is told once (for the proxy's log), not each request that found no keys.
    assert.deepEqual(told, [[uri, false], ['http://127.0.0.1:1/none', false]]);
  });
});
