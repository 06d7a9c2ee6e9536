// Issues X.509 certificates for the demo CA, for tests (server and client certificates, expired
// ones, a second server certificate) and for the self-signed stand-in a gateway serves until ACME
// has delivered.
//
// Keys come from Node's native crypto (RSA 2048 or ECDSA P-256); node-forge only assembles the DER
// structure (names, extensions, validity). The TBSCertificate is signed with Node's `sign()` rather
// than forge's, because forge's certificate signer knows RSA only and we want ECDSA certificates too.
// The DER helpers below are exported for the mesh CA (core/pki), which assembles certificates the same way.

import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';
import { pemBlock } from '../pki/pem-chain.js';

const { asn1, pki } = forge;

export type KeyType = 'rsa' | 'ec';
export type ExtKeyUsage = 'serverAuth' | 'clientAuth';

export interface IssueOptions {
  readonly subjectCN: string;
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
  /** URI SANs, e.g. a SPIFFE identity `spiffe://cluster.local/ns/default/sa/x`. */
  readonly uris?: readonly string[];
  /** Organization (O=) of the subject, if any. */
  readonly organization?: string;
  /** Who signs: another certificate and its key, or `'self'` (the default). */
  readonly issuer?: { readonly certPem: string; readonly keyPem: string } | 'self';
  /** Lifetime in days from `notBefore`; fractions are allowed (1/24 = one hour). */
  readonly days: number;
  /** Start of validity; default five minutes ago, so a peer's slightly slow clock still accepts it. */
  readonly notBefore?: Date;
  readonly isCA?: boolean;
  readonly keyType?: KeyType;
  /** Default for a leaf: both serverAuth and clientAuth; a CA gets none. */
  readonly extKeyUsage?: readonly ExtKeyUsage[];
}

export interface IssuedCertificate {
  readonly certPem: string;
  /** PKCS#8 PEM. */
  readonly keyPem: string;
}

const OID = {
  rsaWithSha256: '1.2.840.113549.1.1.11',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
};

const CLOCK_SKEW_MS = 5 * 60_000;
const DAY_MS = 24 * 3600_000;

export function generateKey(keyType: KeyType = 'rsa'): KeyObject {
  return keyType === 'ec'
    ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey
    : generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
}

export function issueCertificate(opts: IssueOptions): IssuedCertificate {
  const key = generateKey(opts.keyType ?? 'rsa');
  const publicKey = createPublicKey(key);
  const spki = asn1.fromDer(binary(publicKey.export({ type: 'spki', format: 'der' })), { decodeBitStrings: false } as unknown as boolean);
  const ski = subjectKeyId(publicKey);

  const self = opts.issuer === undefined || opts.issuer === 'self';
  const signer = self ? { key, name: undefined, keyId: ski } : issuerOf(opts.issuer as { certPem: string; keyPem: string });

  // forge fills in the names and extensions; the key-dependent parts are given explicitly.
  const holder = pki.createCertificate();
  const subject: forge.pki.CertificateField[] = [{ name: 'commonName', value: opts.subjectCN }];
  if (opts.organization) subject.push({ name: 'organizationName', value: opts.organization });
  holder.setSubject(subject);
  holder.setExtensions(extensions(opts, ski, signer.keyId));

  const notBefore = opts.notBefore ?? new Date(Date.now() - CLOCK_SKEW_MS);
  const notAfter = new Date(notBefore.getTime() + Math.round(opts.days * DAY_MS));
  const sigAlg = algorithmIdentifier(signer.key);
  const subjectName = pki.distinguishedNameToAsn1(holder.subject);

  const tbs = seq([
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, asn1.integerToDer(2).getBytes())]),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, serialNumber()),
    sigAlg,
    signer.name ?? subjectName,
    seq([time(notBefore), time(notAfter)]),
    subjectName,
    spki,
    (pki as unknown as { certificateExtensionsToAsn1(exts: unknown[]): forge.asn1.Asn1 }).certificateExtensionsToAsn1(holder.extensions),
  ]);
  const tbsDer = Buffer.from(asn1.toDer(tbs).getBytes(), 'binary');
  const signature = sign('sha256', tbsDer, signer.key);
  const cert = seq([tbs, algorithmIdentifier(signer.key), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, '\x00' + binary(signature))]);

  const certDer = Buffer.from(asn1.toDer(cert).getBytes(), 'binary');
  return {
    certPem: pemBlock('CERTIFICATE', certDer),
    keyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

/** A self-signed certificate for `hosts`, valid for `hours`: served while ACME has not delivered. */
export function selfSignedStandIn(hosts: readonly string[], hours = 24): IssuedCertificate {
  const names = hosts.filter((h) => h !== '' && h !== '*');
  return issueCertificate({
    subjectCN: names[0] ?? 'meshgate',
    dnsNames: names.filter((h) => isIP(h) === 0),
    ipAddresses: names.filter((h) => isIP(h) !== 0),
    organization: 'meshgate self-signed stand-in',
    days: hours / 24,
    keyType: 'ec',
    extKeyUsage: ['serverAuth'],
  });
}

function extensions(opts: IssueOptions, ski: string, authorityKeyId: string): unknown[] {
  const isCA = opts.isCA ?? false;
  const rsa = (opts.keyType ?? 'rsa') === 'rsa';
  const out: unknown[] = [
    { name: 'basicConstraints', cA: isCA, critical: true },
    isCA
      ? { name: 'keyUsage', critical: true, keyCertSign: true, cRLSign: true, digitalSignature: true }
      : // keyEncipherment only means something for RSA key exchange.
        { name: 'keyUsage', critical: true, digitalSignature: true, keyEncipherment: rsa },
  ];
  const eku = opts.extKeyUsage ?? (isCA ? [] : ['serverAuth', 'clientAuth']);
  if (eku.length > 0) out.push({ name: 'extKeyUsage', serverAuth: eku.includes('serverAuth'), clientAuth: eku.includes('clientAuth') });
  const altNames = [
    ...(opts.dnsNames ?? []).map((value) => ({ type: 2, value })),
    ...(opts.ipAddresses ?? []).map((ip) => ({ type: 7, ip })),
    ...(opts.uris ?? []).map((value) => ({ type: 6, value })),
  ];
  if (altNames.length > 0) out.push({ name: 'subjectAltName', altNames });
  out.push({ name: 'subjectKeyIdentifier', value: asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, ski) });
  out.push({ name: 'authorityKeyIdentifier', keyIdentifier: authorityKeyId });
  return out;
}

