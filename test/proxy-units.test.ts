// Unit tables for request-path helpers: path normalization, virtual-host lookup order, redirect
// Location building, header rules, and the request ids a request without one is given.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { normalizePath } from '../src/core/proxy/path-normalize.js';
import { indexVirtualHosts, normalizeHost, stripTrailingHostDot } from '../src/core/routing/host-index.js';
import { redirectLocation } from '../src/core/proxy/http-handler.js';
import { applyHeaderRules, requestIdOf } from '../src/core/proxy/headers.js';
import type { RedirectAction, RequestFacts, VirtualHost } from '../src/core/routing/types.js';

describe('normalizePath (Istio BASE normalization)', () => {
  const cases: Array<[string, string | undefined]> = [
    ['/a/b', '/a/b'],
    ['/a/./b', '/a/b'],
    ['/a/../b', '/b'],
    ['/../../b', '/b'],
    ['/a/b/..', '/a/'],
    ['/a\\b', '/a/b'],
    ['/%61dmin', '/admin'],
    ['/a%2Fb', '/a%2Fb'], // encoded slash is not decoded under BASE
    ['/x/%2e%2e/b', '/b'],
    ['/a%00', undefined],
    ['relative', undefined],
    ['//a//b', '//a//b'], // BASE does not merge slashes
  ];
  for (const [input, want] of cases) it(`${input} → ${String(want)}`, () => assert.equal(normalizePath(input), want));
});

describe('virtual host lookup order', () => {
  const vh = (domain: string): VirtualHost => ({ domain, routes: [], requireTls: false });
  const rc = indexVirtualHosts('t', [vh('*'), vh('*.example.com'), vh('*.a.example.com'), vh('exact.a.example.com'), vh('foo.*')]);
  const cases: Array<[string, string | undefined]> = [
    ['exact.a.example.com', 'exact.a.example.com'],
    ['x.a.example.com', '*.a.example.com'],
    ['x.example.com', '*.example.com'],
    ['a.example.com', '*.example.com'],
    ['example.com', '*'],
    ['foo.bar', 'foo.*'],
    ['other.org', '*'],
  ];
  for (const [host, want] of cases) it(`${host} → ${String(want)}`, () => assert.equal(rc.findVirtualHost(host)?.domain, want));
  it('a wildcard never matches the empty label', () => {
    const only = indexVirtualHosts('t', [vh('*.example.com')]);
    assert.equal(only.findVirtualHost('.example.com'), undefined);
  });
  it('normalizes Host headers', () => {
    assert.equal(normalizeHost('Example.COM:8080'), 'example.com');
    assert.equal(normalizeHost('[::1]:80'), '[::1]');
    // The parse stage drops one trailing dot (stripTrailingHostDot); a name still ending in one is another name.
    assert.equal(normalizeHost('example.com.'), 'example.com.');
    assert.equal(stripTrailingHostDot('example.com.'), 'example.com');
    assert.equal(stripTrailingHostDot('Example.com.:8080'), 'Example.com:8080');
    assert.equal(stripTrailingHostDot('example.com..'), 'example.com.');
    assert.equal(stripTrailingHostDot('[::1]'), '[::1]');
  });
});

describe('redirect Location', () => {
  const facts = (authority: string, scheme = 'http'): RequestFacts => ({
    port: 80, host: normalizeHost(authority), authority, path: '/p', queryString: 'q=1', query: new Map(), method: 'GET', scheme, headers: {},
  });
  const redirect = (r: Partial<RedirectAction>): RedirectAction => ({ kind: 'redirect', code: 301, responseHeaders: { set: [], add: [], remove: [] }, ...r });
  it('replaces the path and keeps the query', () => assert.equal(redirectLocation(redirect({ uri: '/new' }), facts('a.com'), '/p?q=1'), 'http://a.com/new?q=1'));
  it('switches scheme and drops the default port', () => assert.equal(redirectLocation(redirect({ scheme: 'https', port: 443 }), facts('a.com'), '/p'), 'https://a.com/p'));
  it('keeps a non-default request port with FROM_REQUEST_PORT', () =>
    assert.equal(redirectLocation(redirect({ derivePort: 'FROM_REQUEST_PORT' }), facts('a.com:8080'), '/p'), 'http://a.com:8080/p'));
  it('replaces the authority', () => assert.equal(redirectLocation(redirect({ authority: 'b.com' }), facts('a.com:8080'), '/p'), 'http://b.com/p'));
});

describe('header rules', () => {
  it('removes, then sets, then appends', () => {
    const h: Record<string, string | string[]> = { a: '1', b: '2', c: '3' };
    applyHeaderRules(h, { remove: ['a'], set: [['b', 'x']], add: [['c', 'y'], ['d', 'z']] });
    assert.deepEqual(h, { b: 'x', c: ['3', 'y'], d: 'z' });
  });
});

describe('request ids', () => {
  it('a request without one gets a random version 4 UUID, never the same twice', () => {
    const seen = new Set<string>();
    // More than one batch of random bytes (request-id.ts).
    for (let i = 0; i < 1000; i++) {
      const id = requestIdOf({});
      assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      seen.add(id);
    }
    assert.equal(seen.size, 1000);
  });
  it('a request that carries one keeps it', () => assert.equal(requestIdOf({ 'x-request-id': 'abc' }), 'abc'));
});
