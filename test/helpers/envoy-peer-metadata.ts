// Istio's peer metadata as an Envoy proxy writes and reads it, built with protobufjs from struct.proto
// and any.proto (test/fixtures/grpc/struct-any.proto), independently of meshgate's own encoder: what
// the interop tests compare against.

import protobuf from 'protobufjs';
import { repoPath } from './route-table.js';

const root = protobuf.loadSync(repoPath('test/fixtures/grpc/struct-any.proto'));

const Struct = root.lookupType('google.protobuf.Struct');
const Any = root.lookupType('google.protobuf.Any');
export const STRUCT_TYPE_URL = 'type.googleapis.com/google.protobuf.Struct';

type Json = null | number | string | boolean | Json[] | { [k: string]: Json };

function valueOf(v: Json): Record<string, unknown> {
  if (v === null) return { nullValue: 0 };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(valueOf) } };
  return { structValue: structOf(v) };
}

/** Keys in sorted order, as Envoy's deterministic serialization writes a map. */
function structOf(o: { [k: string]: Json }): Record<string, unknown> {
  return { fields: Object.fromEntries(Object.keys(o).sort().map((k) => [k, valueOf(o[k]!)])) };
}

export function envoyStruct(o: { [k: string]: Json }): Buffer {
  return Buffer.from(Struct.encode(Struct.fromObject(structOf(o))).finish());
}

/** Envoy's TCP metadata exchange frame: magic, length, Any{Struct{x-envoy-peer-metadata, -id}}. */
export function envoyFrame(node: { [k: string]: Json }, id: string): Buffer {
  const payload = Buffer.from(Any.encode(Any.fromObject({ typeUrl: STRUCT_TYPE_URL, value: envoyStruct({ 'x-envoy-peer-metadata': node, 'x-envoy-peer-metadata-id': id }) })).finish());
  const header = Buffer.alloc(8);
  header.writeUInt32BE(0x3d230467, 0);
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

/** Reads a frame payload as Envoy does: an Any that must hold a Struct; its fields as plain JSON. */
export function readAsEnvoy(payload: Buffer): { [k: string]: Json } {
  const any = Any.toObject(Any.decode(payload), { bytes: Buffer }) as { typeUrl: string; value: Buffer };
  if (any.typeUrl !== STRUCT_TYPE_URL) throw new Error(`not a Struct: ${any.typeUrl}`);
  return readStructAsEnvoy(any.value);
}

export function readStructAsEnvoy(bytes: Buffer): { [k: string]: Json } {
  const plain = (v: Record<string, unknown>): Json => {
    if ('stringValue' in v) return v['stringValue'] as string;
    if ('numberValue' in v) return v['numberValue'] as number;
    if ('boolValue' in v) return v['boolValue'] as boolean;
    if ('structValue' in v) return struct(v['structValue'] as Record<string, unknown>);
    if ('listValue' in v) return ((v['listValue'] as { values?: Record<string, unknown>[] }).values ?? []).map(plain);
    return null;
  };
  const struct = (s: Record<string, unknown>): { [k: string]: Json } => Object.fromEntries(Object.entries((s['fields'] as Record<string, Record<string, unknown>>) ?? {}).map(([k, v]) => [k, plain(v)]));
  return struct(Struct.toObject(Struct.decode(bytes), { oneofs: false }) as Record<string, unknown>);
}

/** Envoy's frame off the front of `bytes`: its payload and what follows, or undefined while incomplete. */
export function splitFrame(bytes: Buffer): { payload: Buffer; rest: Buffer } | undefined {
  if (bytes.length < 8 || bytes.readUInt32BE(0) !== 0x3d230467) return undefined;
  const size = bytes.readUInt32BE(4);
  if (bytes.length < 8 + size) return undefined;
  return { payload: bytes.subarray(8, 8 + size), rest: bytes.subarray(8 + size) };
}
