// Rate limiting without sockets: the trusted client address from x-forwarded-for, the key a request
// is counted under, and the in-memory counters with the clock mocked (rate-limiter-flexible reads
// Date.now and sets timers itself, so node:test's mock timers stand in for an injected clock).

import { describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { trustedClientAddress } from '../src/core/proxy/client-address.js';
import { rateLimitKey } from '../src/core/policy/rate-limit-key.js';
import { RateLimiters } from '../src/core/policy/rate-limiters.js';
import { burstWindowSeconds, type RateLimitRule } from '../src/core/policy/rate-limit-table.js';
import { GATEWAY_HELP, runGatewayCommand } from '../src/cli/gateway.js';
import { SIDECAR_HELP, runSidecarCommand } from '../src/cli/sidecar.js';

describe('trusted client address (xff_num_trusted_hops)', () => {
  const cases: Array<[string, string | string[] | undefined, number, string]> = [
    ['no trusted proxies: the peer, whatever the header says', '203.0.113.9', 0, '10.0.0.5'],
    ['one proxy: the rightmost entry', '198.51.100.1, 203.0.113.9', 1, '203.0.113.9'],
    ['two proxies: the second from the right', '198.51.100.1, 203.0.113.9, 10.1.1.1', 2, '203.0.113.9'],
    ['entries the client wrote further left are ignored', 'spoofed, 1.2.3.4, 203.0.113.9', 1, '203.0.113.9'],
    ['fewer entries than proxies: the peer', '203.0.113.9', 2, '10.0.0.5'],
    ['no header: the peer', undefined, 1, '10.0.0.5'],
    ['not an address: the peer', '198.51.100.1, unknown', 1, '10.0.0.5'],
    ['several headers are one list', ['198.51.100.1', '203.0.113.9, 10.1.1.1'], 2, '203.0.113.9'],
    ['spaces do not matter', '198.51.100.1 ,  203.0.113.9  ', 1, '203.0.113.9'],
    ['IPv6 entries', '2001:db8::1, 2001:db8::2', 2, '2001:db8::1'],
    ['IPv4-mapped IPv6 is the IPv4 address', '::ffff:203.0.113.9', 1, '203.0.113.9'],
  ];
  for (const [name, xff, hops, want] of cases) {
    it(name, () => assert.equal(trustedClientAddress('10.0.0.5', xff, hops), want));
  }
  it('a dual-stack peer is its IPv4 address', () => assert.equal(trustedClientAddress('::ffff:127.0.0.1', undefined, 0), '127.0.0.1'));
});

describe('rate limit keys', () => {
  const subject = (headers: Record<string, string | string[]>, principal?: string) => ({
    headers,
    clientIp: () => '192.0.2.7',
    principal: () => principal,
  });
  it('clientIp, header and principal', () => {
    assert.equal(rateLimitKey({ kind: 'clientIp' }, subject({})), '192.0.2.7');
    assert.equal(rateLimitKey({ kind: 'header', name: 'x-api-key' }, subject({ 'x-api-key': 'k1' })), 'k1');
    assert.equal(rateLimitKey({ kind: 'header', name: 'x-api-key' }, subject({ 'x-api-key': ['a', 'b'] })), 'a,b');
    assert.equal(rateLimitKey({ kind: 'principal' }, subject({}, 'spiffe://cluster.local/ns/a/sa/b')), 'spiffe://cluster.local/ns/a/sa/b');
  });
  it('a request without the key is not counted by that limit', () => {
    assert.equal(rateLimitKey({ kind: 'header', name: 'x-api-key' }, subject({})), undefined);
    assert.equal(rateLimitKey({ kind: 'principal' }, subject({})), undefined);
  });
  it('a long value is counted by its digest', () => {
    const key = rateLimitKey({ kind: 'header', name: 'x-api-key' }, subject({ 'x-api-key': 'k'.repeat(5000) }))!;
    assert.match(key, /^sha256:[\w-]{43}$/);
    assert.notEqual(key, rateLimitKey({ kind: 'header', name: 'x-api-key' }, subject({ 'x-api-key': 'k'.repeat(5001) })));
  });
});

function rule(requests: number, intervalSeconds: number, burst = 0, id = 'default/p[0]'): RateLimitRule {
  const burstSeconds = burst > 0 ? burstWindowSeconds(requests, intervalSeconds, burst) : 0;
  return {
    id, policy: id.replace(/\[\d+\]$/, ''), key: { kind: 'clientIp' }, requests, intervalSeconds, burst, burstSeconds, store: 'memory', position: 'after-authz',
    settings: `${id} ${requests}/${intervalSeconds}s burst ${burst}/${burstSeconds}s memory`,
  };
}

/** Consumes `n` times and returns what each decision said, compactly. */
async function take(limiters: RateLimiters, r: RateLimitRule, key: string, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const d = await limiters.consume(r, key);
    out.push(d ? `${d.allowed ? 'ok' : 'no'} ${d.remaining} ${d.resetSeconds}s` : 'none');
  }
  return out;
}

