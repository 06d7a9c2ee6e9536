// SPIFFE identities of the mesh: `spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>`, the
// string the CA writes into a workload certificate's URI SAN and authorization policies match (as a
// "principal", without the scheme).

import type { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { peerIdentity } from '../tls/peer-identity.js';
import type { WorkloadIdentity } from './types.js';

export const DEFAULT_TRUST_DOMAIN = 'cluster.local';

const SCHEME = 'spiffe://';
// Kubernetes names and trust domains never need more; anything else (%, /, spaces) is refused so an
// identity has exactly one spelling.
const SEGMENT = /^[A-Za-z0-9._-]+$/;

export function spiffeIdOf(id: WorkloadIdentity): string {
  return `${SCHEME}${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}

/** The identity a SPIFFE URI names, or undefined when it is not exactly the mesh's workload form. */
export function parseSpiffeId(uri: string): WorkloadIdentity | undefined {
  if (!uri.startsWith(SCHEME)) return undefined;
  const parts = uri.slice(SCHEME.length).split('/');
  if (parts.length !== 5 || parts[1] !== 'ns' || parts[3] !== 'sa') return undefined;
  const [trustDomain, , namespace, , serviceAccount] = parts as [string, string, string, string, string];
  for (const p of [trustDomain, namespace, serviceAccount]) {
    if (!SEGMENT.test(p) || p === '.' || p === '..') return undefined;
  }
  return { trustDomain, namespace, serviceAccount };
}

/**
 * Why `spiffeId` is not the workload a proxy was configured as (policies are selected by that
 * namespace, while the certificate names whom the token stands for), or undefined when it is.
 */
export function identityMismatch(spiffeId: string, configured: { readonly namespace: string; readonly serviceAccount: string }): string | undefined {
  const id = parseSpiffeId(spiffeId);
  if (id && id.namespace === configured.namespace && id.serviceAccount === configured.serviceAccount) return undefined;
  return `the workload certificate names ${spiffeId}, not namespace ${configured.namespace} and service account ${configured.serviceAccount}`;
}

/** The authorization principal: the SPIFFE id without `spiffe://`. */
export function principalOf(spiffeId: string): string {
  return spiffeId.startsWith(SCHEME) ? spiffeId.slice(SCHEME.length) : spiffeId;
}

/** The certificate's URI SANs that are SPIFFE ids, in certificate order. */
export function spiffeIdsOfCertificate(cert: X509Certificate | PeerCertificate): string[] {
  return peerIdentity(cert).uris.filter((u) => u.startsWith(SCHEME));
}
