// The little of DER (X.690) that is read and written without an ASN.1 library: one element's
// boundaries, and one element from its tag and content. What a proxy does with certificates at run
// time needs no more (workload-csr.ts writes a CSR, distinguished-name.ts finds an empty subject),
// so a sidecar does not hold node-forge; the CA and the certificate tools use node-forge.

/** DER of one element: the tag, the length (short form below 128, else 0x80 | byte count, then the bytes), the content. */
export function derElement(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  const n = body.length;
  const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : n < 0x10000 ? [0x82, n >> 8, n & 0xff] : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...length]), body]);
}

/** Where the DER element at `offset` keeps its content and where it ends; throws when truncated. */
export function derBounds(der: Buffer, offset: number): { contentStart: number; end: number } {
  const first = der[offset + 1];
  if (first === undefined) throw new Error('truncated');
  let length = first;
  let header = 2;
  if (first & 0x80) {
    const n = first & 0x7f;
    if (n === 0 || n > 4) throw new Error('unsupported length encoding');
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + (der[offset + 2 + i] ?? 0);
    header += n;
  }
  const end = offset + header + length;
  if (end > der.length) throw new Error('truncated');
  return { contentStart: offset + header, end };
}
