// Which cert-manager Certificates this gateway must keep issued: those whose secretName is the
// credentialName of a Gateway server the gateway serves, each with its issuer resolved (an Issuer
// in the Certificate's namespace, or a ClusterIssuer). A pure function of one snapshot.

import { parseDuration } from '../../core/config/duration.js';
import {
  CERT_MANAGER_GROUP, DEFAULT_ECDSA_SIZE, DEFAULT_RSA_SIZE,
  type AcmeIssuerSpec, type CertificateSpec, type IssuerKind, type IssuerSpec, type KeyAlgorithm,
} from '../../core/model/cert-manager.js';
import { resourceRef, type Resource } from '../../core/model/resource.js';
import { accountKeyClash, acmeCredentialUses } from '../../core/snapshot/acme-credentials.js';
import type { Snapshot } from '../../core/snapshot/snapshot.js';

export interface ResolvedIssuer {
  readonly kind: IssuerKind;
  /** The Issuer's namespace; '' for a ClusterIssuer. */
  readonly namespace: string;
  readonly name: string;
  /** `Issuer ns/name` or `ClusterIssuer name`, for logs and meta.json. */
  readonly ref: string;
  readonly acme: AcmeIssuerSpec;
  readonly accountKey: AccountKeyLocation;
}

/**
 * Where the ACME account key lives: the Secret `privateKeySecretRef` names is, in file mode, the
 * folder `<certsDir>/<name>/` and the file its `key` (default `tls.key`), like every credential.
 */
export interface AccountKeyLocation {
  readonly secretName: string;
  readonly key: string;
  /** `<certsDir>/acme/<legacyFolder>/account.key`: where releases before privateKeySecretRef kept it; moved on first use. */
  readonly legacyFolder: string;
}

export interface WantedCertificate {
  readonly secretName: string;
  /** `Certificate ns/name`. */
  readonly ref: string;
  /** In the order written; the first is the subject's common name unless commonName says otherwise. */
  readonly dnsNames: readonly string[];
  readonly commonName: string;
  readonly key: { readonly algorithm: KeyAlgorithm; readonly size: number };
  readonly renewBeforeMs?: number;
  /** Undefined when the issuer cannot be used; `waiting` says why. */
  readonly issuer?: ResolvedIssuer;
  readonly waiting?: string;
  /** Changes whenever something that needs a new certificate changes. */
  readonly fingerprint: string;
}

export interface WantedResult {
  readonly wanted: ReadonlyMap<string, WantedCertificate>;
  /** Ambiguities worth a log line (two Certificates writing one secret). */
  readonly notes: readonly string[];
}

export function wantedCertificates(snapshot: Snapshot): WantedResult {
  const notes: string[] = [];
  const wanted = new Map<string, WantedCertificate>();
  for (const use of acmeCredentialUses(snapshot.listeners, snapshot.resources)) {
    if (use.candidates.length > 1) {
      notes.push(`credential ${use.secretName}: ${use.candidates.map(resourceRef).join(', ')} all write it; using ${resourceRef(use.certificate)}`);
    }
    wanted.set(use.secretName, describeWanted(use.certificate, snapshot.resources));
  }
  return { wanted, notes };
}

function describeWanted(cert: Resource<CertificateSpec>, resources: readonly Resource[]): WantedCertificate {
  const spec = cert.spec;
  const dnsNames = [...new Set(spec.dnsNames)];
  const algorithm: KeyAlgorithm = spec.privateKey?.algorithm ?? 'RSA';
  const size = spec.privateKey?.size ?? (algorithm === 'RSA' ? DEFAULT_RSA_SIZE : DEFAULT_ECDSA_SIZE);
  const renewBeforeMs = spec.renewBefore ? parseDuration(spec.renewBefore) : undefined;
  const { issuer, waiting } = resolveIssuer(cert, resources);
  const fingerprint = JSON.stringify([[...dnsNames].sort(), spec.commonName ?? '', algorithm, size, issuer?.ref ?? '', issuer?.acme.server ?? '']);
  return {
    secretName: spec.secretName,
    ref: resourceRef(cert),
    dnsNames,
    commonName: spec.commonName ?? dnsNames[0] ?? '',
    key: { algorithm, size },
    ...(renewBeforeMs !== undefined ? { renewBeforeMs } : {}),
    ...(issuer ? { issuer } : {}),
    ...(waiting ? { waiting } : {}),
    fingerprint,
  };
}

/** An Issuer must live in the Certificate's namespace; a ClusterIssuer is found by name alone. */
export function resolveIssuer(cert: Resource<CertificateSpec>, resources: readonly Resource[]): { issuer?: ResolvedIssuer; waiting?: string } {
  const ref = cert.spec.issuerRef;
  const kind: IssuerKind = ref.kind ?? 'Issuer';
  if (ref.group && ref.group !== CERT_MANAGER_GROUP) return { waiting: `issuer group ${ref.group} is not ${CERT_MANAGER_GROUP}` };
  const namespace = kind === 'Issuer' ? cert.metadata.namespace : '';
  const shown = kind === 'Issuer' ? `Issuer ${namespace}/${ref.name}` : `ClusterIssuer ${ref.name}`;
  const found = resources.find(
    (r) => r.kind === kind && r.metadata.name === ref.name && (kind === 'ClusterIssuer' || r.metadata.namespace === namespace),
  ) as Resource<IssuerSpec> | undefined;
  if (!found) return { waiting: `${shown} not found` };
  const acme = found.spec.acme;
  if (!acme) return { waiting: `${shown} is not an ACME issuer` };
  const clash = accountKeyClash(acme.privateKeySecretRef.name, resources);
  if (clash) return { waiting: `${shown}'s privateKeySecretRef ${acme.privateKeySecretRef.name} is also the secretName of ${resourceRef(clash)}` };
  // The certs folder is flat: issuers that name the same Secret share one account key, which only
  // means one ACME account per CA for all of them.
  const accountKey: AccountKeyLocation = {
    secretName: acme.privateKeySecretRef.name,
    key: acme.privateKeySecretRef.key || 'tls.key',
    legacyFolder: kind === 'Issuer' ? `issuer-${namespace}-${ref.name}` : `clusterissuer-${ref.name}`,
  };
  return { issuer: { kind, namespace, name: ref.name, ref: shown, acme, accountKey } };
}
