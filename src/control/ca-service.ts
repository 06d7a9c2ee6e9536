// `POST /v1/certificates`: a proxy sends a CSR for its fresh key, and the CA signs it for the identity
// the caller's token authenticated. Whatever names the CSR asks for are ignored; that is the whole
// point of authenticating first (Istio's CreateCertificate works the same way).

import type { Logger } from 'pino';
import { isRecord } from '../core/config/load.js';
import type { CertificateAuthority } from '../core/pki/authority.js';
import { spiffeIdOf } from '../core/pki/spiffe.js';
import type { CertificateResponse } from '../core/sources/control-plane-wire.js';
import type { Caller } from './token-authenticator.js';

export type CertificateAnswer = { ok: true; body: CertificateResponse } | { ok: false; status: number; message: string };

export function answerCertificateRequest(ca: CertificateAuthority, caller: Caller, body: unknown, log: Logger): CertificateAnswer {
  if (!isRecord(body) || typeof body.csr !== 'string') return { ok: false, status: 400, message: 'expected {csr, validitySeconds?} with csr a PEM certificate request' };
  const ttl = body.validitySeconds;
  if (ttl !== undefined && (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl < 0)) {
    return { ok: false, status: 400, message: 'validitySeconds must be a number of seconds, 0 or more' };
  }
  const identity = { trustDomain: ca.trustDomain, namespace: caller.namespace, serviceAccount: caller.serviceAccount };
  const spiffeId = spiffeIdOf(identity);
  const signed = ca.signWorkloadCsr(body.csr, identity, ttl === undefined ? {} : { ttlSeconds: ttl });
  if (!signed.ok) {
    log.warn({ identity: spiffeId, reason: signed.message }, 'certificate request refused');
    return { ok: false, status: 400, message: signed.message };
  }
  log.info({ identity: spiffeId, validitySeconds: ttl ?? null }, 'workload certificate issued');
  return { ok: true, body: { certChain: signed.certChain } };
}
