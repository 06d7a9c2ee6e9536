// The proto3 wire format, written and read by hand where meshgate speaks protobuf with Envoy or its
// services (ext_authz's CheckRequest, Istio's peer metadata): varints and length-delimited fields are
// all these messages need. Reading never goes past the buffer: a truncated or unknown wire type throws,
// and each caller decides what a message it cannot read means.

export function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Buffer.from(out);
}

export function bytesField(field: number, value: Buffer): Buffer {
  return Buffer.concat([varint((field << 3) | 2), varint(value.length), value]);
}

/** A string field; proto3 leaves out the empty string (a oneof member is written with bytesField). */
export function str(field: number, value: string | undefined): Buffer {
  return value ? bytesField(field, Buffer.from(value, 'utf8')) : Buffer.alloc(0);
}

export function uint(field: number, value: number | undefined): Buffer {
  return value ? Buffer.concat([varint(field << 3), varint(value)]) : Buffer.alloc(0);
}

/** A double field (wire type 1, little-endian). */
export function double(field: number, value: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(value, 0);
  return Buffer.concat([varint((field << 3) | 1), b]);
}

export function msg(field: number, ...parts: Buffer[]): Buffer {
  return bytesField(field, Buffer.concat(parts));
}

/** The fields of one message: number → the values (numbers for varints, buffers for the rest). */
export type Fields = Map<number, Array<number | Buffer>>;

/** A message's fields, in the order they came; throws on bytes that are not a message. */
export function fields(buf: Buffer): Fields {
  const out: Fields = new Map();
  let i = 0;
  const readVarint = (): number => {
    let result = 0;
    let mul = 1;
    for (;;) {
      if (i >= buf.length || mul > 2 ** 63) throw new Error('truncated varint');
      const b = buf[i++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 0x80;
    }
  };
  const take = (len: number): Buffer => {
    if (i + len > buf.length) throw new Error('truncated field');
    const value = buf.subarray(i, i + len);
    i += len;
    return value;
  };
  while (i < buf.length) {
    const tag = readVarint();
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (field === 0) throw new Error('field number 0');
    let value: number | Buffer;
    if (wire === 0) value = readVarint();
    else if (wire === 2) value = take(readVarint());
    else if (wire === 1 || wire === 5) value = take(wire === 1 ? 8 : 4);
    else throw new Error(`unsupported wire type ${wire}`);
    const list = out.get(field);
    if (list) list.push(value);
    else out.set(field, [value]);
  }
  return out;
}

export const first = (f: Fields, n: number): number | Buffer | undefined => f.get(n)?.[0];
export const bufOf = (v: number | Buffer | undefined): Buffer => (Buffer.isBuffer(v) ? v : Buffer.alloc(0));
export const numOf = (v: number | Buffer | undefined): number => (typeof v === 'number' ? v : 0);
export const textOf = (v: number | Buffer | undefined): string => bufOf(v).toString('utf8');
