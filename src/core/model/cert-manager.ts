// Readonly shapes of the cert-manager.io/v1 resources meshgate reads (Issuer, ClusterIssuer,
// Certificate), so that a cluster's existing cert-manager manifests drive the gateway's own ACME
// client unchanged. Only the fields meshgate acts on are typed; validation reports the rest.

/** `{ name }` of a Secret; cert-manager keeps the ACME account key there, meshgate names a folder after it. */
export interface SecretKeySelector {
  readonly name: string;
  readonly key?: string;
}

/**
 * One challenge solver. Only HTTP-01 is answered (the gateway serves the token itself on its plain
 * HTTP ports); `ingress` / `gatewayHTTPRoute` say how cert-manager would route it and are accepted
 * as they are, since the gateway needs no extra routing.
 */
export interface AcmeSolver {
  readonly http01?: {
    readonly ingress?: Readonly<Record<string, unknown>>;
    readonly gatewayHTTPRoute?: Readonly<Record<string, unknown>>;
  };
  readonly dns01?: Readonly<Record<string, unknown>>;
  readonly selector?: Readonly<Record<string, unknown>>;
}

export interface AcmeIssuerSpec {
  /** The ACME directory URL, e.g. https://acme-v02.api.letsencrypt.org/directory. */
  readonly server: string;
  readonly email?: string;
  readonly privateKeySecretRef: SecretKeySelector;
  readonly solvers: readonly AcmeSolver[];
  /** Do not verify the ACME server's TLS certificate (test servers only). */
  readonly skipTLSVerify?: boolean;
  /** Base64 PEM bundle of CAs to trust for the ACME server, in addition to the system roots. */
  readonly caBundle?: string;
  readonly preferredChain?: string;
}

/** Issuer and ClusterIssuer share one spec; other issuer types (ca, selfSigned, vault) are not issued by meshgate. */
export interface IssuerSpec {
  readonly acme?: AcmeIssuerSpec;
}

export type IssuerKind = 'Issuer' | 'ClusterIssuer';

export const CERT_MANAGER_GROUP = 'cert-manager.io';

export interface IssuerRef {
  readonly name: string;
  /** Default `Issuer`: one in the Certificate's own namespace. */
  readonly kind?: IssuerKind;
  readonly group?: string;
}

export type KeyAlgorithm = 'RSA' | 'ECDSA';

export interface CertificatePrivateKey {
  /** Default RSA. */
  readonly algorithm?: KeyAlgorithm;
  /** RSA: 2048 (default), 3072, 4096. ECDSA: 256 (default), 384, 521. */
  readonly size?: number;
}

export interface CertificateSpec {
  /** The credential it produces: a Gateway server's `tls.credentialName` refers to it. */
  readonly secretName: string;
  readonly dnsNames: readonly string[];
  readonly commonName?: string;
  readonly issuerRef: IssuerRef;
  /** Go duration; ACME servers choose the lifetime themselves, so it is not requested. */
  readonly duration?: string;
  /** Go duration: renew this long before expiry instead of at two-thirds of the lifetime. */
  readonly renewBefore?: string;
  readonly privateKey?: CertificatePrivateKey;
}

export const DEFAULT_RSA_SIZE = 2048;
export const DEFAULT_ECDSA_SIZE = 256;
export const RSA_SIZES: readonly number[] = [2048, 3072, 4096];
export const ECDSA_SIZES: readonly number[] = [256, 384, 521];
