// The demo's certificates, created on first use so HTTPS works out of the box:
//   <certsDir>/demo-ca/ca.crt, ca.key             a self-signed CA (10 years)
//   <certsDir>/demo-tls/tls.crt, tls.key, ca.crt  a server certificate signed by it (~1 year), laid out
//                                                 like a kubernetes.io/tls Secret: `credentialName: demo-tls`
// Existing files are kept. The server certificate is re-issued only when it could not serve: missing,
// unreadable, not signed by the CA on disk, expiring within 30 days, or not naming a requested host.
// Keys are written 0600 in 0700 folders; clients trust the demo with `--cacert certs/demo-ca/ca.crt`.

import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { sansCover, subjectAltNames } from './credential-check.js';
import { issueCertificate, type KeyType } from './issue-certificate.js';

export const DEMO_CA_CREDENTIAL = 'demo-ca';
export const DEMO_TLS_CREDENTIAL = 'demo-tls';

/** Names every demo server certificate carries, besides the hosts the caller asks for. */
const ALWAYS = ['*.example.com', 'example.com', 'localhost', '127.0.0.1'];
const RENEW_BEFORE_MS = 30 * 24 * 3600_000;

export interface DemoCertificatesOptions {
  /** Key type of newly issued certificates (default RSA, which every client speaks). */
  readonly keyType?: KeyType;
  readonly caDays?: number;
  readonly serverDays?: number;
  readonly logger?: Logger;
  readonly now?: () => Date;
}

export interface DemoCertificates {
  readonly caCertFile: string;
  readonly caKeyFile: string;
  /** The `demo-tls` credential folder. */
  readonly tlsDir: string;
  /** Names the server certificate covers. */
  readonly hosts: readonly string[];
  /** Files written by this call; empty when everything was already in place. */
  readonly created: readonly string[];
}

export function ensureDemoCertificates(certsDir: string, hosts: readonly string[], opts: DemoCertificatesOptions = {}): DemoCertificates {
  const now = opts.now?.() ?? new Date();
  const caDir = join(certsDir, DEMO_CA_CREDENTIAL);
  const tlsDir = join(certsDir, DEMO_TLS_CREDENTIAL);
  const caCertFile = join(caDir, 'ca.crt');
  const caKeyFile = join(caDir, 'ca.key');
  const names = wantedNames(hosts);
  const created: string[] = [];
  mkdirSync(certsDir, { recursive: true, mode: 0o700 });

  let ca = readPair(caCertFile, caKeyFile);
  if (!ca) {
    privateDir(caDir);
    ca = issueCertificate({ subjectCN: 'meshgate demo CA', organization: 'meshgate demo', days: opts.caDays ?? 3650, isCA: true, keyType: opts.keyType ?? 'rsa' });
    writeFiles([
      [caKeyFile, ca.keyPem, 0o600],
      [caCertFile, ca.certPem, 0o644],
    ]);
    created.push(caCertFile, caKeyFile);
    opts.logger?.info({ dir: caDir }, `created the demo CA in ${caDir}`);
  }

  const tlsCertFile = join(tlsDir, 'tls.crt');
  const tlsKeyFile = join(tlsDir, 'tls.key');
  const tlsCaFile = join(tlsDir, 'ca.crt');
  const reason = created.length > 0 ? 'the CA is new' : serverCertProblem(readPair(tlsCertFile, tlsKeyFile), ca.certPem, names, now);
  if (reason) {
    privateDir(tlsDir);
    const server = issueCertificate({
      subjectCN: names[0]!,
      dnsNames: names.filter((n) => isIP(n) === 0),
      ipAddresses: names.filter((n) => isIP(n) !== 0),
      organization: 'meshgate demo',
      issuer: ca,
      days: opts.serverDays ?? 365,
      keyType: opts.keyType ?? 'rsa',
      extKeyUsage: ['serverAuth'],
    });
    writeFiles([
      [tlsKeyFile, server.keyPem, 0o600],
      [tlsCertFile, server.certPem, 0o644],
      [tlsCaFile, ca.certPem, 0o644],
    ]);
    created.push(tlsCertFile, tlsKeyFile, tlsCaFile);
    opts.logger?.info({ dir: tlsDir, hosts: names }, `issued the demo server certificate in ${tlsDir} (${reason})`);
  } else if (!readText(tlsCaFile)) {
    writeFiles([[tlsCaFile, ca.certPem, 0o644]]);
    created.push(tlsCaFile);
  }
  return { caCertFile, caKeyFile, tlsDir, hosts: names, created };
}

function wantedNames(hosts: readonly string[]): string[] {
  const out = new Set<string>();
  for (const h of [...ALWAYS, ...hosts]) {
    // Gateway hosts may carry a namespace scope (`ns/host`); a bare `*` cannot be in a certificate.
    const name = (h.includes('/') ? h.slice(h.indexOf('/') + 1) : h).trim().toLowerCase();
    if (name && name !== '*') out.add(name);
  }
  return [...out];
}

/** Why the existing server certificate cannot stay, or undefined when it can. */
function serverCertProblem(pair: { certPem: string; keyPem: string } | undefined, caPem: string, names: readonly string[], now: Date): string | undefined {
  if (!pair) return 'none yet';
  try {
    const cert = new X509Certificate(pair.certPem);
    const ca = new X509Certificate(caPem);
    if (!cert.checkPrivateKey(createPrivateKey(pair.keyPem))) return 'its key does not match';
    if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return 'not signed by the demo CA';
    if (new Date(cert.validTo).getTime() - now.getTime() < RENEW_BEFORE_MS) return 'expiring';
    const sans = subjectAltNames(cert.subjectAltName).map((s) => s.value);
    const missing = names.filter((n) => !sansCover(sans, n));
    if (missing.length > 0) return `adding ${missing.join(', ')}`;
    return undefined;
  } catch (err) {
    return `unreadable: ${(err as Error).message}`;
  }
}

function readPair(certFile: string, keyFile: string): { certPem: string; keyPem: string } | undefined {
  const certPem = readText(certFile);
  const keyPem = readText(keyFile);
  if (!certPem || !keyPem) return undefined;
  try {
    if (!new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem))) return undefined;
  } catch {
    return undefined;
  }
  return { certPem, keyPem };
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function privateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700); // also when it existed with looser bits: it holds a private key
}

/**
 * Each file is written under a temporary name and renamed into place, keys first, so a watching
 * credential store never reads half a file (at worst a new key beside the old certificate, which it
 * refuses and re-reads a moment later).
 */
function writeFiles(files: ReadonlyArray<readonly [string, string, number]>): void {
  const staged = files.map(([file, text, mode]) => {
    const tmp = `${file}.tmp-${process.pid}`;
    writeFileSync(tmp, text, { mode });
    chmodSync(tmp, mode); // the umask may have taken bits away, never added; be exact
    return [tmp, file] as const;
  });
  for (const [tmp, file] of staged) renameSync(tmp, file);
}
