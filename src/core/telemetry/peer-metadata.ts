// Istio's peer metadata, on the wire as Istio's proxies write it, so that meshgate and Envoy peers
// (an Istio sidecar beside a meshgate gateway, or both kinds of sidecar during a migration) learn who
// the other is. The node metadata is a google.protobuf.Struct with the keys Istio's stats read
// (NAME, NAMESPACE, WORKLOAD_NAME, CLUSTER_ID, SERVICE_ACCOUNT, LABELS with app, version and the
// canonical service labels). Over HTTP it is the x-envoy-peer-metadata header (base64 of the Struct)
// beside x-envoy-peer-metadata-id (the node id); over TCP it is the payload of the metadata exchange
// frame (tcp-peer-exchange.ts): an Any holding a Struct with those two header names as keys.
// What a peer says is believed for its names and labels only: its principal and namespace come from
// its verified certificate (workload.ts, peerOfRequest).

import type { WorkloadInfo } from './workload.js';
import { decodeAny, decodeStruct, encodeAny, encodeStruct, STRUCT_TYPE_URL, structBytesAt, type StructObject, type StructValue } from '../proxy/protobuf-struct.js';

export const PEER_METADATA_HEADER = 'x-envoy-peer-metadata';
export const PEER_METADATA_ID_HEADER = 'x-envoy-peer-metadata-id';

/** What a proxy tells mesh peers about itself, made once per proxy. */
export interface PeerMetadata {
  /** The x-envoy-peer-metadata value. */
  readonly header: string;
  /** The x-envoy-peer-metadata-id value: Envoy's node id. */
  readonly id: string;
  /** The TCP metadata exchange payload: Any{Struct{x-envoy-peer-metadata, x-envoy-peer-metadata-id}}. */
  readonly exchange: Buffer;
}

const LABEL = { app: 'app', version: 'version', canonicalName: 'service.istio.io/canonical-name', canonicalRevision: 'service.istio.io/canonical-revision' } as const;

/** The node metadata Struct Istio's proxies send, from what meshgate knows of itself. */
export function nodeMetadataOf(self: WorkloadInfo): StructObject {
  const labels: Record<string, string> = {};
  if (self.app) labels[LABEL.app] = self.app;
  if (self.version) labels[LABEL.version] = self.version;
  if (self.canonicalService) labels[LABEL.canonicalName] = self.canonicalService;
  if (self.canonicalRevision) labels[LABEL.canonicalRevision] = self.canonicalRevision;
  const serviceAccount = /\/sa\/([^/]+)$/.exec(self.principal ?? '')?.[1];
  return {
    // meshgate knows no pod name: the workload stands for it, as in its node id.
    NAME: self.workload,
    NAMESPACE: self.namespace,
    WORKLOAD_NAME: self.workload,
    ...(self.cluster ? { CLUSTER_ID: self.cluster } : {}),
    ...(serviceAccount ? { SERVICE_ACCOUNT: serviceAccount } : {}),
    LABELS: labels,
  };
}

export function peerMetadataOf(self: WorkloadInfo, nodeId: string): PeerMetadata {
  const node = nodeMetadataOf(self);
  const exchange = encodeAny(STRUCT_TYPE_URL, encodeStruct({ [PEER_METADATA_HEADER]: node, [PEER_METADATA_ID_HEADER]: nodeId }));
  return Object.freeze({ header: encodeStruct(node).toString('base64'), id: nodeId, exchange });
}

/**
 * The x-envoy-peer-metadata value carried by a TCP exchange payload ('' when it holds none), so that
 * both exchanges are read by the same code; throws on bytes that are not Istio's payload.
 */
export function headerOfExchange(payload: Buffer): string {
  const any = decodeAny(payload);
  if (any.typeUrl !== STRUCT_TYPE_URL) throw new Error(`peer metadata of type ${any.typeUrl}`);
  // The node's Struct is the header's bytes already: passed on as they came, decoded (and cached)
  // where the header is.
  return structBytesAt(any.value, PEER_METADATA_HEADER)?.toString('base64') ?? '';
}

const isStruct = (v: StructValue | undefined): v is StructObject => typeof v === 'object' && v !== null && !Array.isArray(v);
const text = (v: StructValue | undefined): string | undefined => (typeof v === 'string' && v.length > 0 && v.length <= 253 ? v : undefined);

/** What a peer's x-envoy-peer-metadata says of it; nothing for a value that cannot be read. */
export function decodePeerHeader(raw: string): Partial<WorkloadInfo> {
  try {
    const bytes = Buffer.from(raw, 'base64');
    // The previous meshgate release sent base64 JSON with WorkloadInfo's names: still read, so that
    // its sidecars keep their labels in the metrics during a rolling upgrade.
    if (bytes[0] === 0x7b /* { */) return fromLegacyJson(bytes);
    const node = decodeStruct(bytes);
    const labels = isStruct(node['LABELS']) ? node['LABELS'] : {};
    const told = {
      workload: text(node['WORKLOAD_NAME']),
      namespace: text(node['NAMESPACE']),
      app: text(labels[LABEL.app]) ?? text(labels['app.kubernetes.io/name']),
      version: text(labels[LABEL.version]) ?? text(labels['app.kubernetes.io/version']),
      canonicalService: text(labels[LABEL.canonicalName]),
      canonicalRevision: text(labels[LABEL.canonicalRevision]),
      cluster: text(node['CLUSTER_ID']),
    };
    return Object.fromEntries(Object.entries(told).filter(([, v]) => v !== undefined));
  } catch {
    return {};
  }
}

function fromLegacyJson(bytes: Buffer): Partial<WorkloadInfo> {
  const v = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  const told: Record<string, string> = {};
  for (const k of ['workload', 'namespace', 'app', 'version', 'canonicalService', 'canonicalRevision', 'cluster'] as const) {
    const s = text(v?.[k] as StructValue | undefined);
    if (s !== undefined) told[k] = s;
  }
  return told;
}