/** The issuer's subject name exactly as encoded in its certificate, its key and key identifier. */
export function issuerOf(issuer: { certPem: string; keyPem: string }): { key: KeyObject; name: forge.asn1.Asn1; keyId: string } {
  const x = new X509Certificate(issuer.certPem);
  const key = createPrivateKey(issuer.keyPem);
  if (!x.checkPrivateKey(key)) throw new Error('issuer key does not match issuer certificate');
  const parsed = asn1.fromDer(binary(x.raw), { decodeBitStrings: false } as unknown as boolean);
  const tbs = (parsed.value as forge.asn1.Asn1[])[0]!;
  // TBSCertificate: [0] version, serial, signature, issuer, validity, subject, …
  const name = (tbs.value as forge.asn1.Asn1[])[5]!;
  return { key, name, keyId: subjectKeyId(x.publicKey) };
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits, as a binary string. */
export function subjectKeyId(publicKey: KeyObject): string {
  const spki = asn1.fromDer(binary(publicKey.export({ type: 'spki', format: 'der' })), { decodeBitStrings: false } as unknown as boolean);
  const bits = (spki.value as forge.asn1.Asn1[])[1]!.value as string;
  return binary(createHash('sha1').update(Buffer.from(bits.slice(1), 'binary')).digest());
}

export function algorithmIdentifier(key: KeyObject): forge.asn1.Asn1 {
  // RFC 5758: ECDSA identifiers carry no parameters; RSA's carries an explicit NULL.
  return key.asymmetricKeyType === 'ec'
    ? seq([oid(OID.ecdsaWithSha256)])
    : seq([oid(OID.rsaWithSha256), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, '')]);
}

/** 16 random bytes, positive and without a leading zero byte (RFC 5280 §4.1.2.2: at most 20 octets). */
export function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return binary(bytes);
}

export function time(d: Date): forge.asn1.Asn1 {
  // RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
  return d.getUTCFullYear() < 2050
    ? asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(d))
    : asn1.create(asn1.Class.UNIVERSAL, asn1.Type.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(d));
}

export function seq(items: forge.asn1.Asn1[]): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, items);
}

export function oid(id: string): forge.asn1.Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(id).getBytes());
}

export function binary(b: Buffer): string {
  return b.toString('binary');
}

