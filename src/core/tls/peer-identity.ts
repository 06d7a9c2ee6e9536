// The one parser of a certificate's identity: Node's subjectAltName text (`DNS:a.com, IP Address:
// 127.0.0.1, URI:spiffe://…`, values JSON-quoted when they hold commas or quotes) read into its SANs,
// and from them the peer's SPIFFE id and its authorization principal. XFCC, AuthorizationPolicy,
// rate limits by principal, Gateway subjectAltNames checks, upstream identity checks, the CA client
// and certificate tools all read certificates through here, so they agree on what a name is.

import type { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { subjectRfc2253 } from './distinguished-name.js';

export interface AltName {
  readonly type: 'DNS' | 'IP' | 'URI' | 'other';
  readonly value: string;
}

export interface PeerIdentity {
  /** URI SANs, in certificate order. */
  readonly uris: readonly string[];
  readonly dnsNames: readonly string[];
  /** Every SAN value (DNS, IP, URI, email), for `subjectAltNames` lists. */
  readonly sans: readonly string[];
  /** The first URI SAN that is a SPIFFE id. */
  readonly spiffeId?: string;
  /**
   * What AuthorizationPolicy `principals` and rate limits compare: the first URI SAN without
   * `spiffe://` (Envoy's source.principal), else undefined.
   */
  readonly principal?: string;
}

const SPIFFE = 'spiffe://';

/** Node's `subjectAltName` text as a list. A plain split on ", " would break quoted values. */
export function subjectAltNames(text: string | undefined): AltName[] {
  const out: AltName[] = [];
  if (!text) return out;
  const re = /\s*([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:,|$)/g;
  for (let m = re.exec(text); m !== null && m[0] !== ''; m = re.exec(text)) {
    const raw = m[2]!;
    let value = raw;
    if (raw.startsWith('"')) {
      try {
        value = JSON.parse(raw) as string;
      } catch {
        value = raw.slice(1, -1);
      }
    }
    const kind = m[1]!.trim();
    out.push({ type: kind === 'DNS' ? 'DNS' : kind === 'IP Address' ? 'IP' : kind === 'URI' ? 'URI' : 'other', value });
  }
  return out;
}

/** The SAN text of a peer certificate (TLS socket) or a parsed X509Certificate. */
export function altNameText(cert: X509Certificate | PeerCertificate | undefined): string | undefined {
  if (!cert) return undefined;
  if ('subjectAltName' in cert && typeof cert.subjectAltName === 'string') return cert.subjectAltName;
  return (cert as PeerCertificate).subjectaltname;
}

export function peerIdentity(cert: X509Certificate | PeerCertificate | undefined): PeerIdentity {
  return identityOfSans(subjectAltNames(altNameText(cert)));
}

export function identityOfSans(names: readonly AltName[]): PeerIdentity {
  const uris = names.filter((n) => n.type === 'URI').map((n) => n.value);
  const spiffeId = uris.find((u) => u.startsWith(SPIFFE));
  const first = uris[0];
  return {
    uris,
    dnsNames: names.filter((n) => n.type === 'DNS').map((n) => n.value),
    sans: names.map((n) => n.value),
    ...(spiffeId ? { spiffeId } : {}),
    ...(first ? { principal: first.startsWith(SPIFFE) ? first.slice(SPIFFE.length) : first } : {}),
  };
}

/**
 * Every name of a verified client certificate that Envoy's RBAC compares a principal with: each URI
 * SAN, then each DNS SAN, then the subject (RFC 2253); a rule matches when any of them does
 * (`principals`, `namespaces`, `serviceAccounts`, `trustDomains`, `source.*` conditions). A gateway's
 * clients hold certificates of any CA, with any number of names: reading only the first URI SAN
 * would let a second one dodge a DENY rule that names it.
 */
export interface PeerNames {
  /** The SPIFFE URI SANs without `spiffe://`, as principal patterns are written. */
  readonly principals: readonly string[];
  /** The other names as written (URI SANs of other schemes, DNS SANs, the subject when not empty). */
  readonly others: readonly string[];
}

export function peerNames(cert: PeerCertificate): PeerNames {
  const id = peerIdentity(cert);
  const principals: string[] = [];
  const others: string[] = [];
  for (const uri of id.uris) (uri.startsWith(SPIFFE) ? principals : others).push(uri.startsWith(SPIFFE) ? uri.slice(SPIFFE.length) : uri);
  others.push(...id.dnsNames);
  const subject = cert.raw ? subjectRfc2253(cert.raw) : '';
  if (subject !== '') others.push(subject);
  return { principals, others };
}
