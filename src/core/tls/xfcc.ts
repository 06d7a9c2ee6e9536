// x-forwarded-client-cert as Istio's proxies write it: a gateway uses SANITIZE_SET (Hash, Cert,
// Subject, URI, DNS of the verified client certificate; whatever the client sent is removed first),
// a sidecar's inbound side APPEND_FORWARD with By, Hash, Subject, URI and DNS (no Cert).

import { createHash } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { subjectRfc2253 } from './distinguished-name.js';
import { peerIdentity } from './peer-identity.js';

export function xfccFor(peer: PeerCertificate, by?: string, opts: { readonly cert?: boolean } = {}): string | undefined {
  if (!peer || !peer.raw) return undefined;
  const parts: string[] = [];
  if (by) parts.push(`By=${by}`);
  parts.push(`Hash=${createHash('sha256').update(peer.raw).digest('hex')}`);
  if (opts.cert ?? true) {
    const pem = `-----BEGIN CERTIFICATE-----\n${peer.raw.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
    parts.push(`Cert="${encodeURIComponent(pem)}"`);
  }
  // RFC 2253 escapes `"` itself, so the quoted value needs no more escaping.
  parts.push(`Subject="${subjectRfc2253(peer.raw)}"`);
  // Envoy's field order: By, Hash, Cert, Subject, URI, then DNS.
  const id = peerIdentity(peer);
  for (const uri of id.uris) parts.push(`URI=${uri}`);
  for (const dns of id.dnsNames) parts.push(`DNS=${dns}`);
  return parts.join(';');
}

/** The DNS and URI SANs of a peer certificate, for `subjectAltNames` checks. */
export function peerSans(peer: PeerCertificate): string[] {
  return [...peerIdentity(peer).sans];
}
