// Envoy's %UPSTREAM_TRANSPORT_FAILURE_REASON%: why the connection to the upstream could not be made,
// in Envoy's words, so a `kubectl logs -c istio-proxy` line reads the same. A connect the kernel
// refused or could not route is Envoy's `delayed connect error: <errno>` (111 refused, 113 no route);
// a TLS failure is BoringSSL's error queue as Envoy writes it, `TLS_error:|<packed code>:SSL
// routines:OPENSSL_internal:<REASON>:TLS_error_end` (a certificate that did not verify, for its chain
// or its names, is CERTIFICATE_VERIFY_FAILED; an alert the server sent, its alert); TLS material the
// proxy does not have is Envoy's `Secret is not supplied by SDS`. A connect timeout has no transport
// reason in Envoy (its reset reason says it), nor has anything else here.

import { UpstreamTlsError } from '../tls/upstream-connector.js';

/** BoringSSL packs ERR_LIB_SSL (16) into the top byte of its error codes. */
const SSL_LIB = 16 << 24;
/** Its reason codes for a received TLS alert are 1000 + the alert's number. */
const ALERT_BASE = 1000;
const CERTIFICATE_VERIFY_FAILED = 125;
const WRONG_VERSION_NUMBER = 247;

/** TLS alert numbers (RFC 8446 §6 and the earlier TLS RFCs), by the name OpenSSL's reason gives them. */
const ALERTS: Readonly<Record<string, number>> = {
  CLOSE_NOTIFY: 0, UNEXPECTED_MESSAGE: 10, BAD_RECORD_MAC: 20, DECRYPTION_FAILED: 21, RECORD_OVERFLOW: 22,
  DECOMPRESSION_FAILURE: 30, HANDSHAKE_FAILURE: 40, NO_CERTIFICATE: 41, BAD_CERTIFICATE: 42, UNSUPPORTED_CERTIFICATE: 43,
  CERTIFICATE_REVOKED: 44, CERTIFICATE_EXPIRED: 45, CERTIFICATE_UNKNOWN: 46, ILLEGAL_PARAMETER: 47, UNKNOWN_CA: 48,
  ACCESS_DENIED: 49, DECODE_ERROR: 50, DECRYPT_ERROR: 51, EXPORT_RESTRICTION: 60, PROTOCOL_VERSION: 70,
  INSUFFICIENT_SECURITY: 71, INTERNAL_ERROR: 80, INAPPROPRIATE_FALLBACK: 86, USER_CANCELLED: 90, NO_RENEGOTIATION: 100,
  MISSING_EXTENSION: 109, UNSUPPORTED_EXTENSION: 110, CERTIFICATE_UNOBTAINABLE: 111, UNRECOGNIZED_NAME: 112,
  BAD_CERTIFICATE_STATUS_RESPONSE: 113, BAD_CERTIFICATE_HASH_VALUE: 114, UNKNOWN_PSK_IDENTITY: 115, CERTIFICATE_REQUIRED: 116,
  NO_APPLICATION_PROTOCOL: 120,
};

/** The reasons of UpstreamTlsError that mean the proxy had no usable TLS material of its own. */
const NO_SECRET = new Set(['no_workload_certificate', 'workload_certificate_invalid', 'credential_invalid', 'ca_certificates_unavailable', 'client_certificate_unavailable']);

const tlsError = (code: number | undefined, reason: string): string =>
  `TLS_error:|${code !== undefined ? `${code}:` : ''}SSL routines:OPENSSL_internal:${reason}:TLS_error_end`;

/** A handshake failure's OpenSSL reason (`ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE`) in BoringSSL's words. */
function handshakeReason(code: string): string | undefined {
  if (!code.startsWith('ERR_SSL_')) return undefined;
  const name = code.slice('ERR_SSL_'.length);
  const alert = /^(?:SSLV3|TLSV1|TLSV13)_ALERT_(.+)$/.exec(name)?.[1];
  if (alert !== undefined && ALERTS[alert] !== undefined) {
    // BoringSSL names TLS 1.3's certificate_required alert TLSV1_CERTIFICATE_REQUIRED.
    return tlsError(SSL_LIB + ALERT_BASE + ALERTS[alert]!, alert === 'CERTIFICATE_REQUIRED' ? 'TLSV1_CERTIFICATE_REQUIRED' : name.replace(/^TLSV13_/, 'TLSV1_'));
  }
  return tlsError(name === 'WRONG_VERSION_NUMBER' ? SSL_LIB + WRONG_VERSION_NUMBER : undefined, name);
}

/** A TLS failure's reason (UpstreamTlsError's, upstream-tls.ts's `no_workload_certificate`) in Envoy's words. */
export function tlsFailureReason(r: string): string | undefined {
  if (NO_SECRET.has(r)) return 'Secret is not supplied by SDS';
  if (r === 'hostname_mismatch' || r === 'peer_identity_mismatch' || r.startsWith('certificate_verify_failed')) return tlsError(SSL_LIB + CERTIFICATE_VERIFY_FAILED, 'CERTIFICATE_VERIFY_FAILED');
  if (r.startsWith('handshake_failed:')) return handshakeReason(r.slice('handshake_failed:'.length));
  return undefined;
}

/** The reason for a failed connection attempt (undefined when Envoy would give none). */
export function transportFailureReason(err: unknown): string | undefined {
  if (err instanceof UpstreamTlsError) return tlsFailureReason(err.reason);
  const e = err as { syscall?: string; errno?: number } | undefined;
  // The kernel's answer to the connect (refused, unreachable), its errno as Linux numbers it.
  if (e?.syscall === 'connect' && typeof e.errno === 'number') return `delayed connect error: ${Math.abs(e.errno)}`;
  return undefined;
}
