// Headers a sidecar's inbound side hands the app. Unlike the edge, the caller is another proxy of
// the mesh, so the request's x-forwarded-* and x-request-id travel on untouched; only hop-by-hop
// headers go, and x-forwarded-client-cert gets this hop appended (Istio's APPEND_FORWARD).

import type { IncomingHttpHeaders } from 'node:http';
import type { PeerCertificate } from 'node:tls';
import { dashSpelling, hopByHopFree } from '../core/proxy/headers.js';
import { xfccFor } from '../core/tls/xfcc.js';
import { PEER_METADATA_HEADER, PEER_METADATA_ID_HEADER } from '../core/telemetry/workload.js';

export interface InboundFacts {
  readonly requestId: string;
  readonly authority: string;
  /** This hop's element, present only when the caller authenticated with a mesh certificate. */
  readonly xfcc?: string;
  /** `https` when this sidecar terminated the client's own TLS (a Sidecar ingress listener's `tls`); default `http`. */
  readonly proto?: 'https';
}

/** Peer metadata is for this proxy's telemetry, not the app (Istio removes it too). */
const NOT_FOR_THE_APP: ReadonlySet<string> = new Set([PEER_METADATA_HEADER, PEER_METADATA_ID_HEADER]);

export function inboundRequestHeaders(incoming: IncomingHttpHeaders, f: InboundFacts): Record<string, string | string[]> {
  const out = hopByHopFree(incoming, NOT_FOR_THE_APP);
  out.host = f.authority;
  out['x-request-id'] = f.requestId;
  out['x-forwarded-proto'] ??= f.proto ?? 'http';
  // A plaintext caller (PERMISSIVE) could claim any identity in this header: it is dropped, not forwarded.
  const previous = incoming['x-forwarded-client-cert'];
  if (f.xfcc === undefined) delete out['x-forwarded-client-cert'];
  else out['x-forwarded-client-cert'] = typeof previous === 'string' && previous !== '' ? `${previous},${f.xfcc}` : f.xfcc;
  // `x_forwarded_client_cert` is the same header to CGI-style apps (core/proxy/headers.ts, dashSpelling).
  for (const name in out) if (name.charCodeAt(0) === 120 && dashSpelling(name) === 'x-forwarded-client-cert') delete out[name];
  return out;
}

/** `By=<this workload>;Hash=…;Subject="…";URI=<caller>` for a verified mesh peer. */
export function meshXfcc(by: string, peer: PeerCertificate): string | undefined {
  return xfccFor(peer, by, { cert: false });
}
