// Which cert-manager Certificates this gateway must keep issued: those whose secretName is the
// credentialName of a Gateway server the gateway serves, each with its issuer resolved (an Issuer
// in the Certificate's namespace, or a ClusterIssuer). A pure function of one snapshot.

import { parseDuration } from '../../core/config/duration.js';
import {
  CERT_MANAGER_GROUP, DEFAULT_ECDSA_SIZE, DEFAULT_RSA_SIZE,
  type AcmeIssuerSpec, type CertificateSpec, type IssuerKind, type IssuerSpec, type KeyAlgorithm,
} from '../../core/model/cert-manager.js';
import { compareByCreation, resourceRef, type Resource } from '../../core/model/resource.js';
import type { Snapshot } from '../../core/snapshot/snapshot.js';

export interface ResolvedIssuer {
  readonly kind: IssuerKind;
  /** The Issuer's namespace; '' for a ClusterIssuer. */
  readonly namespace: string;
  readonly name: string;
  /** `Issuer ns/name` or `ClusterIssuer name`, for logs and meta.json. */
  readonly ref: string;
  readonly acme: AcmeIssuerSpec;
  /** Folder under `<certsDir>/acme/` holding this issuer's account key. */
  readonly accountFolder: string;
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
  // credentialName → namespaces of the Gateways whose servers use it.
  const used = new Map<string, Set<string>>();
  for (const listener of snapshot.listeners.values()) {
    for (const server of listener.servers) {
      const names = [server.tls?.credentialName, ...(server.tls?.credentialNames ?? [])];
      const gwNamespace = server.gateway.split('/')[0] ?? '';
      for (const n of names) {
        if (!n) continue;
        let set = used.get(n);
        if (!set) used.set(n, (set = new Set()));
        set.add(gwNamespace);
      }
    }
  }
  const certificates = snapshot.resources.filter((r) => r.kind === 'Certificate') as Resource<CertificateSpec>[];
  const wanted = new Map<string, WantedCertificate>();
  for (const [secretName, namespaces] of used) {
    const candidates = certificates.filter((c) => c.spec.secretName === secretName).sort(compareByCreation);
    if (candidates.length === 0) continue;
    // The certs folder is flat, so one Certificate per name: prefer the Gateway's own namespace.
    const chosen = candidates.find((c) => namespaces.has(c.metadata.namespace)) ?? candidates[0]!;
    if (candidates.length > 1) {
      notes.push(`credential ${secretName}: ${candidates.map(resourceRef).join(', ')} all write it; using ${resourceRef(chosen)}`);
    }
    wanted.set(secretName, describeWanted(chosen, snapshot.resources));
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
  // Dashes join the parts, as cert-manager users read them; two issuers that happen to collide
  // would share an account key, which only merges their ACME accounts.
  const accountFolder = kind === 'Issuer' ? `issuer-${namespace}-${ref.name}` : `clusterissuer-${ref.name}`;
  return { issuer: { kind, namespace, name: ref.name, ref: shown, acme, accountFolder } };
}
