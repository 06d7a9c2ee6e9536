// PEM text: writing a block; certificate chains: splitting bundles into single certificates, and
// walking a chain (leaf first) up to one of the trust bundle's roots. Shared by the CA, which checks a plugged-in
// intermediate at load, and the identity client, which checks every answer of the CA.

import { X509Certificate } from 'node:crypto';

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** DER as a PEM block of `label` (64 base64 characters a line). */
export function pemBlock(label: string, der: Buffer): string {
  const body = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

/** Every CERTIFICATE block of `text`, each normalized to end with one newline. */
export function pemCertificates(text: string): string[] {
  return (text.match(CERT_BLOCK) ?? []).map((b) => `${b.trim()}\n`);
}

/** Parsed certificates, or the index and reason of the first block that does not parse. */
export function parseCertificates(pems: readonly string[]): { ok: true; certs: X509Certificate[] } | { ok: false; index: number; message: string } {
  const certs: X509Certificate[] = [];
  for (const [index, pem] of pems.entries()) {
    try {
      certs.push(new X509Certificate(pem));
    } catch (err) {
      return { ok: false, index, message: (err as Error).message };
    }
  }
  return { ok: true, certs };
}

export function sameCertificate(a: X509Certificate, b: X509Certificate): boolean {
  return a.raw.equals(b.raw);
}

/**
 * Follows `chain` (leaf first, each element signed by the next) until an element is signed by one of
 * `roots`. `length` is how many elements of `chain` that took; anything after them (typically the root
 * itself, repeated by the CA) is not needed. Signature, issuer name and the signer's CA-ness are checked.
 */
export function chainToRoot(chain: readonly X509Certificate[], roots: readonly X509Certificate[]): { ok: true; length: number; root: X509Certificate } | { ok: false; message: string } {
  if (chain.length === 0) return { ok: false, message: 'the chain is empty' };
  for (let i = 0; i < chain.length; i++) {
    const cert = chain[i]!;
    const root = roots.find((r) => signedBy(cert, r));
    if (root) return { ok: true, length: i + 1, root };
    const next = chain[i + 1];
    if (!next) return { ok: false, message: `certificate ${i} (${cert.subject || 'empty subject'}) is not signed by a trusted root` };
    if (!signedBy(cert, next)) return { ok: false, message: `certificate ${i} is not signed by certificate ${i + 1} of the chain` };
  }
  return { ok: false, message: 'the chain does not lead to a trusted root' };
}

function signedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  return issuer.ca && cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
}
