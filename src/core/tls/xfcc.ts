// x-forwarded-client-cert as Istio's proxies write it: a gateway uses SANITIZE_SET (Hash, Cert,
// Subject, URI, DNS of the verified client certificate; whatever the client sent is removed first),
// a sidecar's inbound side APPEND_FORWARD with By, Hash, Subject, URI and DNS (no Cert).

import { createHash } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';

export function xfccFor(peer: PeerCertificate, by?: string, opts: { readonly cert?: boolean } = {}): string | undefined {
  if (!peer || !peer.raw) return undefined;
  const parts: string[] = [];
  if (by) parts.push(`By=${by}`);
  parts.push(`Hash=${createHash('sha256').update(peer.raw).digest('hex')}`);
  if (opts.cert ?? true) {
    const pem = `-----BEGIN CERTIFICATE-----\n${peer.raw.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
    parts.push(`Cert="${encodeURIComponent(pem)}"`);
  }
  parts.push(`Subject="${subjectText(peer)}"`);
  // Envoy's field order: By, Hash, Cert, Subject, URI, then DNS.
  const sans = (peer.subjectaltname ?? '').split(', ').filter(Boolean);
  for (const san of sans) if (san.startsWith('URI:')) parts.push(`URI=${san.slice(4)}`);
  for (const san of sans) if (san.startsWith('DNS:')) parts.push(`DNS=${san.slice(4)}`);
  return parts.join(';');
}

/** RFC 2253-style subject, most specific first, as Envoy prints it. */
function subjectText(peer: PeerCertificate): string {
  const s = peer.subject as unknown as Record<string, string | string[]> | undefined;
  if (!s) return '';
  const order = ['CN', 'OU', 'O', 'L', 'ST', 'C'];
  const out: string[] = [];
  for (const k of order) {
    const v = s[k];
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) out.push(`${k}=${one.replace(/([,+"\\<>;])/g, '\\$1')}`);
  }
  return out.join(',').replace(/"/g, '\\"');
}

/** The DNS and URI SANs of a peer certificate, for `subjectAltNames` checks. */
export function peerSans(peer: PeerCertificate): string[] {
  return (peer.subjectaltname ?? '')
    .split(', ')
    .filter(Boolean)
    .map((s) => s.replace(/^(DNS|URI|IP Address|email):/, ''));
}
