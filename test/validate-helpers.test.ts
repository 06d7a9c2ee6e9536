// The value helpers validation is built on: durations, host overlap and host subsets.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hostSubsetOf, hostsOverlap, parseDuration } from '../src/core/config/validate-common.js';

describe('duration, host helpers', () => {
  const durations: Array<[string, number | undefined]> = [
    ['1.5s', 1500], ['300ms', 300], ['1m', 60000], ['1h', 3600000], ['1h30m', 5400000], ['0', 0], ['0s', 0],
    ['2.5ms', 2.5], ['100us', 0.1], ['1.1s', 1100], ['', undefined], ['5', undefined], ['1 s', undefined], ['s', undefined], ['1d', undefined], ['1.5.5s', undefined],
  ];
  for (const [text, ms] of durations) it(`parseDuration(${JSON.stringify(text)}) = ${String(ms)}`, () => assert.equal(parseDuration(text), ms));
  it('rejects non-strings without throwing', () => assert.equal(parseDuration(5 as unknown as string), undefined));

  const overlaps: Array<[string, string, boolean]> = [
    ['*.foo.com', 'a.foo.com', true], ['*.foo.com', 'a.b.foo.com', true], ['*.foo.com', 'foo.com', false], ['*', '*.com', true],
    ['*.foo.com', '*.com', true], ['a.com', 'b.com', false], ['a.com', 'a.com', true],
  ];
  for (const [a, b, want] of overlaps) it(`${a} overlaps ${b}: ${want}`, () => assert.equal(hostsOverlap(a, b), want));
  const subsets: Array<[string, string, boolean]> = [
    ['a.foo.com', '*.foo.com', true], ['*.a.foo.com', '*.foo.com', true], ['*.foo.com', '*.a.foo.com', false], ['*.foo.com', 'a.foo.com', false], ['foo.com', '*.foo.com', false],
  ];
  for (const [a, b, want] of subsets) it(`${a} within ${b}: ${want}`, () => assert.equal(hostSubsetOf(a, b), want));
});
