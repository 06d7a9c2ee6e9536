// Node TLS server options for one Gateway server: its certificate, protocol versions and ciphers
// (Istio's defaults: TLS 1.2 minimum and its ECDHE-first cipher list), and client-certificate
// verification for MUTUAL / OPTIONAL_MUTUAL. A server that explicitly allows TLS 1.0 or 1.1 gets
// OpenSSL security level 0: OpenSSL 3's default level 1 refuses those handshakes outright (they
// sign with SHA-1), so without it the setting would have no effect.

import type { SecureContextOptions, SecureVersion } from 'node:tls';
import type { ServerTlsSettings, TlsProtocolVersion } from '../model/istio.js';
import type { ServerCredential } from './types.js';

/** Istio's server-side default cipher list (docs/reference/routing.md); TLS 1.3 suites are OpenSSL's defaults. */
export const ISTIO_DEFAULT_CIPHERS = [
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'AES256-GCM-SHA384',
  'AES128-GCM-SHA256',
].join(':');

const VERSIONS: Record<TlsProtocolVersion, SecureVersion | undefined> = {
  TLS_AUTO: undefined,
  TLSV1_0: 'TLSv1',
  TLSV1_1: 'TLSv1.1',
  TLSV1_2: 'TLSv1.2',
  TLSV1_3: 'TLSv1.3',
};

/** Versions OpenSSL 3 only negotiates at security level 0. */
const LEGACY_VERSIONS: ReadonlySet<TlsProtocolVersion> = new Set(['TLSV1_0', 'TLSV1_1']);

/** Appended to the cipher string of a server that allows TLS 1.0/1.1; scoped to that server's context. */
const LEGACY_SECURITY_LEVEL = '@SECLEVEL=0';

export interface ServerTlsOptions {
  readonly context: SecureContextOptions;
  /** Ask for a client certificate (MUTUAL, OPTIONAL_MUTUAL, ISTIO_MUTUAL). */
  readonly requestCert: boolean;
  /** Refuse the handshake without a valid client certificate (MUTUAL, ISTIO_MUTUAL). */
  readonly rejectUnauthorized: boolean;
}

export function serverTlsOptions(tls: ServerTlsSettings, cred: ServerCredential): ServerTlsOptions {
  const mode = tls.mode ?? 'PASSTHROUGH';
  // ISTIO_MUTUAL: the credential is the workload certificate and its CA the mesh trust bundle.
  const mutual = mode === 'MUTUAL' || mode === 'OPTIONAL_MUTUAL' || mode === 'ISTIO_MUTUAL';
  const context: SecureContextOptions = {
    // credentialNames may give an RSA and an ECDSA certificate: OpenSSL serves whichever the
    // client's signature algorithms prefer.
    cert: [cred.certPem, ...(cred.alternates ?? []).map((a) => a.certPem)],
    key: [cred.keyPem, ...(cred.alternates ?? []).map((a) => a.keyPem)],
    minVersion: VERSIONS[tls.minProtocolVersion ?? 'TLSV1_2'] ?? 'TLSv1.2',
    ...(tls.maxProtocolVersion && VERSIONS[tls.maxProtocolVersion] ? { maxVersion: VERSIONS[tls.maxProtocolVersion] } : {}),
    ciphers: (tls.cipherSuites && tls.cipherSuites.length > 0 ? tls.cipherSuites.join(':') : ISTIO_DEFAULT_CIPHERS) + (allowsLegacyTls(tls) ? `:${LEGACY_SECURITY_LEVEL}` : ''),
    honorCipherOrder: true,
    ...(mutual && cred.caPem ? { ca: cred.caPem } : {}),
  };
  return { context, requestCert: mutual, rejectUnauthorized: mode === 'MUTUAL' || mode === 'ISTIO_MUTUAL' };
}

/** `minProtocolVersion` TLSV1_0 or TLSV1_1 (the validator warns about such servers). */
function allowsLegacyTls(tls: Pick<ServerTlsSettings, 'minProtocolVersion'>): boolean {
  return tls.minProtocolVersion !== undefined && LEGACY_VERSIONS.has(tls.minProtocolVersion);
}
