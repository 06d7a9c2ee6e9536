// Checks one set of certificate material before it may serve: every certificate of the chain parses,
// the private key parses and belongs to the leaf, and OpenSSL accepts the trio as a secure context.
// Also the certificate facts tools print (subject, issuer, SANs, validity) and the TLS rules for
// whether a certificate's names cover a host.

import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { createSecureContext } from 'node:tls';
import type { ServerCredential } from './types.js';
import { subjectAltNames } from './peer-identity.js';

export interface Material {
  readonly certPem: string;
  readonly keyPem: string;
  readonly caPem?: string;
  /** How the files are called in messages: `tls.crt` for a credential, the path for file settings. */
  readonly certName: string;
  readonly keyName: string;
  readonly caName?: string;
}

export type CheckResult = { readonly ok: true; readonly credential: ServerCredential } | { readonly ok: false; readonly problems: readonly string[] };

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

export function checkMaterial(m: Material, source: ServerCredential['source'], description: string): CheckResult {
  const chain = parseCertificates(m.certPem, m.certName);
  if (!chain.ok) return chain;
  const leaf = chain.certs[0]!;

  let key;
  try {
    key = createPrivateKey(m.keyPem);
  } catch (err) {
    return fail(`${m.keyName} is not a private key (${oneLine(err)})`);
  }
  if (key.asymmetricKeyType !== leaf.publicKey.asymmetricKeyType || !leaf.checkPrivateKey(key)) {
    return fail(`${m.keyName} does not match ${m.certName}`);
  }

  if (m.caPem !== undefined) {
    const ca = parseCertificates(m.caPem, m.caName ?? 'ca.crt');
    if (!ca.ok) return ca;
  }
  try {
    // The last word is OpenSSL's: it refuses some keys and certificates Node's parser reads.
    createSecureContext({ cert: m.certPem, key: m.keyPem, ...(m.caPem !== undefined ? { ca: m.caPem } : {}) });
  } catch (err) {
    return fail(`${m.certName}/${m.keyName} refused by TLS: ${oneLine(err)}`);
  }

  const version = createHash('sha256')
    .update(m.certPem)
    .update('\0')
    .update(m.keyPem)
    .update('\0')
    .update(m.caPem ?? '')
    .digest('hex')
    .slice(0, 16);
  return {
    ok: true,
    credential: {
      certPem: m.certPem,
      keyPem: m.keyPem,
      ...(m.caPem !== undefined ? { caPem: m.caPem } : {}),
      source,
      description,
      subject: distinguishedName(leaf.subject),
      issuer: distinguishedName(leaf.issuer),
      sans: subjectAltNames(leaf.subjectAltName).map((s) => s.value),
      notBefore: new Date(leaf.validFrom),
      notAfter: new Date(leaf.validTo),
      version,
    },
  };
}

/** Warnings about the validity period, evaluated at `now` (they change while a credential serves). */
export function validityProblems(cred: ServerCredential, now: Date): string[] {
  if (now.getTime() > cred.notAfter.getTime()) return [`certificate expired on ${cred.notAfter.toISOString()}`];
  if (now.getTime() < cred.notBefore.getTime()) return [`certificate is not valid before ${cred.notBefore.toISOString()}`];
  return [];
}

/** Every PEM certificate block in `text`, parsed; a file without one, or with a broken one, fails. */
export function parseCertificates(text: string, name: string): { ok: true; certs: X509Certificate[] } | { ok: false; problems: string[] } {
  const blocks = text.match(PEM_CERT) ?? [];
  if (blocks.length === 0) return fail(`${name} holds no PEM certificate`);
  const certs: X509Certificate[] = [];
  for (const [i, block] of blocks.entries()) {
    try {
      certs.push(new X509Certificate(block));
    } catch (err) {
      return fail(`${name}: certificate ${i + 1} of ${blocks.length} does not parse (${oneLine(err)})`);
    }
  }
  return { ok: true, certs };
}

// SANs are read by the one peer-identity parser.
export { subjectAltNames, type AltName } from './peer-identity.js';

/**
 * Whether a certificate with these SANs is valid for a server host, by the rules TLS clients apply
 * (RFC 6125): a SAN wildcard stands for exactly one leftmost label, so `*.example.com` covers
 * `a.example.com` but neither `example.com` nor `a.b.example.com`. A wildcard server host is only
 * covered by the same wildcard SAN; `*` is not checked (it answers whatever SNI arrives).
 */
export function sansCover(sans: readonly string[], host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  if (h === '*') return true;
  const names = sans.map((s) => s.toLowerCase());
  if (isIP(h) !== 0) return names.some((s) => isIP(s) !== 0 && sameIp(s, h));
  if (names.includes(h)) return true;
  if (h.startsWith('*.')) return false;
  const dot = h.indexOf('.');
  return dot > 0 && names.includes(`*${h.slice(dot)}`);
}

function sameIp(a: string, b: string): boolean {
  if (a === b) return true;
  // Node prints IPv6 SANs fully expanded (0:0:0:0:0:0:0:1); compare the 16 bytes instead.
  return isIP(a) === 6 && isIP(b) === 6 && expandIpv6(a) === expandIpv6(b);
}

function expandIpv6(ip: string): string {
  const [head = '', tail] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const fill = tail === undefined ? [] : new Array(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((g) => g.replace(/^0+(?=.)/, '')).join(':');
}

/** `CN=a\nO=b` (Node's form) → `CN=a, O=b`. */
export function distinguishedName(text: string): string {
  return text.split('\n').filter(Boolean).join(', ');
}

function fail(message: string): { ok: false; problems: string[] } {
  return { ok: false, problems: [message] };
}

function oneLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}
