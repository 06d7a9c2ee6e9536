// The certificates the HTTPS part of the benchmark serves: one RSA 2048 (what a typical nginx
// deployment has, and the headline figure) and one ECDSA P-256 (much cheaper to sign with, so it
// shows how much of a handshake's cost is the certificate's signature). meshgate and nginx serve the
// very same files, laid out as meshgate's `--certs` folder expects: <dir>/<credential>/tls.crt, tls.key.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { issueCertificate, type KeyType } from '../src/core/tls/issue-certificate.js';
import { BENCH_HOST } from './servers.js';

export const KEY_TYPES: readonly KeyType[] = ['rsa', 'ec'];

export const KEY_LABEL: Record<KeyType, string> = { rsa: 'RSA 2048', ec: 'ECDSA P-256' };

export interface BenchCert {
  readonly keyType: KeyType;
  /** The credentialName meshgate's Gateway server refers to. */
  readonly credential: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export interface BenchCerts {
  /** The folder to pass as meshgate's `--certs`. */
  readonly dir: string;
  readonly byKey: Record<KeyType, BenchCert>;
}

export const CREDENTIAL: Record<KeyType, string> = { rsa: 'bench-tls', ec: 'bench-tls-ec' };

/**
 * Issues both certificates into `dir`. They name the bench host and 127.0.0.1, though neither load
 * generator verifies them: wrk sends "127.0.0.1" as SNI and openssl s_time sends none, which is why
 * meshgate's HTTPS servers take any SNI (hosts `*`).
 */
export async function writeBenchCerts(dir: string): Promise<BenchCerts> {
  const entries = await Promise.all(
    KEY_TYPES.map(async (keyType): Promise<[KeyType, BenchCert]> => {
      const issued = issueCertificate({
        subjectCN: BENCH_HOST,
        dnsNames: [BENCH_HOST],
        ipAddresses: ['127.0.0.1'],
        days: 1,
        keyType,
        extKeyUsage: ['serverAuth'],
      });
      const folder = join(dir, CREDENTIAL[keyType]);
      await mkdir(folder, { recursive: true });
      const certFile = join(folder, 'tls.crt');
      const keyFile = join(folder, 'tls.key');
      await writeFile(certFile, issued.certPem);
      await writeFile(keyFile, issued.keyPem, { mode: 0o600 });
      return [keyType, { keyType, credential: CREDENTIAL[keyType], certFile, keyFile }];
    }),
  );
  return { dir, byKey: Object.fromEntries(entries) as Record<KeyType, BenchCert> };
}
