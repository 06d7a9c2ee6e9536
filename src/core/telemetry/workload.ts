// Who a proxy, its peer or an endpoint is, in the words Istio's standard metrics and trace tags use:
// workload name, namespace, principal, app, version, canonical service/revision, cluster. Proxies of
// the mesh tell each other who they are in the `x-envoy-peer-metadata` request header (Istio's HTTP
// metadata exchange), sent only to mesh peers over
// mutual TLS and believed only from them. Its wire format, Istio's own, is peer-metadata.ts.

import type { IncomingHttpHeaders } from 'node:http';
import type { Endpoint } from '../registry/types.js';
import { decodePeerHeader, PEER_METADATA_HEADER } from './peer-metadata.js';

export { PEER_METADATA_HEADER, PEER_METADATA_ID_HEADER } from './peer-metadata.js';

export interface WorkloadInfo {
  readonly workload: string;
  readonly namespace: string;
  /** Full SPIFFE URI of its certificate, when it has one. */
  readonly principal?: string;
  readonly app?: string;
  readonly version?: string;
  readonly canonicalService?: string;
  readonly canonicalRevision?: string;
  /** Istio's cluster ID (`Kubernetes` unless configured). */
  readonly cluster?: string;
}

export const DEFAULT_CLUSTER_ID = 'Kubernetes';
export const TRUST_DOMAIN = 'cluster.local';

type Labels = Readonly<Record<string, string>>;

/**
 * A workload's name from its labels, the same rule on every side so that a client's
 * destination_workload and a server's own name agree: `app-version` (a Deployment per version, as
 * Istio's samples name them), `app`, or the fallback (a pod or service account name).
 */
export function workloadNameOf(labels: Labels, fallback: string): string {
  const app = labels['app'] ?? labels['app.kubernetes.io/name'];
  const version = labels['version'] ?? labels['app.kubernetes.io/version'];
  if (app && version) return `${app}-${version}`;
  return app ?? fallback;
}

/** Istio's canonical service and revision labels, with their fallbacks (revision `latest`). */
export function canonicalOf(labels: Labels, workload: string): { service: string; revision: string } {
  return {
    service: labels['service.istio.io/canonical-name'] ?? labels['app.kubernetes.io/name'] ?? labels['app'] ?? workload,
    revision: labels['service.istio.io/canonical-revision'] ?? labels['app.kubernetes.io/version'] ?? labels['version'] ?? 'latest',
  };
}

export function spiffeOf(namespace: string, serviceAccount: string): string {
  return `spiffe://${TRUST_DOMAIN}/ns/${namespace}/sa/${serviceAccount}`;
}

/** A proxy's own description, from what its role knows (namespace, service account, labels). */
export function describeWorkload(o: { namespace: string; labels: Labels; serviceAccount?: string; workload?: string; principal?: string; cluster?: string }): WorkloadInfo {
  const workload = o.workload ?? workloadNameOf(o.labels, o.serviceAccount ?? 'unknown');
  const canonical = canonicalOf(o.labels, workload);
  const principal = o.principal ?? (o.serviceAccount ? spiffeOf(o.namespace, o.serviceAccount) : undefined);
  return Object.freeze({
    workload,
    namespace: o.namespace,
    ...(principal ? { principal } : {}),
    ...(o.labels['app'] ? { app: o.labels['app'] } : {}),
    ...(o.labels['version'] ? { version: o.labels['version'] } : {}),
    canonicalService: canonical.service,
    canonicalRevision: canonical.revision,
    cluster: o.cluster ?? DEFAULT_CLUSTER_ID,
  });
}

/** Envoy's node id, as Istio sets it: `<type>~<ip>~<pod>.<namespace>~<namespace>.svc.cluster.local`. */
export function nodeIdOf(role: 'gateway' | 'sidecar', self: WorkloadInfo): string {
  return `${role === 'gateway' ? 'router' : 'sidecar'}~127.0.0.1~${self.workload}.${self.namespace}~${self.namespace}.svc.cluster.local`;
}

const endpointCache = new WeakMap<Endpoint, WorkloadInfo>();

/** The workload behind an endpoint, from its labels (what a client knows of its destination). */
export function workloadOfEndpoint(e: Endpoint): WorkloadInfo {
  let w = endpointCache.get(e);
  if (!w) {
    w = describeWorkload({
      namespace: e.namespace,
      labels: e.labels,
      ...(e.serviceAccount ? { serviceAccount: e.serviceAccount } : {}),
      // Only a sidecar presents a certificate; a plain endpoint has no principal.
      ...(e.meshTls ? {} : { principal: '' }),
    });
    endpointCache.set(e, w);
  }
  return w;
}

/**
 * What a server learns of its client: the principal from the verified certificate (never from a
 * header), the rest from the peer metadata when the caller is a mesh peer. Plaintext callers are unknown.
 */
export function peerOfRequest(headers: IncomingHttpHeaders, principal: string | undefined): WorkloadInfo | undefined {
  if (!principal) return undefined;
  const raw = headers[PEER_METADATA_HEADER];
  // The peer of the last request first: a sidecar's requests come from a few peers, and comparing the
  // header's text is cheaper than building the cache's key from it and hashing that, which took about
  // 0.6 % of a sidecar's CPU per request (docs/benchmarks.md, fifth round).
  if (lastPeer && lastPeer.principal === principal && lastPeer.raw === raw) return lastPeer.peer;
  // A peer sends the same metadata on every request: decoded once per (principal, value), as Envoy
  // keeps it per connection. The cache is bounded; past its size it starts over.
  const key = typeof raw === 'string' && raw.length < MAX_METADATA ? `${principal}\n${raw}` : principal;
  let peer = peerCache.get(key);
  if (!peer) {
    peer = Object.freeze(decodePeer(raw, principal));
    if (peerCache.size >= PEER_CACHE_SIZE) peerCache.clear();
    peerCache.set(key, peer);
  }
  if (typeof raw !== 'object') lastPeer = { principal, raw, peer };
  return peer;
}

let lastPeer: { readonly principal: string; readonly raw: string | undefined; readonly peer: WorkloadInfo } | undefined;

const PEER_CACHE_SIZE = 256;
/** Longer values are not peer metadata a proxy sends, and are ignored (an Istio sidecar's, with its pod's labels, is a few hundred bytes). */
const MAX_METADATA = 16 * 1024;
const peerCache = new Map<string, WorkloadInfo>();

/**
 * A mesh peer as its certificate alone names it (no peer metadata): what the metrics use once their
 * series cap is reached, so that a peer sending new metadata on every request names no new series.
 */
export function provenPeer(peer: WorkloadInfo): WorkloadInfo {
  return peer.principal ? decodePeer(undefined, peer.principal) : peer;
}

function decodePeer(raw: string | string[] | undefined, principal: string): WorkloadInfo {
  // A value that cannot be read says nothing: only the principal is known.
  const told = typeof raw === 'string' && raw.length < MAX_METADATA ? decodePeerHeader(raw) : {};
  const m = /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(principal);
  const workload = told.workload ?? m?.[2] ?? 'unknown';
  const { app, version, canonicalService, canonicalRevision, cluster } = told;
  return {
    workload,
    // The namespace is the certificate's: a peer cannot claim another one.
    namespace: m?.[1] ?? told.namespace ?? 'unknown',
    principal,
    ...(app ? { app } : {}),
    ...(version ? { version } : {}),
    ...(canonicalService ? { canonicalService } : {}),
    ...(canonicalRevision ? { canonicalRevision } : {}),
    ...(cluster ? { cluster } : {}),
  };
}
