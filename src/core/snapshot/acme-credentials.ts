// Which Gateway server credentials a cert-manager Certificate produces (its secretName is the
// server's credentialName), and what would keep this gateway from obtaining them by ACME: no plain
// HTTP server on port 80 where the CA's HTTP-01 validation arrives, or an Issuer whose account key
// Secret is also a credential. It needs the merged listeners of the gateway, so it runs after
// compiling, at snapshot build.

import { problemAt, type Problem } from '../config/problem.js';
import type { CertificateSpec, IssuerSpec } from '../model/cert-manager.js';
import { compareByCreation, resourceRef, type Resource } from '../model/resource.js';
import type { Listener, ServerConfig } from '../routing/types.js';

/** RFC 8555 §8.3: the CA fetches `http://<name>/.well-known/acme-challenge/<token>`, port 80 only. */
export const HTTP01_PORT = 80;

export interface AcmeCredentialUse {
  readonly secretName: string;
  /** The Certificate that writes it: one in the namespace of a Gateway using it, else the oldest. */
  readonly certificate: Resource<CertificateSpec>;
  /** Every Certificate with this secretName, oldest first (more than one is worth a note). */
  readonly candidates: readonly Resource<CertificateSpec>[];
  /** The Gateway servers that serve it, with the field naming it. */
  readonly servers: ReadonlyArray<{ readonly server: ServerConfig; readonly field: ReadonlyArray<string | number> }>;
}

export function acmeCredentialUses(listeners: ReadonlyMap<number, Listener>, resources: readonly Resource[]): AcmeCredentialUse[] {
  const certificates = resources.filter((r) => r.kind === 'Certificate') as Resource<CertificateSpec>[];
  if (certificates.length === 0) return [];
  const servers = new Map<string, Array<{ server: ServerConfig; field: ReadonlyArray<string | number> }>>();
  for (const listener of listeners.values()) {
    for (const server of listener.servers) {
      const tls = server.tls;
      const named: Array<[string | undefined, ReadonlyArray<string | number>]> = [
        [tls?.credentialName, ['tls', 'credentialName']],
        ...(tls?.credentialNames ?? []).map((n, i): [string, ReadonlyArray<string | number>] => [n, ['tls', 'credentialNames', i]]),
      ];
      for (const [name, at] of named) {
        if (!name) continue;
        let list = servers.get(name);
        if (!list) servers.set(name, (list = []));
        list.push({ server, field: ['spec', 'servers', server.serverIndex, ...at] });
      }
    }
  }
  const uses: AcmeCredentialUse[] = [];
  for (const [secretName, using] of servers) {
    const candidates = certificates.filter((c) => c.spec.secretName === secretName).sort(compareByCreation);
    if (candidates.length === 0) continue;
    // The certs folder is flat, so one Certificate per name: prefer a Gateway's own namespace.
    const namespaces = new Set(using.map((u) => u.server.gateway.split('/')[0] ?? ''));
    const certificate = candidates.find((c) => namespaces.has(c.metadata.namespace)) ?? candidates[0]!;
    uses.push({ secretName, certificate, candidates, servers: using });
  }
  return uses;
}

/** The Certificate whose secretName is also an ACME account key's Secret, if any. */
export function accountKeyClash(secretName: string, resources: readonly Resource[]): Resource<CertificateSpec> | undefined {
  return resources.find((r) => r.kind === 'Certificate' && (r.spec as CertificateSpec).secretName === secretName) as Resource<CertificateSpec> | undefined;
}

export function acmeProblems(listeners: ReadonlyMap<number, Listener>, resources: readonly Resource[]): Problem[] {
  const problems: Problem[] = [];
  const gateways = new Map(resources.filter((r) => r.kind === 'Gateway').map((g) => [`${g.metadata.namespace}/${g.metadata.name}`, g]));
  const challengePort = listeners.get(HTTP01_PORT)?.httpRouteConfig !== undefined;
  const plainPorts = [...listeners.values()].filter((l) => l.httpRouteConfig !== undefined).map((l) => l.port);
  if (!challengePort) {
    const elsewhere = plainPorts.length > 0 ? ` (ACME servers do not try port ${plainPorts.join(', ')})` : '';
    for (const use of acmeCredentialUses(listeners, resources)) {
      for (const { server, field } of use.servers) {
        const gateway = gateways.get(server.gateway);
        if (!gateway) continue;
        problems.push(problemAt(gateway, field,
          `credential ${use.secretName} is issued by ACME (${resourceRef(use.certificate)}), but this gateway has no plain HTTP server on port ${HTTP01_PORT} ` +
          `to answer the HTTP-01 challenge${elsewhere}: every order fails and is retried; add a server with port {number: ${HTTP01_PORT}, protocol: HTTP}`,
          'warning'));
      }
    }
  }
  for (const issuer of resources.filter((r) => r.kind === 'Issuer' || r.kind === 'ClusterIssuer') as Resource<IssuerSpec>[]) {
    const secretName = issuer.spec.acme?.privateKeySecretRef?.name;
    const clash = secretName ? accountKeyClash(secretName, resources) : undefined;
    if (!clash) continue;
    problems.push(problemAt(issuer, ['spec', 'acme', 'privateKeySecretRef', 'name'],
      `${secretName} is also the secretName of ${resourceRef(clash)}: the ACME account key and that certificate would overwrite each other; its Certificates are not issued until privateKeySecretRef names a Secret of its own`,
      'warning'));
  }
  return problems;
}
