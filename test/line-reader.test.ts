// Lines out of a byte stream: split anywhere (inside a UTF-8 character too), one line across many
// chunks, a stop half-way through a chunk, and the line-length limit.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LineReader } from '../src/core/sources/line-reader.js';

function readAll(chunks: Buffer[], max = 1 << 20): string[] {
  const r = new LineReader(max);
  const out: string[] = [];
  for (const c of chunks) assert.equal(r.push(c, (l) => out.push(l)), undefined);
  return out;
}

describe('LineReader', () => {
  it('gives the same lines however the bytes are cut', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary', minLength: 1 }).filter((s) => !s.includes('\n') && s.trim() !== ''), { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 10 }), (lines, cuts) => {
        const bytes = Buffer.from(lines.map((l) => l + '\n').join(''));
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let at = 0;
        for (const p of [...points, bytes.length]) {
          chunks.push(bytes.subarray(at, p));
          at = p;
        }
        assert.deepEqual(readAll(chunks), lines);
      }),
      { seed: 42, numRuns: 300 },
    );
  });

  it('joins a line that spans many chunks once, and skips empty lines', () => {
    const big = 'x'.repeat(100_000);
    const chunks = [Buffer.from('\n\n')];
    for (let i = 0; i < big.length; i += 1000) chunks.push(Buffer.from(big.slice(i, i + 1000)));
    chunks.push(Buffer.from('\nnext\n'));
    assert.deepEqual(readAll(chunks), [big, 'next']);
  });

  it('stops reading a chunk when told to', () => {
    const r = new LineReader(100);
    const out: string[] = [];
    r.push(Buffer.from('a\nb\nc\n'), (l) => out.push(l), () => out.length === 2);
    assert.deepEqual(out, ['a', 'b']);
  });

  it('refuses a line past the limit', () => {
    const r = new LineReader(10);
    assert.equal(r.push(Buffer.from('12345'), () => undefined), undefined);
    assert.match(r.push(Buffer.from('678901'), () => undefined)?.message ?? '', /longer than 10 bytes/);
  });
});