describe('in-memory counters, with the clock mocked', () => {
  const silent = pino({ level: 'silent' });

  it('requests per window, exactly; the window starts over after the interval', async (t) => {
    t.mock.timers.enable({ apis: ['Date', 'setTimeout'], now: 1_000_000 });
    const limiters = new RateLimiters({ logger: silent });
    const r = rule(3, 60);
    assert.deepEqual(await take(limiters, r, 'a', 4), ['ok 2 60s', 'ok 1 60s', 'ok 0 60s', 'no 0 60s']);
    assert.deepEqual(await take(limiters, r, 'b', 1), ['ok 2 60s'], 'another key has its own count');
    t.mock.timers.tick(45_000);
    assert.deepEqual(await take(limiters, r, 'a', 1), ['no 0 15s'], 'Retry-After counts down');
    t.mock.timers.tick(15_000);
    assert.deepEqual(await take(limiters, r, 'a', 4), ['ok 2 60s', 'ok 1 60s', 'ok 0 60s', 'no 0 60s']);
    assert.deepEqual(limiters.stats(), { allowed: 7, limited: 3, errors: 0, limiters: 1 });
  });

  it('keys a client varies are bounded: past maxLiveKeys in their window, new ones share one window; old ones keep their own, and room comes back as windows end', async (t) => {
    t.mock.timers.enable({ apis: ['Date', 'setTimeout'], now: 1_000_000 });
    const limiters = new RateLimiters({ logger: silent, maxLiveKeys: 3 });
    const r = rule(2, 60);
    for (const k of ['a', 'b', 'c']) assert.deepEqual(await take(limiters, r, k, 1), ['ok 1 60s'], k);
    // 1000 new values: counted together under one key, 2 allowed in all, never uncounted.
    const fresh: string[] = [];
    for (let i = 0; i < 1000; i++) fresh.push(...(await take(limiters, r, `new-${i}`, 1)));
    assert.deepEqual(fresh.slice(0, 3), ['ok 1 60s', 'ok 0 60s', 'no 0 60s']);
    assert.equal(fresh.filter((d) => d.startsWith('ok')).length, 2);
    assert.deepEqual(await take(limiters, r, 'a', 2), ['ok 0 60s', 'no 0 60s'], 'a key already counted keeps its own window');
    t.mock.timers.tick(60_000);
    assert.deepEqual(await take(limiters, r, 'new-7', 1), ['ok 1 60s'], 'once windows end, a new key has its own again');
  });

  it('burst: that many more once the window is used up, then the reserve waits for its own window', async (t) => {
    t.mock.timers.enable({ apis: ['Date', 'setTimeout'], now: 1_000_000 });
    const limiters = new RateLimiters({ logger: silent });
    // 2 per 10 s with a burst of 3: the reserve comes back after max(10, 3 × 10 / 2) = 15 s.
    const r = rule(2, 10, 3);
    assert.equal(r.burstSeconds, 15);
    assert.deepEqual(await take(limiters, r, 'a', 6), ['ok 1 10s', 'ok 0 10s', 'ok 0 10s', 'ok 0 10s', 'ok 0 10s', 'no 0 10s']);
    t.mock.timers.tick(10_000);
    // A new window, but the reserve is still spent for 5 s more.
    assert.deepEqual(await take(limiters, r, 'a', 3), ['ok 1 10s', 'ok 0 10s', 'no 0 5s']);
    t.mock.timers.tick(5_000);
    assert.deepEqual(await take(limiters, r, 'a', 4), ['ok 0 5s', 'ok 0 5s', 'ok 0 5s', 'no 0 5s']);
  });

  it('a reload with the same settings keeps counting; changed or removed settings start over', async (t) => {
    t.mock.timers.enable({ apis: ['Date', 'setTimeout'], now: 1_000_000 });
    const limiters = new RateLimiters({ logger: silent });
    const before = rule(2, 60);
    await take(limiters, before, 'a', 2);
    const same = { ...rule(2, 60) }; // a new object, as a new snapshot compiles it
    limiters.retain([same]);
    assert.deepEqual(await take(limiters, same, 'a', 1), ['no 0 60s']);
    const changed = rule(3, 60);
    limiters.retain([changed]);
    assert.equal(limiters.stats().limiters, 0);
    assert.deepEqual(await take(limiters, changed, 'a', 1), ['ok 2 60s']);
  });

  it('store redis without a Redis connection counts in memory and says so once', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (l: string) => void lines.push(l) });
    const limiters = new RateLimiters({ logger });
    const r = { ...rule(1, 60), store: 'redis' as const };
    assert.deepEqual(await take(limiters, r, 'a', 2), ['ok 0 60s', 'no 0 60s']);
    limiters.retain([]);
    await take(limiters, r, 'a', 1);
    assert.equal(lines.filter((l) => l.includes('without --redis')).length, 1);
  });
});

