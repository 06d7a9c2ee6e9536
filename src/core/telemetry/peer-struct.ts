// The payload of Istio's TCP metadata exchange frame, as Envoy's metadata_exchange filter writes and
// reads it: a google.protobuf.Any holding a google.protobuf.Struct whose field
// `x-envoy-peer-metadata` is the proxy's node metadata (NAMESPACE, WORKLOAD_NAME, CLUSTER_ID, LABELS
// with app, version and the canonical service labels). An Envoy peer that cannot parse it passes the
// bytes on to its app, so it must be exactly this. Only what meshgate's WorkloadInfo holds is written
// and read; the protobuf is coded here by hand (strings, structs, varint lengths), the rest skipped.

import type { WorkloadInfo } from './workload.js';

const STRUCT_TYPE_URL = 'type.googleapis.com/google.protobuf.Struct';
const METADATA_KEY = 'x-envoy-peer-metadata';
const CANONICAL_NAME = 'service.istio.io/canonical-name';
const CANONICAL_REVISION = 'service.istio.io/canonical-revision';

type Value = string | StructValue;
interface StructValue {
  readonly [key: string]: Value;
}

// ---- writing ----

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

/** A length-delimited field (wire type 2). */
const field = (num: number, bytes: Buffer): Buffer => Buffer.concat([varint((num << 3) | 2), varint(bytes.length), bytes]);

/** google.protobuf.Value: string_value (3) or struct_value (5). */
const encodeValue = (v: Value): Buffer => (typeof v === 'string' ? field(3, Buffer.from(v, 'utf8')) : field(5, encodeStruct(v)));

/** google.protobuf.Struct: `fields` (1), map entries of key (1) and Value (2), in key order as Envoy writes them. */
function encodeStruct(s: StructValue): Buffer {
  return Buffer.concat(Object.keys(s).sort().map((k) => field(1, Buffer.concat([field(1, Buffer.from(k, 'utf8')), field(2, encodeValue(s[k]!))]))));
}

/** The frame payload announcing `self`. */
export function encodePeerStruct(self: WorkloadInfo): Buffer {
  const labels: Record<string, string> = {};
  if (self.app) labels['app'] = self.app;
  if (self.version) labels['version'] = self.version;
  if (self.canonicalService) labels[CANONICAL_NAME] = self.canonicalService;
  if (self.canonicalRevision) labels[CANONICAL_REVISION] = self.canonicalRevision;
  const node: Record<string, Value> = { NAMESPACE: self.namespace, WORKLOAD_NAME: self.workload, LABELS: labels };
  if (self.cluster) node['CLUSTER_ID'] = self.cluster;
  const data = encodeStruct({ [METADATA_KEY]: node });
  return Buffer.concat([field(1, Buffer.from(STRUCT_TYPE_URL, 'utf8')), field(2, data)]);
}

// ---- reading ----

/** The fields of one message: number → the length-delimited values (others skipped); undefined when malformed. */
function fields(buf: Buffer): Map<number, Buffer[]> | undefined {
  const out = new Map<number, Buffer[]>();
  let i = 0;
  const readVarint = (): number | undefined => {
    let n = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (i >= buf.length) return undefined;
      const b = buf[i++]!;
      n += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return n;
    }
    return undefined;
  };
  while (i < buf.length) {
    const tag = readVarint();
    if (tag === undefined) return undefined;
    const wire = tag & 7;
    if (wire === 0) {
      if (readVarint() === undefined) return undefined;
    } else if (wire === 1 || wire === 5) {
      i += wire === 1 ? 8 : 4;
    } else if (wire === 2) {
      const len = readVarint();
      if (len === undefined || i + len > buf.length) return undefined;
      const list = out.get(tag >>> 3) ?? [];
      list.push(buf.subarray(i, i + len));
      out.set(tag >>> 3, list);
      i += len;
    } else return undefined;
  }
  return i === buf.length ? out : undefined;
}

function decodeStruct(buf: Buffer, depth = 0): StructValue | undefined {
  const f = fields(buf);
  if (!f || depth > 4) return undefined;
  const out: Record<string, Value> = {};
  for (const entry of f.get(1) ?? []) {
    const e = fields(entry);
    const key = e?.get(1)?.[0]?.toString('utf8');
    const value = e?.get(2)?.[0] && fields(e.get(2)![0]!);
    if (key === undefined || !value) continue;
    const str = value.get(3)?.[0];
    const struct = value.get(5)?.[0];
    if (str) out[key] = str.toString('utf8');
    else if (struct) {
      const inner = decodeStruct(struct, depth + 1);
      if (inner) out[key] = inner;
    }
  }
  return out;
}

/** What a peer's frame payload says of it; undefined when it is not Istio's Any(Struct). */
export function decodePeerStruct(payload: Buffer): Partial<WorkloadInfo> | undefined {
  const any = fields(payload);
  if (any?.get(1)?.[0]?.toString('utf8') !== STRUCT_TYPE_URL) return undefined;
  const data = any.get(2)?.[0];
  const node = data && decodeStruct(data)?.[METADATA_KEY];
  if (!node || typeof node === 'string') return undefined;
  const text = (v: Value | undefined): string | undefined => (typeof v === 'string' ? v : undefined);
  const labels = typeof node['LABELS'] === 'object' ? node['LABELS'] : {};
  const out: Record<string, string> = {};
  const set = (k: keyof WorkloadInfo, v: string | undefined): void => void (v !== undefined && (out[k] = v));
  set('workload', text(node['WORKLOAD_NAME']));
  set('namespace', text(node['NAMESPACE']));
  set('cluster', text(node['CLUSTER_ID']));
  set('app', text(labels['app']));
  set('version', text(labels['version']));
  set('canonicalService', text(labels[CANONICAL_NAME]));
  set('canonicalRevision', text(labels[CANONICAL_REVISION]));
  return out as Partial<WorkloadInfo>;
}
