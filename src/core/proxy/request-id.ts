// The x-request-id a request that carries none is given: a random (version 4) UUID, as Envoy makes
// one. crypto.randomUUID() joins its string from some twenty pieces, one at a time (about 550 bytes
// of garbage per id on the gateway's request path, docs/benchmarks.md "The plain-HTTP path"); here the
// 36 characters are written into one buffer and read out as one string. The random bytes come from
// the same CSPRNG, a batch at a time, as randomUUID takes them.

import { randomFillSync } from 'node:crypto';

const IDS_PER_BATCH = 128;
const random = Buffer.alloc(16 * IDS_PER_BATCH);
let nextId = IDS_PER_BATCH;
const text = Buffer.alloc(36);
const HEX = Buffer.from('0123456789abcdef', 'latin1');
const DASH = 0x2d;

export function newRequestId(): string {
  if (nextId === IDS_PER_BATCH) {
    randomFillSync(random);
    nextId = 0;
  }
  const at = 16 * nextId++;
  let o = 0;
  for (let i = 0; i < 16; i++) {
    let b = random[at + i]!;
    // RFC 9562 §5.4: version 4 in byte 6's high nibble, the variant 0b10 in byte 8's top bits.
    if (i === 6) b = (b & 0x0f) | 0x40;
    else if (i === 8) b = (b & 0x3f) | 0x80;
    text[o++] = HEX[b >> 4]!;
    text[o++] = HEX[b & 0x0f]!;
    if (i === 3 || i === 5 || i === 7 || i === 9) text[o++] = DASH;
  }
  return text.toString('latin1', 0, 36);
}
