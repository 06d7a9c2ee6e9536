// google.protobuf.Struct, Value, ListValue and Any on the wire (struct.proto, any.proto): what Istio's
// proxies exchange as peer metadata. Written with map keys sorted, as Envoy serializes them
// (deterministically); read with bounds (nesting depth), throwing on bytes that are not one, so
// that each caller decides what a peer it cannot read means.

import { bufOf, bytesField, double, fields, first, msg, str, textOf, varint } from './protobuf-wire.js';

export type StructValue = null | number | string | boolean | StructObject | readonly StructValue[];
export interface StructObject {
  readonly [key: string]: StructValue;
}

export const STRUCT_TYPE_URL = 'type.googleapis.com/google.protobuf.Struct';
/** Deeper than peer metadata goes (node → LABELS → value): past it the bytes are refused. */
const MAX_DEPTH = 8;

// Value: null_value = 1, number_value = 2, string_value = 3, bool_value = 4, struct_value = 5, list_value = 6.
function encodeValue(v: StructValue): Buffer {
  if (v === null) return Buffer.concat([varint(1 << 3), varint(0)]);
  if (typeof v === 'number') return double(2, v);
  // A oneof member is written even when empty, unlike a plain proto3 string.
  if (typeof v === 'string') return bytesField(3, Buffer.from(v, 'utf8'));
  if (typeof v === 'boolean') return Buffer.concat([varint(4 << 3), varint(v ? 1 : 0)]);
  if (Array.isArray(v)) return msg(6, ...(v as readonly StructValue[]).map((x) => msg(1, encodeValue(x))));
  return bytesField(5, encodeStruct(v as StructObject));
}

/** Struct.fields (1): a map entry per key (key = 1, value = 2), keys in sorted order. */
export function encodeStruct(s: StructObject): Buffer {
  const keys = Object.keys(s).sort();
  return Buffer.concat(keys.map((k) => msg(1, str(1, k), msg(2, encodeValue(s[k]!)))));
}

function decodeValue(buf: Buffer, depth: number): StructValue {
  if (depth > MAX_DEPTH) throw new Error('protobuf Struct nested too deep');
  const f = fields(buf);
  const n = f.get(2)?.[0];
  if (Buffer.isBuffer(n) && n.length === 8) return n.readDoubleLE(0);
  if (f.has(3)) return textOf(first(f, 3));
  if (f.has(4)) return first(f, 4) !== 0;
  if (f.has(5)) return decodeStructAt(bufOf(first(f, 5)), depth + 1);
  if (f.has(6)) return (fields(bufOf(first(f, 6))).get(1) ?? []).map((x) => decodeValue(bufOf(x), depth + 1));
  return null;
}

function decodeStructAt(buf: Buffer, depth: number): StructObject {
  if (depth > MAX_DEPTH) throw new Error('protobuf Struct nested too deep');
  const entries = new Map<string, StructValue>();
  for (const e of fields(buf).get(1) ?? []) {
    const entry = fields(bufOf(e));
    entries.set(textOf(first(entry, 1)), entry.has(2) ? decodeValue(bufOf(first(entry, 2)), depth) : null);
  }
  // fromEntries defines each key as its own property: a key `__proto__` stays a key.
  return Object.fromEntries(entries) as StructObject;
}

/** A Struct from its bytes; throws on bytes that are not one. */
export function decodeStruct(buf: Buffer): StructObject {
  return decodeStructAt(buf, 0);
}

/**
 * The bytes of the Struct held under `key` in a Struct's bytes, as they came (undefined when that key
 * holds no Struct): for passing a nested Struct on without decoding and writing it again.
 */
export function structBytesAt(buf: Buffer, key: string): Buffer | undefined {
  let found: Buffer | undefined;
  for (const e of fields(buf).get(1) ?? []) {
    const entry = fields(bufOf(e));
    if (textOf(first(entry, 1)) !== key) continue;
    const value = fields(bufOf(first(entry, 2)));
    // A map's last entry for a key is the one that counts.
    found = value.has(5) ? bufOf(first(value, 5)) : undefined;
  }
  return found;
}

/** Any{type_url = 1, value = 2}. */
export function encodeAny(typeUrl: string, value: Buffer): Buffer {
  return Buffer.concat([str(1, typeUrl), bytesField(2, value)]);
}

export function decodeAny(buf: Buffer): { readonly typeUrl: string; readonly value: Buffer } {
  const f = fields(buf);
  return { typeUrl: textOf(first(f, 1)), value: bufOf(first(f, 2)) };
}
