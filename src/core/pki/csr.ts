// PKCS#10 certificate signing requests: a proxy creates one for a fresh key (the key never leaves the
// proxy), the CA reads one back and checks its self-signature (proof the caller holds the key).
//
// Keys come from Node's native crypto; the DER structure is assembled with node-forge's ASN.1 and
// signed with Node's `sign()`, so RSA and ECDSA keys take the same path. The CSR carries no names:
// the CA writes the caller's authenticated identity and ignores whatever a CSR asks for.

import { createPublicKey, generateKeyPair, sign, verify, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { algorithmIdentifier, binary, generateKey, pemBlock, seq, type KeyType } from '../tls/issue-certificate.js';

const { asn1 } = forge;

export interface WorkloadCsr {
  readonly csrPem: string;
  /** PKCS#8 PEM. */
  readonly keyPem: string;
}

export function createWorkloadCsr(opts: { keyType?: KeyType } = {}): WorkloadCsr {
  return csrFor(generateKey(opts.keyType ?? 'rsa'));
}

/** Same as createWorkloadCsr, without blocking the event loop while an RSA key is generated. */
export async function createWorkloadCsrAsync(opts: { keyType?: KeyType } = {}): Promise<WorkloadCsr> {
  const pair = await (opts.keyType === 'ec'
    ? promisify(generateKeyPair)('ec', { namedCurve: 'prime256v1' })
    : promisify(generateKeyPair)('rsa', { modulusLength: 2048 }));
  return csrFor(pair.privateKey);
}

function csrFor(key: KeyObject): WorkloadCsr {
  const spkiDer = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const info = seq([
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, asn1.integerToDer(0).getBytes()),
    seq([]), // empty subject
    fromDer(spkiDer),
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, []), // no attributes
  ]);
  const infoDer = Buffer.from(asn1.toDer(info).getBytes(), 'binary');
  const signature = sign('sha256', infoDer, key);
  const csr = seq([info, algorithmIdentifier(key), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, '\x00' + binary(signature))]);
  return {
    csrPem: pemBlock('CERTIFICATE REQUEST', Buffer.from(asn1.toDer(csr).getBytes(), 'binary')),
    keyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

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
    const outer = tlv(der, 0);
    if (der[0] !== 0x30 || outer.end !== der.length) throw new Error('not a DER SEQUENCE');
    const infoDer = der.subarray(outer.contentStart, tlv(der, outer.contentStart).end);

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

/** Where the DER element at `offset` keeps its content and where it ends. */
function tlv(der: Buffer, offset: number): { contentStart: number; end: number } {
  const first = der[offset + 1];
  if (first === undefined) throw new Error('truncated');
  let length = first;
  let header = 2;
  if (first & 0x80) {
    const n = first & 0x7f;
    if (n === 0 || n > 4) throw new Error('unsupported length encoding');
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + (der[offset + 2 + i] ?? 0);
    header += n;
  }
  const end = offset + header + length;
  if (end > der.length) throw new Error('truncated');
  return { contentStart: offset + header, end };
}
