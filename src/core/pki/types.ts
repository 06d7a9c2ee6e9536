// Contracts of the mesh's identity layer, shared by the certificate authority (control plane), the
// identity client (every proxy) and the mTLS connectors on both sides of a connection.

/** The three parts of a SPIFFE identity `spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>`. */
export interface WorkloadIdentity {
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
}

/** A proxy's own certificate: what it presents on every mesh connection, in both directions. */
export interface WorkloadCertificate {
  /** `spiffe://…` written into the leaf's URI SAN by the CA. */
  readonly spiffeId: string;
  /** Leaf first, then intermediates; PEM blocks concatenated. The root is not included. */
  readonly certChainPem: string;
  /** PKCS#8 PEM of the leaf's key; it never leaves the proxy. */
  readonly keyPem: string;
  /** The trust bundle: root certificate(s) every mesh peer's chain must lead to. */
  readonly rootCertPem: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/**
 * Where a proxy reads its current workload certificate. `current()` always returns the newest one;
 * connections already open keep the certificate they were made with, so a rotation drops nothing.
 */
export interface IdentityProvider {
  current(): WorkloadCertificate;
  /** Called after every rotation; returns a function that unsubscribes. */
  onRotate(listener: (cert: WorkloadCertificate) => void): () => void;
}
