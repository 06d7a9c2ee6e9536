// The mesh's certificate authority: signs workload certificates for authenticated callers (the SPIFFE
// identity in the URI SAN is the caller's, never what the CSR asks for) and the control plane's own
// TLS server certificate. Its files are read or created by ca-files.ts.
//
// Workload certificates follow Istio's CA: empty subject (a CN, the identity, only when the CSR has
// one), KeyUsage digitalSignature+keyEncipherment, ExtKeyUsage serverAuth+clientAuth, not a CA, 24 h
// unless asked otherwise, at most 90 days, NotBefore backdated 2 minutes, NotAfter never past the
// signer's. node-forge assembles the certificate and signs it with an RSA CA key; a plugged-in ECDSA
// key signs with Node's `sign()`, which forge cannot do.

import { sign } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';
import { algorithmIdentifier, binary, issueCertificate, issuerOf, seq, serialNumber, time } from '../tls/issue-certificate.js';
import { pemBlock } from './pem-chain.js';
import { loadOrCreateCaFiles, type CaMaterial } from './ca-files.js';
import { readCsr } from './csr.js';
import { DEFAULT_TRUST_DOMAIN, parseSpiffeId, spiffeIdOf } from './spiffe.js';
import type { WorkloadIdentity } from './types.js';

const { asn1, pki } = forge;

export const DEFAULT_WORKLOAD_TTL_SECONDS = 24 * 3600;
export const MAX_WORKLOAD_TTL_SECONDS = 90 * 24 * 3600;
const BACKDATE_MS = 2 * 60_000;
const DAY_MS = 24 * 3600_000;
/** RFC 5280's upper bound for a CN; Istio refuses a longer identity as CN, we leave the CN out. */
const MAX_CN_LENGTH = 64;

export type SignResult = { ok: true; certChain: string[] } | { ok: false; message: string };

export interface CertificateAuthority {
  readonly trustDomain: string;
  /** The trust bundle proxies verify against. */
  readonly rootCertPem: string;
  readonly source: 'self-signed' | 'plugged-in';
  readonly dir: string;
  /** Chain leaf first, root last, one PEM per element. The identity is the AUTHENTICATED one: SANs/subject asked for in the CSR are ignored. */
  signWorkloadCsr(csrPem: string, identity: WorkloadIdentity, opts?: { ttlSeconds?: number; now?: Date }): SignResult;
  /** The control plane's own TLS server certificate (serverAuth; DNS and IP SANs), chain leaf first. */
  issueServerCertificate(names: readonly string[], opts?: { days?: number }): { certChainPem: string; keyPem: string };
}

/**
 * The trust domain a CA signs for: fixed, or read at each signing (the control plane's choice of
 * flag, mesh config or default: control/served-trust-domain.ts), which must return a valid one.
 */
export type TrustDomainSource = string | (() => string);

export function loadOrCreateAuthority(dir: string, opts: { trustDomain?: TrustDomainSource; now?: () => Date } = {}): { ok: true; ca: CertificateAuthority } | { ok: false; message: string } {
  const trustDomain = opts.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  const first = invalidTrustDomain(trustDomain);
  if (first.invalid) return { ok: false, message: `invalid trust domain ${JSON.stringify(first.name)}` };
  const clock = opts.now ?? (() => new Date());
  const loaded = loadOrCreateCaFiles(dir, first.name, clock());
  if (!loaded.ok) return loaded;
  return { ok: true, ca: authorityFrom(loaded.material, dir, { trustDomain, now: clock }) };
}

/** The domain a source names now, and whether it cannot be written into a SPIFFE id. */
export function invalidTrustDomain(source: TrustDomainSource): { name: string; invalid: boolean } {
  const name = typeof source === 'function' ? source() : source;
  return { name, invalid: !parseSpiffeId(spiffeIdOf({ trustDomain: name, namespace: 'ns', serviceAccount: 'sa' })) };
}

/**
 * The CA over material read from anywhere (a folder, or Secrets in cluster mode); `where` says where
 * in logs (`certs/mesh-ca`, `Secret istio-system/istio-ca-secret`). The trust domain must be valid.
 */
