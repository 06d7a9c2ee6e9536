// Which callers a sidecar's inbound side takes for mesh peers (docs/concepts/mesh-security.md): a
// certificate that chains to the mesh root and names one workload of the sidecar's trust domain or
// one of its aliases. A root shared with another mesh does not make that mesh's workloads ours
// (Istio validates the peer's trust domain the same way). Reading a certificate (Node's object, its
// SANs, the XFCC hash and subject) takes tens of microseconds, so the listener does it once per
// connection, when the handshake is checked, and keeps the answer for the connection's requests.

import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { acceptsPeer, type TrustDomains } from '../core/pki/trust-domain.js';
import { peerIdentity } from '../core/tls/peer-identity.js';
import { meshXfcc } from './inbound-headers.js';

/** A verified mesh caller: its SPIFFE id, and this hop's XFCC element for it. */
export interface MeshPeer {
  readonly spiffeId: string;
  readonly xfcc: string | undefined;
}

/** The mesh caller `socket`'s certificate names, for a sidecar of identity `own`; undefined (and logged) otherwise. */
export function verifiedMeshPeer(socket: TLSSocket, own: string, tds: TrustDomains, log: Logger): MeshPeer | undefined {
  if (!socket.authorized) return undefined;
  const presented = socket.getPeerCertificate();
  // An X.509-SVID names exactly one URI SAN. Policies here read one principal, where Envoy's RBAC
  // matches any URI SAN: a second name would let its DENY rules be dodged by the first.
  const uris = presented ? peerIdentity(presented).uris : [];
  const spiffeId = uris.length === 1 ? uris[0] : undefined;
  if (spiffeId !== undefined && acceptsPeer(tds, spiffeId)) return { spiffeId, xfcc: meshXfcc(own, presented) };
  const why = uris.length > 1 ? 'the peer certificate names more than one URI SAN' : 'the peer certificate names no workload of this trust domain or its aliases';
  log.info({ remote: socket.remoteAddress, peer: uris.length > 0 ? uris.join(', ') : null, trustDomain: tds.trustDomain, trustDomainAliases: tds.aliases }, `mesh connection refused: ${why}`);
  return undefined;
}
