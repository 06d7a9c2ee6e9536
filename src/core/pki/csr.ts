// PKCS#10 certificate signing requests, the CA's side: it reads one back and checks its self-signature
// (proof the caller holds the key). A proxy writes them in workload-csr.ts. The CSR's names are not
// used: the CA writes the caller's authenticated identity and ignores whatever a CSR asks for.

import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { binary } from '../tls/issue-certificate.js';
import { derBounds } from './der.js';

const { asn1 } = forge;

/** What the CA takes from a CSR whose self-signature checked out. */
export interface VerifiedCsr {
  readonly publicKey: KeyObject;
  /** The SubjectPublicKeyInfo exactly as the CSR encodes it. */
  readonly spkiDer: Buffer;
  /** Whether the CSR's subject has a CN (Istio's "dual use": the certificate then gets one too). */
  readonly hasCommonName: boolean;
}

const SIGNATURE_ALGORITHMS: Record<string, { hash: string; key: 'rsa' | 'ec' }> = {
  '1.2.840.113549.1.1.11': { hash: 'sha256', key: 'rsa' },
  '1.2.840.113549.1.1.12': { hash: 'sha384', key: 'rsa' },
  '1.2.840.113549.1.1.13': { hash: 'sha512', key: 'rsa' },
  '1.2.840.10045.4.3.2': { hash: 'sha256', key: 'ec' },
  '1.2.840.10045.4.3.3': { hash: 'sha384', key: 'ec' },
  '1.2.840.10045.4.3.4': { hash: 'sha512', key: 'ec' },
};
const CURVES = new Set(['prime256v1', 'secp384r1']);
const OID_COMMON_NAME = '2.5.4.3';

/** Reads one PEM CSR and checks its self-signature and key; problems come back as a message. */
export function readCsr(csrPem: string): { ok: true; csr: VerifiedCsr } | { ok: false; message: string } {
  const blocks = csrPem.match(/-----BEGIN (?:NEW )?CERTIFICATE REQUEST-----([\s\S]*?)-----END (?:NEW )?CERTIFICATE REQUEST-----/g) ?? [];
  if (blocks.length !== 1) return { ok: false, message: `expected one PEM CERTIFICATE REQUEST, found ${blocks.length}` };
  const der = Buffer.from(blocks[0]!.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  try {
    // The signed bytes are taken from the input as they are, not re-encoded.
    const outer = derBounds(der, 0);
    if (der[0] !== 0x30 || outer.end !== der.length) throw new Error('not a DER SEQUENCE');
    const infoDer = der.subarray(outer.contentStart, derBounds(der, outer.contentStart).end);

    const root = fromDer(der);
    const [info, sigAlg, sigBits] = root.value as forge.asn1.Asn1[];
    const infoParts = (info?.value ?? []) as forge.asn1.Asn1[];
    const [version, subject, spki] = infoParts;
    if (!version || !subject || !spki || !sigAlg || !sigBits || sigBits.type !== asn1.Type.BITSTRING) throw new Error('not a PKCS#10 structure');
    if (asn1.derToInteger(version.value as string) !== 0) throw new Error('unsupported CSR version');

    const algOid = asn1.derToOid(((sigAlg.value as forge.asn1.Asn1[])[0]?.value ?? '') as string);
    const alg = SIGNATURE_ALGORITHMS[algOid];
    if (!alg) return { ok: false, message: `unsupported CSR signature algorithm ${algOid}` };

    const spkiDer = Buffer.from(asn1.toDer(spki).getBytes(), 'binary');
    const publicKey = createPublicKey({ key: spkiDer, format: 'der', type: 'spki' });
    const keyProblem = unacceptableKey(publicKey);
    if (keyProblem) return { ok: false, message: keyProblem };
    if (publicKey.asymmetricKeyType !== alg.key) return { ok: false, message: `the CSR is signed with ${algOid}, which does not fit its ${publicKey.asymmetricKeyType} key` };

    const bits = sigBits.value as string;
    if (bits.charCodeAt(0) !== 0) throw new Error('signature has unused bits');
    if (!verify(alg.hash, infoDer, publicKey, Buffer.from(bits.slice(1), 'binary'))) return { ok: false, message: 'the CSR signature does not verify' };

    return { ok: true, csr: { publicKey, spkiDer, hasCommonName: hasCommonName(subject) } };
  } catch (err) {
    return { ok: false, message: `malformed CSR: ${(err as Error).message}` };
  }
}

function unacceptableKey(key: KeyObject): string | undefined {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa') return (details.modulusLength ?? 0) < 2048 ? `RSA key of ${details.modulusLength} bits; at least 2048 are required` : undefined;
  if (key.asymmetricKeyType === 'ec') return CURVES.has(details.namedCurve ?? '') ? undefined : `unsupported EC curve ${details.namedCurve}`;
  return `unsupported key type ${key.asymmetricKeyType}`;
}

function hasCommonName(name: forge.asn1.Asn1): boolean {
  for (const rdn of (name.value ?? []) as forge.asn1.Asn1[]) {
    for (const atv of (rdn.value ?? []) as forge.asn1.Asn1[]) {
      const type = (atv.value as forge.asn1.Asn1[])[0];
      if (type?.type === asn1.Type.OID && asn1.derToOid(type.value as string) === OID_COMMON_NAME) return true;
    }
  }
  return false;
}

function fromDer(der: Buffer): forge.asn1.Asn1 {
  return asn1.fromDer(binary(der), { strict: true, decodeBitStrings: false } as unknown as boolean);
}
