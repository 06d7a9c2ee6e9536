// Which callers count as mesh peers (docs/concepts/mesh-security.md): a certificate that chains to
// the mesh root and names one workload of the proxy's trust domain or one of its aliases. A root
// shared with another mesh does not make that mesh's workloads ours (Istio validates the peer's
// trust domain the same way). A sidecar's inbound side asks it of every mesh connection, a
// gateway of every connection to an ISTIO_MUTUAL server. Reading a certificate (Node's object, its
// SANs) takes tens of microseconds, so listeners ask once per connection, when the handshake is
// checked, and keep the answer for the connection's requests.

import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { acceptsPeer, type TrustDomains } from '../pki/trust-domain.js';
import { peerIdentity } from './peer-identity.js';

/** A verified mesh caller: its SPIFFE id and the certificate that names it. */
export interface MeshPeerCertificate {
  readonly spiffeId: string;
  readonly certificate: PeerCertificate;
}

/** The mesh caller `socket`'s verified certificate names, in the trust domains `tds`; undefined (and logged) otherwise. */
export function meshPeerOf(socket: TLSSocket, tds: TrustDomains, log: Logger): MeshPeerCertificate | undefined {
  if (!socket.authorized) return undefined;
  const certificate = socket.getPeerCertificate();
  // An X.509-SVID names exactly one URI SAN. Policies at a sidecar read one principal, where
  // Envoy's RBAC matches any URI SAN: a second name would let its DENY rules be dodged by the first.
  const uris = certificate ? peerIdentity(certificate).uris : [];
  const spiffeId = uris.length === 1 ? uris[0] : undefined;
  if (spiffeId !== undefined && acceptsPeer(tds, spiffeId)) return { spiffeId, certificate };
  const why = uris.length > 1 ? 'the peer certificate names more than one URI SAN' : 'the peer certificate names no workload of this trust domain or its aliases';
  log.info({ remote: socket.remoteAddress, peer: uris.length > 0 ? uris.join(', ') : null, trustDomain: tds.trustDomain, trustDomainAliases: tds.aliases }, `mesh connection refused: ${why}`);
  return undefined;
}
