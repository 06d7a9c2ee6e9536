// Where one Gateway server credential's material may be, and how messages name it: the candidate
// files of a `credentialName` folder, the keys of its Secret in cluster mode, or the paths of file
// settings. Pure: the credential store (credential-store.ts) reads, checks and watches what this names.

import { dirname, join, resolve } from 'node:path';
import type { ServerTlsSettings } from '../model/istio.js';

export interface Candidate {
  readonly path: string;
  /** Read from this Secret's key instead of `path`. */
  readonly secret?: { readonly name: string; readonly key: string };
  /** How messages name it: `tls.crt` in a credential folder, the configured path otherwise. */
  readonly name: string;
}

/** Where one credential's files may be, and how to talk about it. */
export interface Spec {
  readonly key: string;
  readonly name: string;
  readonly label: string;
  readonly description: string;
  readonly cert: readonly Candidate[];
  readonly privateKey: readonly Candidate[];
  readonly ca: readonly Candidate[];
  readonly missing: { readonly cert: string; readonly key: string };
  /** A credential's folder: when it is absent, that is the one thing to say. */
  readonly folder?: { readonly path: string; readonly shown: string };
  /** The same for a credential's Secret. */
  readonly secret?: { readonly name: string; readonly shown: string };
  readonly dirs: readonly string[];
  readonly invalid?: string;
}

/** Where `credentialName`s live: folders of certsDir, or (cluster mode) Secrets of one namespace. */
export interface CredentialRoots {
  /** Absolute. */
  readonly certsDir: string;
  /** certsDir as the user gave it, for messages. */
  readonly shownCertsDir: string;
  readonly secretsNamespace?: string;
}

// Kubernetes Secret names are DNS subdomains; anything with a path separator could leave certsDir.
const CREDENTIAL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function specsFor(tls: ServerTlsSettings, roots: CredentialRoots): Spec[] {
  // Istio's validator allows only one of these sources; take the first present, like Envoy would.
  const caName = (tls as { caCertCredentialName?: string }).caCertCredentialName || undefined;
  if (tls.credentialName) return [credentialSpec(roots, tls.credentialName, caName)];
  if (tls.credentialNames && tls.credentialNames.length > 0) return tls.credentialNames.slice(0, 2).map((n) => credentialSpec(roots, n, caName));
  if (tls.serverCertificate || tls.privateKey) return [fileSpec(tls.serverCertificate, tls.privateKey, tls.caCertificates)];
  if (tls.tlsCertificates && tls.tlsCertificates.length > 0) {
    return tls.tlsCertificates.slice(0, 2).map((c) => fileSpec(c.serverCertificate, c.privateKey, c.caCertificates ?? tls.caCertificates));
  }
  return [];
}

function credentialSpec(roots: CredentialRoots, name: string, caCredential: string | undefined): Spec {
  if (roots.secretsNamespace !== undefined) return secretSpec(roots.secretsNamespace, name, caCredential);
  const key = `credential:${name}|${caCredential ?? ''}`;
  const shown = `${roots.shownCertsDir}/${name}`;
  const base = { key, name, label: `credential ${name}`, description: `credential ${name} (${shown})` };
  const valid = (n: string): boolean => CREDENTIAL_NAME.test(n) && !n.includes('..');
  if (!valid(name) || (caCredential !== undefined && !valid(caCredential))) {
    const bad = valid(name) ? caCredential! : name;
    return { ...base, cert: [], privateKey: [], ca: [], dirs: [], missing: { cert: '', key: '' }, invalid: `${JSON.stringify(bad)} is not a valid credential name` };
  }
  const dir = join(roots.certsDir, name);
  const inDir = (d: string, prefix: string, files: string[]): Candidate[] => files.map((f) => ({ path: join(d, f), name: prefix + f }));
  const caDirs = caCredential ? [caCredential] : [name, `${name}-cacert`];
  return {
    ...base,
    cert: inDir(dir, '', ['tls.crt', 'cert']),
    privateKey: inDir(dir, '', ['tls.key', 'key']),
    ca: caDirs.flatMap((d) => inDir(join(roots.certsDir, d), d === name ? '' : `${d}/`, ['ca.crt', 'cacert'])),
    missing: { cert: `no tls.crt (or cert) in ${shown}`, key: `no tls.key (or key) in ${shown}` },
    folder: { path: dir, shown },
    dirs: [roots.certsDir, dir, ...caDirs.map((d) => join(roots.certsDir, d))],
  };
}

/** Istio's lookup in cluster mode: the same keys as a folder's files, in Secrets of the gateway's namespace. */
function secretSpec(namespace: string, name: string, caCredential: string | undefined): Spec {
  const shown = `Secret ${namespace}/${name}`;
  const keys = (secret: string, prefix: string, list: string[]): Candidate[] =>
    list.map((k) => ({ path: '', secret: { name: secret, key: k }, name: `${prefix}${k}` }));
  const caSecrets = caCredential ? [caCredential] : [name, `${name}-cacert`];
  return {
    key: `secret:${name}|${caCredential ?? ''}`,
    name,
    label: `credential ${name}`,
    description: `credential ${name} (${shown})`,
    cert: keys(name, '', ['tls.crt', 'cert']),
    privateKey: keys(name, '', ['tls.key', 'key']),
    ca: caSecrets.flatMap((c) => keys(c, c === name ? '' : `Secret ${namespace}/${c} `, ['ca.crt', 'cacert'])),
    missing: { cert: `no tls.crt (or cert) in ${shown}`, key: `no tls.key (or key) in ${shown}` },
    secret: { name, shown },
    dirs: [],
  };
}

function fileSpec(cert: string | undefined, key: string | undefined, ca: string | undefined): Spec {
  const abs = (p: string | undefined): string => (p ? resolve(p) : '');
  const one = (p: string | undefined): Candidate[] => (p ? [{ path: resolve(p), name: p }] : []);
  const paths = [cert, key, ca].filter((p): p is string => !!p).map((p) => resolve(p));
  return {
    key: `files:${abs(cert)}|${abs(key)}|${abs(ca)}`,
    name: cert ?? key ?? '',
    label: `files ${cert ?? key}`,
    description: `files ${[cert, key, ca].filter(Boolean).join(' ')}`,
    cert: one(cert),
    privateKey: one(key),
    ca: one(ca),
    missing: { cert: cert ? `${cert} does not exist` : 'serverCertificate is not set', key: key ? `${key} does not exist` : 'privateKey is not set' },
    dirs: [...new Set(paths.map((p) => dirname(p)))],
  };
}
