// The CA's files in its folder, laid out like Istio's `cacerts` secret:
//   ca-cert.pem     the signing certificate          ca-key.pem   its key (0600)
//   root-cert.pem   the trust bundle (root or roots)  cert-chain.pem  ca-cert's chain up to the root
// Without cert-chain.pem the CA is self-signed: ca-cert.pem is the root, and root-cert.pem repeats it.
// An empty (or missing) folder gets a new self-signed root (10 years, RSA 2048) on first start; later
// starts load the same one. With cert-chain.pem the CA is plugged in: ca-cert/ca-key sign, usually as
// an intermediate of an operator's root. Every check names the file it is about. The same checks read
// the keys of a Secret in cluster mode (control/ca-secrets.ts): `caMaterialFrom` takes the texts and
// how to name each one, wherever they came from.

import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { issueCertificate } from '../tls/issue-certificate.js';
import { chainToRoot, parseCertificates, pemCertificates, sameCertificate } from './pem-chain.js';

export const CA_CERT_FILE = 'ca-cert.pem';
export const CA_KEY_FILE = 'ca-key.pem';
export const ROOT_CERT_FILE = 'root-cert.pem';
export const CERT_CHAIN_FILE = 'cert-chain.pem';

const ROOT_DAYS = 3650;
const BACKDATE_MS = 2 * 60_000;

export interface CaMaterial {
  readonly source: 'self-signed' | 'plugged-in';
  readonly signerCertPem: string;
  readonly signerKeyPem: string;
  readonly signerCert: X509Certificate;
  readonly signerKey: KeyObject;
  /** Between the signer and the root, signer's issuer first; empty when the signer is the root. */
  readonly intermediatePems: readonly string[];
  /** The root the signer's chain leads to: the last element of every chain the CA hands out. */
  readonly chainRootPem: string;
  /** Everything in root-cert.pem: what proxies verify against. */
  readonly trustBundlePem: string;
}

type Result = { ok: true; material: CaMaterial } | { ok: false; message: string };

export function loadOrCreateCaFiles(dir: string, trustDomain: string, now: Date): Result {
  const read = readAll(dir);
  if (!read.ok) return read;
  const files = read.files;
  if (Object.values(files).every((t) => t === undefined)) return createSelfSigned(dir, trustDomain, now);
  const loaded = caMaterialFrom(files, (name) => join(dir, name), now);
  if (!loaded.ok) return loaded;
  if (loaded.material.source === 'self-signed' && files[ROOT_CERT_FILE] === undefined) {
    const wrote = writeFiles(dir, [[ROOT_CERT_FILE, loaded.material.chainRootPem, 0o644]]);
    if (!wrote.ok) return wrote;
  }
  return loaded;
}

/** A new self-signed root for the trust domain (10 years, RSA 2048, backdated 2 minutes), as istiod makes one. */
export function newSelfSignedRoot(trustDomain: string, now: Date): { certPem: string; keyPem: string } {
  return issueCertificate({
    subjectCN: 'meshgate mesh root CA',
    organization: trustDomain,
    days: ROOT_DAYS,
    isCA: true,
    keyType: 'rsa',
    notBefore: new Date(now.getTime() - BACKDATE_MS),
  });
}

/**
 * The CA from the texts of its four files (undefined when absent), each named by `where` in messages:
 * a path in a folder, or a Secret's key. Checks what loadOrCreateCaFiles checks; writes nothing.
 */
export function caMaterialFrom(files: Readonly<Record<string, string | undefined>>, where: (file: string) => string, now: Date): Result {
  const missing = (names: string[]): Result => ({ ok: false, message: `${where(names.find((n) => files[n] === undefined)!)} is missing` });
  const plugged = files[CERT_CHAIN_FILE] !== undefined;
  const required = plugged ? [CA_CERT_FILE, CA_KEY_FILE, ROOT_CERT_FILE] : [CA_CERT_FILE, CA_KEY_FILE];
  if (required.some((n) => files[n] === undefined)) return missing(required);

  const signer = readSigner(where, files[CA_CERT_FILE]!, files[CA_KEY_FILE]!, now);
  if (!signer.ok) return signer;
  const { cert, key } = signer;

  if (!plugged) {
    if (!signedBySelf(cert)) return { ok: false, message: `${where(CA_CERT_FILE)} is not self-signed, and ${CERT_CHAIN_FILE} (its chain to a root) is missing` };
    const rootText = files[ROOT_CERT_FILE];
    if (rootText !== undefined) {
      const roots = readCertFile(where, ROOT_CERT_FILE, rootText);
      if (!roots.ok) return roots;
      if (!roots.certs.some((r) => sameCertificate(r, cert))) return { ok: false, message: `${where(ROOT_CERT_FILE)} does not hold the self-signed certificate of ${CA_CERT_FILE}` };
    }
    return { ok: true, material: material('self-signed', cert, key, [], cert, rootText ?? pemOf(cert)) };
  }

  const roots = readCertFile(where, ROOT_CERT_FILE, files[ROOT_CERT_FILE]!);
  if (!roots.ok) return roots;
  const chain = readCertFile(where, CERT_CHAIN_FILE, files[CERT_CHAIN_FILE]!);
  if (!chain.ok) return chain;
  // Istio's cert-chain.pem usually starts with ca-cert itself and ends with the root; both are optional.
  const between = chain.certs.filter((c, i) => !(i === 0 && sameCertificate(c, cert)) && !roots.certs.some((r) => sameCertificate(r, c)));
  const path = [cert, ...between];
  const walk = chainToRoot(path, roots.certs);
  if (!walk.ok) return { ok: false, message: `${where(CERT_CHAIN_FILE)}: the chain of ${CA_CERT_FILE} does not lead to a root in ${ROOT_CERT_FILE}: ${walk.message}` };
  if (walk.length !== path.length) return { ok: false, message: `${where(CERT_CHAIN_FILE)}: certificates after the ${walk.length}. are not part of ${CA_CERT_FILE}'s chain` };
  const signerIsRoot = roots.certs.some((r) => sameCertificate(r, cert));
  return { ok: true, material: material('plugged-in', cert, key, signerIsRoot ? [] : between, walk.root, files[ROOT_CERT_FILE]!) };
}

