// The certificate a Gateway server with `tls.mode: ISTIO_MUTUAL` terminates with: the proxy's own
// workload certificate, with the mesh trust bundle as the CA client certificates must chain to, as
// Istio's gateways serve such a server from their SDS "default" and "ROOTCA" secrets. An egress
// gateway takes its sidecars' mutual TLS this way (docs/tasks/egress-gateway.md).

import { createHash, X509Certificate } from 'node:crypto';
import type { IdentityProvider, WorkloadCertificate } from '../pki/types.js';
import { distinguishedName } from './credential-check.js';
import { subjectAltNames } from './peer-identity.js';
import type { ServerCredential } from './types.js';

const made = new WeakMap<WorkloadCertificate, ServerCredential>();

/** The workload certificate `identity` holds now as a server credential; undefined before it has one. */
export function meshServerCredential(identity: IdentityProvider | undefined): ServerCredential | undefined {
  let cert: WorkloadCertificate;
  try {
    cert = identity!.current();
  } catch {
    // No identity, or none issued yet: the server has nothing to present.
    return undefined;
  }
  let cred = made.get(cert);
  if (!cred) {
    const leaf = new X509Certificate(cert.certChainPem);
    cred = Object.freeze({
      certPem: cert.certChainPem,
      keyPem: cert.keyPem,
      caPem: cert.rootCertPem,
      source: 'mesh' as const,
      description: `workload certificate ${cert.spiffeId}`,
      // A workload certificate's subject is empty: its name is the SPIFFE URI SAN.
      subject: leaf.subject ? distinguishedName(leaf.subject) : '',
      issuer: leaf.issuer ? distinguishedName(leaf.issuer) : '',
      sans: subjectAltNames(leaf.subjectAltName).map((s) => s.value),
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
      version: createHash('sha256').update(cert.certChainPem).update('\0').update(cert.rootCertPem).digest('hex').slice(0, 16),
    });
    made.set(cert, cred);
  }
  return cred;
}
