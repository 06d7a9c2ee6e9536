// A fast non-cryptographic string hash for consistent hashing: 64-bit FNV-1a computed in two 32-bit
// halves (no BigInt, so it is cheap per request), then mixed so that short, similar keys spread over
// the whole range. The result is an integer in [0, 2^53), exact as a JavaScript number.

const TWO_32 = 4294967296;

export function hash53(text: string, seed = 0): number {
  // FNV-1a 64 offset basis 0xcbf29ce484222325, split into halves; the seed perturbs the high half.
  let hi = (0xcbf29ce4 ^ seed) >>> 0;
  let lo = 0x84222325;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    // Code units above one byte go in as two bytes so that distinct strings stay distinct inputs.
    let bytes = code > 0xff ? 2 : 1;
    let value = code;
    while (bytes-- > 0) {
      lo ^= value & 0xff;
      value >>>= 8;
      // (hi·2^32 + lo) × (2^40 + 0x1b3) mod 2^64: the 2^40 term moves lo, shifted by 8, into hi.
      const product = lo * 0x1b3;
      const carry = Math.floor(product / TWO_32);
      hi = (Math.imul(hi, 0x1b3) + carry + (lo << 8)) >>> 0;
      lo = product >>> 0;
    }
  }
  // FNV's low bits avalanche poorly; two rounds of multiply-xorshift across both halves fix that.
  let a = hi;
  let b = lo;
  a = Math.imul(a ^ (a >>> 16), 0x85ebca6b);
  b = Math.imul(b ^ (b >>> 13), 0xc2b2ae35);
  a ^= b >>> 15;
  b ^= a >>> 11;
  a = Math.imul(a ^ (a >>> 13), 0x27d4eb2f);
  b = Math.imul(b ^ (b >>> 16), 0x165667b1);
  a ^= b >>> 16;
  b ^= a >>> 13;
  return ((a >>> 0) >>> 11) * TWO_32 + (b >>> 0);
}

/** A uniformly random point of the hash space, for requests that carry no hash key. */
export function randomHash(random: () => number): number {
  return Math.floor(random() * 2 ** 53);
}
