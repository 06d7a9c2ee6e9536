// A certificate's subject as an RFC 2253 string, the way Envoy writes it into
// x-forwarded-client-cert (OpenSSL's XN_FLAG_RFC2253): every attribute, the RDN sequence in reverse
// (most specific first), `+` inside a multi-valued RDN, OpenSSL's short attribute names, RFC 2253
// escaping, and bytes outside printable ASCII as `\XX`. Attributes OpenSSL has no name for appear
// as a dotted OID with the value's DER in hex (`1.2.3.4=#0C03616263`).

import { createRequire } from 'node:module';
import type forgeModule from 'node-forge';
import { derBounds } from '../pki/der.js';

type Forge = typeof forgeModule;
let forgeLoaded: Forge | undefined;
// Loaded for the first certificate whose subject has names: mesh workload certificates have none, so
// a sidecar answers their `Subject=""` without holding node-forge.
const forgeLib = (): Forge => (forgeLoaded ??= createRequire(import.meta.url)('node-forge') as Forge);

/** OpenSSL's short names of the attribute types found in certificate subjects. */
const SHORT_NAMES: Readonly<Record<string, string>> = {
  '2.5.4.3': 'CN',
  '2.5.4.4': 'SN',
  '2.5.4.5': 'serialNumber',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.9': 'street',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.12': 'title',
  '2.5.4.13': 'description',
  '2.5.4.15': 'businessCategory',
  '2.5.4.17': 'postalCode',
  '2.5.4.41': 'name',
  '2.5.4.42': 'GN',
  '2.5.4.43': 'initials',
  '2.5.4.44': 'generationQualifier',
  '2.5.4.45': 'x500UniqueIdentifier',
  '2.5.4.46': 'dnQualifier',
  '2.5.4.65': 'pseudonym',
  '2.5.4.72': 'role',
  '2.5.4.97': 'organizationIdentifier',
  '1.2.840.113549.1.9.1': 'emailAddress',
  '1.2.840.113549.1.9.2': 'unstructuredName',
  '0.9.2342.19200300.100.1.1': 'UID',
  '0.9.2342.19200300.100.1.25': 'DC',
  '1.3.6.1.4.1.311.60.2.1.1': 'jurisdictionL',
  '1.3.6.1.4.1.311.60.2.1.2': 'jurisdictionST',
  '1.3.6.1.4.1.311.60.2.1.3': 'jurisdictionC',
};

/** Bytes per character of the ASN.1 string types OpenSSL prints as text (0 = UTF-8). */
const CHAR_WIDTH: Readonly<Record<number, number>> = { 12: 0, 18: 1, 19: 1, 20: 1, 22: 1, 23: 1, 24: 1, 26: 1, 28: 4, 30: 2 };

/** The subject of a DER certificate in RFC 2253 form; '' when the certificate cannot be read. */
export function subjectRfc2253(der: Buffer): string {
  if (subjectIsEmpty(der)) return '';
  const forge = forgeLib();
  const { asn1 } = forge;
  let cert: forgeModule.asn1.Asn1;
  try {
    cert = asn1.fromDer(der.toString('binary'), { strict: false, decodeBitStrings: false } as unknown as boolean);
  } catch {
    return '';
  }
  const tbs = children(children(cert)[0]);
  // TBSCertificate: [0] version (absent in v1), serialNumber, signature, issuer, validity, subject.
  const first = tbs[0];
  const subject = tbs[first?.tagClass === asn1.Class.CONTEXT_SPECIFIC ? 5 : 4];
  if (!subject) return '';
  const rdns = children(subject).map((set) => children(set).map((atv) => attribute(forge, atv)));
  return rdns
    .reverse()
    .map((rdn) => rdn.reverse().join('+'))
    .join(',');
}

/** Whether the certificate's subject is an empty SEQUENCE; false also when the DER is not as expected. */
function subjectIsEmpty(der: Buffer): boolean {
  try {
    const tbs = derBounds(der, derBounds(der, 0).contentStart);
    // TBSCertificate: [0] version (absent in v1), serialNumber, signature, issuer, validity, subject.
    let at = tbs.contentStart;
    const skip = der[at] === 0xa0 ? 5 : 4;
    for (let i = 0; i < skip; i++) at = derBounds(der, at).end;
    return der[at] === 0x30 && der[at + 1] === 0;
  } catch {
    return false;
  }
}

function attribute(forge: Forge, atv: forgeModule.asn1.Asn1): string {
  const { asn1 } = forge;
  const [type, value] = children(atv);
  if (!type || !value || typeof type.value !== 'string') return '';
  const oid = asn1.derToOid(forge.util.createBuffer(type.value));
  const name = SHORT_NAMES[oid];
  const width = typeof value.value === 'string' ? CHAR_WIDTH[value.type] : undefined;
  if (!name || width === undefined || value.tagClass !== asn1.Class.UNIVERSAL) {
    return `${name ?? oid}=#${forge.util.bytesToHex(asn1.toDer(value).getBytes()).toUpperCase()}`;
  }
  return `${name}=${escapeValue(decode(value.value as string, width))}`;
}

/** forge hands over a BMPString already decoded, every other string as its bytes. */
function decode(value: string, width: number): string {
  if (width === 2) return value;
  const bytes = Buffer.from(value, 'binary');
  if (width === 0) return bytes.toString('utf8');
  if (width === 1) return bytes.toString('latin1');
  let out = '';
  for (let i = 0; i + 4 <= bytes.length; i += 4) {
    const cp = bytes.readUInt32BE(i);
    out += cp <= 0x10ffff ? String.fromCodePoint(cp) : '\ufffd'; // not a character: never a crash
  }
  return out;
}

/** RFC 2253 §2.4, with every byte of a non-ASCII character and every control character as `\XX`. */
function escapeValue(text: string): string {
  const chars = [...text];
  let out = '';
  chars.forEach((ch, i) => {
    const code = ch.codePointAt(0)!;
    if (code < 0x20 || code >= 0x7f) {
      for (const b of Buffer.from(ch, 'utf8')) out += `\\${b.toString(16).toUpperCase().padStart(2, '0')}`;
    } else if (',+"\\<>;'.includes(ch) || (i === 0 && (ch === '#' || ch === ' ')) || (i === chars.length - 1 && ch === ' ')) {
      out += `\\${ch}`;
    } else {
      out += ch;
    }
  });
  return out;
}

function children(node: forgeModule.asn1.Asn1 | undefined): forgeModule.asn1.Asn1[] {
  return node && Array.isArray(node.value) ? node.value : [];
}
