// Contracts of the TLS layer: where a Gateway server's certificate comes from, and what the
// listeners need to terminate or pass through TLS.

import type { ServerTlsSettings } from '../model/istio.js';

/** PEM material for one Gateway server, checked (key matches certificate, chain parses). */
export interface ServerCredential {
  readonly certPem: string;
  readonly keyPem: string;
  /** CA bundle for verifying client certificates (MUTUAL / OPTIONAL_MUTUAL). */
  readonly caPem?: string;
  /**
   * Where it came from: `file`, `acme`, `self-signed` (a stand-in while ACME has not delivered), or
   * `mesh` (the proxy's workload certificate, for ISTIO_MUTUAL).
   */
  readonly source: 'file' | 'acme' | 'self-signed' | 'mesh';
  /** `credential demo-tls (certs/demo-tls)` or `files /etc/certs/tls.crt` — for logs and `meshgate certs`. */
  readonly description: string;
  readonly subject: string;
  readonly issuer: string;
  readonly sans: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Changes whenever the material changes, so listeners know to swap their SecureContext. */
  readonly version: string;
  /**
   * The other certificates of `credentialNames` / `tlsCertificates` (Istio allows two: one RSA, one
   * ECDSA); serve them beside the primary one. `version` above covers them too.
   */
  readonly alternates?: readonly ServerCredential[];
}

export interface CredentialProblem {
  readonly credential: string;
  readonly message: string;
  /** `error`: the material is missing or refused; `warning`: it serves, but look (expired, …). Default error. */
  readonly severity?: 'error' | 'warning';
}

/**
 * Resolves and watches the certificate material Gateway servers refer to (`credentialName` under the
 * certs folder, or `serverCertificate`/`privateKey`/`caCertificates` paths). A replaced file that is
 * broken or mismatched is refused and the last good material keeps serving.
 */
export interface CredentialStore {
  forServer(tls: ServerTlsSettings): ServerCredential | undefined;
  /** Everything resolved so far, by description. */
  list(): ReadonlyArray<{ readonly name: string; readonly credential?: ServerCredential; readonly problems: readonly CredentialProblem[] }>;
  /** Fired (debounced) after watched material changed; listeners re-resolve. */
  onChange(listener: () => void): () => void;
  close(): Promise<void>;
}

/**
 * Kubernetes Secrets of one namespace, as the credential store reads them in cluster mode
 * (`credentialName` is a Secret in the gateway's own namespace, as in Istio).
 */
export interface SecretReader {
  readonly namespace: string;
  /** The Secret's type and its data decoded to text, or undefined when there is none by that name. */
  get(name: string): { readonly type: string; readonly data: Readonly<Record<string, string>>; readonly annotations?: Readonly<Record<string, string>> } | undefined;
  /** Fired after Secrets changed (debounced); readers look again. */
  onChange(listener: () => void): () => void;
}

/**
 * The same namespace's Secrets read and written directly (not from the watch's cache), for what the
 * gateway keeps there itself: ACME certificates and account keys.
 */
export interface SecretWriter {
  readonly namespace: string;
  /** `timeoutMs`: give up sooner than a write would (someone is waiting on the answer). */
  fetch(name: string, opts?: { readonly timeoutMs?: number }): Promise<{ readonly type: string; readonly data: Readonly<Record<string, string>>; readonly annotations: Readonly<Record<string, string>>; readonly resourceVersion?: string } | undefined>;
  /**
   * Creates or replaces; `onlyCreate` leaves an existing one alone and says so (`created: false`);
   * `ifResourceVersion` replaces only the version read (a read-modify-write), else `conflict: true`.
   */
  put(
    name: string,
    secret: { readonly type: string; readonly data: Readonly<Record<string, string>>; readonly annotations?: Readonly<Record<string, string>>; readonly labels?: Readonly<Record<string, string>> },
    opts?: { readonly onlyCreate?: boolean; readonly ifResourceVersion?: string },
  ): Promise<{ created: boolean; conflict?: boolean }>;
}