export function authorityFrom(m: CaMaterial, where: string, opts: { trustDomain: TrustDomainSource; now: () => Date }): CertificateAuthority {
  const source = opts.trustDomain;
  const trustDomainNow = typeof source === 'function' ? source : () => source;
  const clock = opts.now;
  const dir = where;
  const signer = { ...issuerOf({ certPem: m.signerCertPem, keyPem: m.signerKeyPem }), notAfter: new Date(m.signerCert.validTo) };
  // forge signs RSA in JavaScript; converting the key once keeps that off every request.
  const forgeKey = m.signerKey.asymmetricKeyType === 'rsa' ? pki.privateKeyFromPem(m.signerKey.export({ type: 'pkcs1', format: 'pem' }).toString()) : undefined;
  const signTbs = (tbsDer: Buffer): Buffer => {
    if (!forgeKey) return sign('sha256', tbsDer, m.signerKey);
    const md = forge.md.sha256.create();
    md.update(binary(tbsDer));
    return Buffer.from(forgeKey.sign(md), 'binary');
  };
  const upward = [...(m.signerCertPem === m.chainRootPem ? [] : [m.signerCertPem]), ...m.intermediatePems];

  return {
    get trustDomain() {
      return trustDomainNow();
    },
    rootCertPem: m.trustBundlePem,
    source: m.source,
    dir,

    signWorkloadCsr(csrPem, identity, sopts = {}) {
      const spiffeId = spiffeIdOf(identity);
      if (!parseSpiffeId(spiffeId)) return { ok: false, message: `not a workload identity: ${spiffeId}` };
      const trustDomain = trustDomainNow();
      if (identity.trustDomain !== trustDomain) return { ok: false, message: `identity ${spiffeId} is not in this CA's trust domain ${trustDomain}` };
      const ttl = sopts.ttlSeconds === undefined || sopts.ttlSeconds <= 0 ? DEFAULT_WORKLOAD_TTL_SECONDS : sopts.ttlSeconds;
      if (!Number.isFinite(ttl)) return { ok: false, message: `invalid TTL ${sopts.ttlSeconds}` };
      if (ttl > MAX_WORKLOAD_TTL_SECONDS) return { ok: false, message: `requested TTL ${ttl}s is above the maximum of ${MAX_WORKLOAD_TTL_SECONDS}s (90 days)` };
      const csr = readCsr(csrPem);
      if (!csr.ok) return csr;
      const now = sopts.now ?? clock();
      if (now.getTime() >= signer.notAfter.getTime()) return { ok: false, message: `the CA certificate expired at ${signer.notAfter.toISOString()}` };

      const notBefore = new Date(now.getTime() - BACKDATE_MS);
      const notAfter = new Date(Math.min(now.getTime() + Math.round(ttl * 1000), signer.notAfter.getTime()));
      const cn = csr.csr.hasCommonName && spiffeId.length <= MAX_CN_LENGTH ? spiffeId : undefined;
      const holder = pki.createCertificate();
      holder.setSubject(cn ? [{ name: 'commonName', value: cn }] : []);
      holder.setExtensions([
        { name: 'basicConstraints', cA: false, critical: true },
        { name: 'keyUsage', critical: true, digitalSignature: true, keyEncipherment: true },
        { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
        // RFC 5280 §4.2.1.6: with an empty subject the SAN carries the identity and must be critical.
        { name: 'subjectAltName', critical: !cn, altNames: [{ type: 6, value: spiffeId }] },
        { name: 'authorityKeyIdentifier', keyIdentifier: signer.keyId },
      ]);
      const sigAlg = algorithmIdentifier(m.signerKey);
      const tbs = seq([
        asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, asn1.integerToDer(2).getBytes())]),
        asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, serialNumber()),
        sigAlg,
        signer.name,
        seq([time(notBefore), time(notAfter)]),
        pki.distinguishedNameToAsn1(holder.subject),
        asn1.fromDer(binary(csr.csr.spkiDer), { decodeBitStrings: false } as unknown as boolean),
        (pki as unknown as { certificateExtensionsToAsn1(exts: unknown[]): forge.asn1.Asn1 }).certificateExtensionsToAsn1(holder.extensions),
      ]);
      const tbsDer = Buffer.from(asn1.toDer(tbs).getBytes(), 'binary');
      const cert = seq([tbs, algorithmIdentifier(m.signerKey), asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, '\x00' + binary(signTbs(tbsDer)))]);
      const leafPem = pemBlock('CERTIFICATE', Buffer.from(asn1.toDer(cert).getBytes(), 'binary'));
      return { ok: true, certChain: [leafPem, ...upward, m.chainRootPem] };
    },

    issueServerCertificate(names, iopts = {}) {
      const notBefore = new Date(clock().getTime() - BACKDATE_MS);
      const left = (signer.notAfter.getTime() - notBefore.getTime()) / DAY_MS;
      const leaf = issueCertificate({
        subjectCN: names[0] ?? 'meshgate control plane',
        dnsNames: names.filter((n) => isIP(n) === 0),
        ipAddresses: names.filter((n) => isIP(n) !== 0),
        issuer: { certPem: m.signerCertPem, keyPem: m.signerKeyPem },
        days: Math.min(iopts.days ?? 365, left),
        notBefore,
        keyType: 'rsa',
        extKeyUsage: ['serverAuth'],
      });
      return { certChainPem: [leaf.certPem, ...upward].join(''), keyPem: leaf.keyPem };
    },
  };
}
