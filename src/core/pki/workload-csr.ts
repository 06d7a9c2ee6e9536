// The proxy's side of PKCS#10: a certificate signing request for a fresh key, which never leaves the
// proxy. Keys and the signature come from Node's native crypto, so RSA and ECDSA take the same path.
// The CSR carries no names (the CA writes the caller's authenticated identity and ignores whatever a
// CSR asks for), which leaves a structure fixed enough to write its DER with der.ts: every sidecar
// makes one at start, and an ASN.1 library for it would stay in each sidecar's memory. The CA reads
// CSRs in csr.ts.

import { createPublicKey, generateKeyPair, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import type { KeyType } from '../tls/issue-certificate.js';
import { derElement } from './der.js';
import { pemBlock } from './pem-chain.js';

export interface WorkloadCsr {
  readonly csrPem: string;
  /** PKCS#8 PEM. */
  readonly keyPem: string;
}

const RSA = { modulusLength: 2048 } as const;
const EC = { namedCurve: 'prime256v1' } as const;

export function createWorkloadCsr(opts: { keyType?: KeyType } = {}): WorkloadCsr {
  return csrFor(opts.keyType === 'ec' ? generateKeyPairSync('ec', EC).privateKey : generateKeyPairSync('rsa', RSA).privateKey);
}

/** Same as createWorkloadCsr, without blocking the event loop while an RSA key is generated. */
export async function createWorkloadCsrAsync(opts: { keyType?: KeyType } = {}): Promise<WorkloadCsr> {
  const pair = await (opts.keyType === 'ec' ? promisify(generateKeyPair)('ec', EC) : promisify(generateKeyPair)('rsa', RSA));
  return csrFor(pair.privateKey);
}

const SEQUENCE = 0x30;
const BIT_STRING = 0x03;
// AlgorithmIdentifier, whole (RFC 5758: ECDSA's carries no parameters, RSA's an explicit NULL):
// ecdsa-with-SHA256 (1.2.840.10045.4.3.2) and sha256WithRSAEncryption (1.2.840.113549.1.1.11).
const ECDSA_SHA256 = Buffer.from('300a06082a8648ce3d040302', 'hex');
const RSA_SHA256 = Buffer.from('300d06092a864886f70d01010b0500', 'hex');
// CertificationRequestInfo's version (INTEGER 0), empty subject (SEQUENCE {}) and no attributes ([0] {}).
const VERSION_0 = Buffer.from('020100', 'hex');
const EMPTY_NAME = Buffer.from('3000', 'hex');
const NO_ATTRIBUTES = Buffer.from('a000', 'hex');

function csrFor(key: KeyObject): WorkloadCsr {
  const spkiDer = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const info = derElement(SEQUENCE, VERSION_0, EMPTY_NAME, spkiDer, NO_ATTRIBUTES);
  const signature = sign('sha256', info, key);
  const csr = derElement(SEQUENCE, info, key.asymmetricKeyType === 'ec' ? ECDSA_SHA256 : RSA_SHA256, derElement(BIT_STRING, Buffer.from([0]), signature));
  return {
    csrPem: pemBlock('CERTIFICATE REQUEST', csr),
    keyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}
