// The on-disk form of one managed credential: `<certsDir>/<secretName>/tls.crt` (full chain, leaf
// first), `tls.key` (0600) and `meta.json`. They change together in one step, the way Kubernetes
// updates a mounted Secret: a new hidden `..<stamp>` folder holds the files, the `..data` symlink
// is renamed onto it, and the visible names are symlinks through `..data`. A reader therefore never
// sees a new certificate with an old key, whichever file it opens first.

import { X509Certificate, randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { accountKey, type AccountKey } from './acme-order.js';
import type { AccountKeyLocation } from './wanted-certificates.js';

export type CertificateSource = 'acme' | 'self-signed';

export interface CertificateMeta {
  readonly source: CertificateSource;
  /** `Issuer ns/name`, `ClusterIssuer name`, or `self-signed`. */
  readonly issuer: string;
  /** The ACME directory it came from (absent for a stand-in). */
  readonly server?: string;
  readonly notAfter: string;
  /** The last failed attempt to obtain or renew it, when, and when the next is due; cleared by the next success. */
  readonly lastError?: string;
  readonly lastErrorAt?: string;
  readonly nextAttemptAt?: string;
  /**
   * The gateway process that wrote this record, the one ordering: its pod's name in a cluster (the
   * holder of the ACME Lease), else its host's name.
   */
  readonly orderer?: string;
}

/** A failed attempt as meta.json records it, so `meshgate certs` can show it without the gateway. */
export type FailureRecord = Pick<CertificateMeta, 'lastError' | 'lastErrorAt' | 'nextAttemptAt' | 'orderer'>;

export interface StoredCertificate {
  readonly certPem: string;
  readonly keyPem: string;
  /** Absent when the folder was written by someone else (a certificate put there by hand). */
  readonly meta?: CertificateMeta;
  readonly leaf: X509Certificate;
}

/**
 * Where the ACME manager keeps what it obtains: folders of certsDir (below), or Secrets of the
 * gateway's namespace in cluster mode (certificate-secrets.ts), the same places credentialName is
 * read from in each mode.
 */
export interface CertificateStorage {
  /** What is stored now, or undefined when there is no readable certificate. */
  read(secretName: string): Promise<StoredCertificate | undefined>;
  /** Replaces certificate, key and meta in one step. */
  write(secretName: string, files: { certPem: string; keyPem: string; meta: CertificateMeta }): Promise<void>;
  /** The ACME account key at `privateKeySecretRef`, made on first use. */
  accountKey(at: AccountKeyLocation): Promise<AccountKey>;
  /** Where a failure record is kept, for log lines: `meta.json`, or the Secret's annotation. */
  readonly metaName: string;
}

export function fileStorage(certsDir: string): CertificateStorage {
  return {
    read: (secretName) => readStored(certsDir, secretName),
    write: (secretName, files) => writeStored(certsDir, secretName, files),
    accountKey: (at) => accountKey(certsDir, at),
    metaName: 'meta.json',
  };
}

/** Rewrites only the failure record of what is stored, keeping certificate and key as they are. */
export async function recordFailure(storage: CertificateStorage, secretName: string, stored: StoredCertificate, failure: FailureRecord): Promise<void> {
  if (!stored.meta) return; // not ours to annotate
  const { lastError: _e, lastErrorAt: _a, nextAttemptAt: _n, ...rest } = stored.meta;
  await storage.write(secretName, { certPem: stored.certPem, keyPem: stored.keyPem, meta: { ...rest, ...failure } });
}

const FILES = ['tls.crt', 'tls.key', 'meta.json'] as const;
const DATA_LINK = '..data';

export function credentialDir(certsDir: string, secretName: string): string {
  return join(certsDir, secretName);
}

/** What is in the folder now, or undefined when there is no readable certificate there. */
export async function readStored(certsDir: string, secretName: string): Promise<StoredCertificate | undefined> {
  const dir = credentialDir(certsDir, secretName);
  let certPem: string;
  let keyPem: string;
  try {
    [certPem, keyPem] = await Promise.all([readFile(join(dir, 'tls.crt'), 'utf8'), readFile(join(dir, 'tls.key'), 'utf8')]);
  } catch {
    return undefined;
  }
  return storedFrom(certPem, keyPem, await readFile(join(dir, 'meta.json'), 'utf8').catch(() => undefined));
}

/** A stored certificate from its texts, or undefined when the certificate does not parse; meta only when it is ours. */
export function storedFrom(certPem: string, keyPem: string, metaText: string | undefined): StoredCertificate | undefined {
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(certPem);
  } catch {
    return undefined; // unreadable: treated as absent, so a stand-in or a new certificate replaces it
  }
  let meta: CertificateMeta | undefined;
  try {
    const parsed: unknown = JSON.parse(metaText ?? '');
    if (isMeta(parsed)) meta = parsed;
  } catch {
    // no meta: not ours
  }
  return { certPem, keyPem, leaf, ...(meta ? { meta } : {}) };
}

/** Replaces the folder's certificate, key and meta.json in one atomic step. */
export async function writeStored(certsDir: string, secretName: string, files: { certPem: string; keyPem: string; meta: CertificateMeta }): Promise<void> {
  const dir = credentialDir(certsDir, secretName);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('.', '_');
  const version = await mkdtemp(join(dir, `..${stamp}.`));
  await chmod(version, 0o755);
  await writeFile(join(version, 'tls.crt'), ensureNewline(files.certPem), { mode: 0o644 });
  await writeFile(join(version, 'tls.key'), ensureNewline(files.keyPem), { mode: 0o600 });
  await writeFile(join(version, 'meta.json'), JSON.stringify(files.meta, null, 2) + '\n', { mode: 0o644 });
  const versionName = version.slice(dir.length + 1);
  await replaceWithSymlink(dir, DATA_LINK, versionName);
  for (const f of FILES) {
    // Created once; after that the `..data` swap alone moves every file.
    const want = `${DATA_LINK}/${f}`;
    const current = await readlink(join(dir, f)).catch(() => undefined);
    if (current !== want) await replaceWithSymlink(dir, f, want);
  }
  await removeOldVersions(dir, versionName);
}

async function replaceWithSymlink(dir: string, name: string, target: string): Promise<void> {
  const tmp = join(dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
  await symlink(target, tmp);
  try {
    await rename(tmp, join(dir, name)); // rename(2) replaces the old entry atomically
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

async function removeOldVersions(dir: string, keep: string): Promise<void> {
  for (const name of await readdir(dir)) {
    if (!name.startsWith('..') || name === DATA_LINK || name === keep) continue;
    const st = await lstat(join(dir, name)).catch(() => undefined);
    // Readers that opened the old files keep them until they close them.
    if (st?.isDirectory()) await rm(join(dir, name), { recursive: true, force: true });
  }
}

function ensureNewline(s: string): string {
  return s.endsWith('\n') ? s : s + '\n';
}

export function isMeta(v: unknown): v is CertificateMeta {
  if (typeof v !== 'object' || v === null) return false;
  const m = v as Record<string, unknown>;
  return (m.source === 'acme' || m.source === 'self-signed') && typeof m.issuer === 'string' && typeof m.notAfter === 'string';
}
