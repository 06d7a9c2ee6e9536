// What the certificate on disk means for the Certificate that wants it: does it still match (names,
// key type, issuer), when is it due for renewal, and is a stand-in due for replacement. Pure
// functions of the parsed certificate, so the manager's decisions can be read in one place.

import type { X509Certificate } from 'node:crypto';
import type { StoredCertificate } from './certificate-files.js';
import { renewalTime } from './renewal-policy.js';
import type { WantedCertificate } from './wanted-certificates.js';
import { peerIdentity } from '../../core/tls/peer-identity.js';

const CURVE_OF_SIZE: Readonly<Record<number, string>> = { 256: 'prime256v1', 384: 'secp384r1', 521: 'secp521r1' };

/** A certificate someone else put there, or an ACME one: anything but our own stand-in. */
export function isReal(stored: StoredCertificate | undefined): stored is StoredCertificate {
  return stored !== undefined && stored.meta?.source !== 'self-signed';
}

/** The certificate on disk is what the Certificate asks for now: ACME, same issuer and server, names and key. */
export function satisfies(w: WantedCertificate, stored: StoredCertificate): boolean {
  return w.issuer !== undefined && stored.meta?.source === 'acme' && reissueReason(w, stored) === undefined;
}

/**
 * How an ACME or hand-placed certificate differs from what its Certificate asks for now (names,
 * issuer, ACME server, key), so that the gateway orders a new one; undefined when it does not.
 */
export function reissueReason(w: WantedCertificate, stored: StoredCertificate): string | undefined {
  const names = dnsNamesOf(stored.leaf);
  if (!sameNames(names, w.dnsNames)) return `it names ${names.join(', ') || 'no DNS name'}; the Certificate asks for ${w.dnsNames.join(', ')}`;
  const meta = stored.meta;
  if (w.issuer && meta?.source === 'acme') {
    if (meta.issuer !== w.issuer.ref) return `it was issued by ${meta.issuer}; the Certificate now names ${w.issuer.ref}`;
    if (meta.server !== w.issuer.acme.server) return `it came from ${meta.server}; ${w.issuer.ref} now uses ${w.issuer.acme.server}`;
  }
  const pub = stored.leaf.publicKey;
  const details = pub.asymmetricKeyDetails;
  const matches = w.key.algorithm === 'RSA'
    ? pub.asymmetricKeyType === 'rsa' && details?.modulusLength === w.key.size
    : pub.asymmetricKeyType === 'ec' && details?.namedCurve === CURVE_OF_SIZE[w.key.size];
  if (!matches) return `its key is ${pub.asymmetricKeyType === 'rsa' ? `RSA ${details?.modulusLength}` : `${pub.asymmetricKeyType} ${details?.namedCurve ?? ''}`.trim()}; the Certificate asks for ${w.key.algorithm} ${w.key.size}`;
  return undefined;
}

export function renewAt(w: WantedCertificate, stored: StoredCertificate): number {
  return renewalTime(Date.parse(stored.leaf.validFrom), Date.parse(stored.leaf.validTo), w.renewBeforeMs);
}

/** No stand-in yet, one for other names, or one past half its life (so an outage never lets it expire). */
export function standInDue(w: WantedCertificate, stored: StoredCertificate | undefined, now: number): boolean {
  if (!stored) return true;
  if (!sameNames(dnsNamesOf(stored.leaf), w.dnsNames)) return true;
  const notBefore = Date.parse(stored.leaf.validFrom);
  const notAfter = Date.parse(stored.leaf.validTo);
  return now >= notBefore + (notAfter - notBefore) / 2;
}

export function dnsNamesOf(leaf: X509Certificate): string[] {
  return peerIdentity(leaf).dnsNames.map((n) => n.toLowerCase());
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  const x = new Set(a.map((n) => n.toLowerCase()));
  const y = new Set(b.map((n) => n.toLowerCase()));
  return x.size === y.size && [...x].every((n) => y.has(n));
}