function material(source: CaMaterial['source'], cert: X509Certificate, key: KeyObject, between: X509Certificate[], root: X509Certificate, bundle: string): CaMaterial {
  return {
    source,
    signerCertPem: pemOf(cert),
    signerKeyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
    signerCert: cert,
    signerKey: key,
    intermediatePems: between.map(pemOf),
    chainRootPem: pemOf(root),
    trustBundlePem: pemCertificates(bundle).join(''),
  };
}

function createSelfSigned(dir: string, trustDomain: string, now: Date): Result {
  const root = newSelfSignedRoot(trustDomain, now);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    return { ok: false, message: `cannot create ${dir}: ${(err as Error).message}` };
  }
  // The key first: a crash half-way leaves a folder that fails to load rather than a root without its key.
  const wrote = writeFiles(dir, [
    [CA_KEY_FILE, root.keyPem, 0o600],
    [CA_CERT_FILE, root.certPem, 0o644],
    [ROOT_CERT_FILE, root.certPem, 0o644],
  ]);
  if (!wrote.ok) return wrote;
  const cert = new X509Certificate(root.certPem);
  return { ok: true, material: material('self-signed', cert, createPrivateKey(root.keyPem), [], cert, root.certPem) };
}

function readSigner(where: (file: string) => string, certText: string, keyText: string, now: Date): { ok: true; cert: X509Certificate; key: KeyObject } | { ok: false; message: string } {
  const certs = readCertFile(where, CA_CERT_FILE, certText);
  if (!certs.ok) return certs;
  if (certs.certs.length !== 1) return { ok: false, message: `${where(CA_CERT_FILE)} must hold one certificate, found ${certs.certs.length}` };
  const cert = certs.certs[0]!;
  let key: KeyObject;
  try {
    key = createPrivateKey(keyText);
  } catch (err) {
    return { ok: false, message: `${where(CA_KEY_FILE)} is not a readable private key: ${(err as Error).message}` };
  }
  if (key.asymmetricKeyType !== 'rsa' && key.asymmetricKeyType !== 'ec') return { ok: false, message: `${where(CA_KEY_FILE)}: unsupported key type ${key.asymmetricKeyType} (RSA or ECDSA)` };
  if (!cert.checkPrivateKey(key)) return { ok: false, message: `${where(CA_KEY_FILE)} does not match the certificate in ${CA_CERT_FILE}` };
  if (!cert.ca) return { ok: false, message: `${where(CA_CERT_FILE)} is not a CA certificate` };
  if (new Date(cert.validTo).getTime() <= now.getTime()) return { ok: false, message: `${where(CA_CERT_FILE)} expired at ${new Date(cert.validTo).toISOString()}` };
  return { ok: true, cert, key };
}

function readCertFile(where: (file: string) => string, name: string, text: string): { ok: true; certs: X509Certificate[] } | { ok: false; message: string } {
  const pems = pemCertificates(text);
  if (pems.length === 0) return { ok: false, message: `${where(name)} holds no PEM certificate` };
  const parsed = parseCertificates(pems);
  if (!parsed.ok) return { ok: false, message: `${where(name)}: certificate ${parsed.index + 1} does not parse: ${parsed.message}` };
  return parsed;
}

function readAll(dir: string): { ok: true; files: Record<string, string | undefined> } | { ok: false; message: string } {
  const files: Record<string, string | undefined> = {};
  for (const name of [CA_CERT_FILE, CA_KEY_FILE, ROOT_CERT_FILE, CERT_CHAIN_FILE]) {
    try {
      files[name] = readFileSync(join(dir, name), 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') return { ok: false, message: `cannot read ${join(dir, name)}: ${(err as Error).message}` };
    }
  }
  return { ok: true, files };
}

function signedBySelf(cert: X509Certificate): boolean {
  return cert.checkIssued(cert) && cert.verify(cert.publicKey);
}

function pemOf(cert: X509Certificate): string {
  return `${cert.toString().trim()}\n`;
}

/** Each file goes to a temporary name first and is renamed into place, so no reader sees half a file. */
function writeFiles(dir: string, files: ReadonlyArray<readonly [string, string, number]>): { ok: true } | { ok: false; message: string } {
  for (const [name, text, mode] of files) {
    const file = join(dir, name);
    const tmp = `${file}.tmp-${process.pid}`;
    try {
      writeFileSync(tmp, text, { mode });
      chmodSync(tmp, mode); // the umask may have taken bits away; be exact
      renameSync(tmp, file);
    } catch (err) {
      return { ok: false, message: `cannot write ${file}: ${(err as Error).message}` };
    }
  }
  return { ok: true };
}
