// Host name rules of docs/reference/routing.md: symmetric matching, one-way subsets, intersection, specificity
// order and short-name expansion.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  compareHostSpecificity,
  hostIntersection,
  hostMatches,
  hostSubsetOf,
  mostSpecificHost,
  resolveShortName,
} from '../src/core/registry/hostname.js';

describe('hostMatches (symmetric overlap)', () => {
  const cases: Array<[string, string, boolean]> = [
    ['*.foo.com', 'a.foo.com', true],
    ['*.foo.com', 'a.b.foo.com', true],
    ['*.foo.com', 'foo.com', false],
    ['*', 'anything.example', true],
    ['*', '*.com', true],
    ['*.com', '*.foo.com', true],
    ['*.foo.com', '*.com', true],
    ['*.foo.com', '*.bar.com', false],
    ['a.foo.com', 'a.foo.com', true],
    ['a.foo.com', 'b.foo.com', false],
  ];
  for (const [a, b, want] of cases) {
    it(`${a} ~ ${b} = ${want}`, () => {
      assert.equal(hostMatches(a, b), want);
      assert.equal(hostMatches(b, a), want, 'symmetric');
    });
  }
});

describe('hostSubsetOf (one-way)', () => {
  const cases: Array<[string, string, boolean]> = [
    ['a.foo.com', '*.foo.com', true],
    ['a.b.foo.com', '*.foo.com', true],
    ['foo.com', '*.foo.com', false],
    ['*.foo.com', '*.com', true],
    ['*.com', '*.foo.com', false],
    ['*.foo.com', '*.foo.com', true],
    ['*.foo.com', 'a.foo.com', false], // a wildcard is never a subset of a plain name
    ['*', '*', true],
    ['*.foo.com', '*', true],
    ['*', '*.foo.com', false],
    ['a.com', 'a.com', true],
    ['a.com', 'b.com', false],
  ];
  for (const [n, o, want] of cases) {
    it(`${n} ⊆ ${o} = ${want}`, () => assert.equal(hostSubsetOf(n, o), want));
  }
});

describe('hostIntersection', () => {
  const cases: Array<[string[], string[], string[]]> = [
    [['foo.com', '*.net'], ['*.bar.net'], ['*.bar.net']],
    [['*.example.com'], ['a.example.com', 'b.example.com', 'other.org'], ['a.example.com', 'b.example.com']],
    [['*'], ['a.com', '*.b.com'], ['a.com', '*.b.com']],
    [['a.com'], ['b.com'], []],
    [['a.com', 'a.com'], ['a.com', '*.com'], ['a.com']],
    [['*.com'], ['*.foo.com', '*'], ['*.foo.com', '*.com']],
  ];
  for (const [a, b, want] of cases) {
    it(`${JSON.stringify(a)} ∩ ${JSON.stringify(b)}`, () => assert.deepEqual(hostIntersection(a, b), want));
  }
});

describe('compareHostSpecificity', () => {
  it('plain names first, then longer, then alphabetical', () => {
    const hosts = ['*', '*.com', 'b.com', '*.foo.com', 'a.com', 'long.name.com', '*.aaa.com'];
    assert.deepEqual([...hosts].sort(compareHostSpecificity), ['long.name.com', 'a.com', 'b.com', '*.aaa.com', '*.foo.com', '*.com', '*']);
  });
});

describe('resolveShortName', () => {
  const cases: Array<[string, string, string | undefined, string]> = [
    ['reviews', 'default', undefined, 'reviews.default.svc.cluster.local'],
    ['reviews', 'prod', 'corp.internal', 'reviews.prod.svc.corp.internal'],
    ['reviews.default', 'prod', undefined, 'reviews.default'], // any dot means "already qualified"
    ['reviews.default.svc.cluster.local', 'prod', undefined, 'reviews.default.svc.cluster.local'],
    ['*', 'default', undefined, '*'],
    ['*.foo.com', 'default', undefined, '*.foo.com'],
    ['10.0.0.1', 'default', undefined, '10.0.0.1'],
    ['::1', 'default', undefined, '::1'],
    ['', 'default', undefined, ''],
  ];
  for (const [host, ns, domain, want] of cases) {
    it(`${host || '(empty)'} in ${ns} → ${want || '(empty)'}`, () => assert.equal(resolveShortName(host, ns, domain), want));
  }
});

describe('mostSpecificHost', () => {
  const exact = new Map<string, string>([
    ['a.foo.com', 'exact'],
    ['*.foo.com', 'wild-foo'],
    ['*.com', 'wild-com'],
  ]);
  const wildcards = [...exact.entries()].filter(([h]) => h.startsWith('*')).sort((x, y) => compareHostSpecificity(x[0], y[0]));
  const cases: Array<[string, string | undefined]> = [
    ['a.foo.com', 'exact'],
    ['b.foo.com', 'wild-foo'],
    ['x.b.foo.com', 'wild-foo'],
    ['bar.com', 'wild-com'],
    ['*.foo.com', 'wild-foo'],
    ['*.bar.foo.com', 'wild-foo'],
    ['*.org', undefined],
    ['foo.org', undefined],
  ];
  for (const [needle, want] of cases) {
    it(`${needle} → ${want}`, () => assert.equal(mostSpecificHost(needle, exact, wildcards), want));
  }
});