describe('meshgate gateway and sidecar options for rate limiting', () => {
  it('refuses a bad --trusted-proxies or --redis before starting anything', async () => {
    await assert.rejects(runGatewayCommand(['--config', 'x', '--trusted-proxies=-1']), /--trusted-proxies: '-1'/);
    await assert.rejects(runGatewayCommand(['--config', 'x', '--trusted-proxies', 'two']), /--trusted-proxies: 'two'/);
    await assert.rejects(runGatewayCommand(['--config', 'x', '--redis', 'localhost:6379']), /--redis: 'localhost:6379' is not a redis:\/\/ or rediss:\/\/ URL/);
  });
  it('documents both in its help', () => {
    assert.match(GATEWAY_HELP, /--redis URL/);
    assert.match(GATEWAY_HELP, /--trusted-proxies N (?:.*\n){1,4}.*xff_num_trusted_hops/);
  });
  it('the sidecar takes the same options, and --locality, checked before it asks for an identity', async () => {
    const sidecar = ['--control', 'https://127.0.0.1:1', '--token', 'no-such-file', '--namespace', 'default', '--service-account', 'a', '--workload', 'a-0', '--app-port', '8080'];
    await assert.rejects(runSidecarCommand([...sidecar, '--trusted-proxies', 'two']), /--trusted-proxies: 'two'/);
    await assert.rejects(runSidecarCommand([...sidecar, '--redis', 'localhost:6379']), /--redis: 'localhost:6379' is not a redis:\/\/ or rediss:\/\/ URL/);
    await assert.rejects(runSidecarCommand([...sidecar, '--locality', 'a//b']), /--locality: 'a\/\/b'/);
    for (const flag of ['--redis URL', '--trusted-proxies N', '--locality R/Z/S']) assert.ok(SIDECAR_HELP.includes(flag), flag);
  });
});

// The mock API must exist on this Node version; a missing one would silently skip the clock tests.
it('node:test mock timers can mock Date here', () => assert.equal(typeof mock.timers.enable, 'function'));
