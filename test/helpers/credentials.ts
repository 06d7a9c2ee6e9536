// A credentialName folder as the gateway reads it with `--certs DIR`: DIR/<name>/tls.crt, tls.key
// and, for MUTUAL servers, ca.crt.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export async function writeCredential(certs: string, name: string, pem: { readonly certPem: string; readonly keyPem: string }, ca?: string): Promise<void> {
  const dir = join(certs, name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'tls.crt'), pem.certPem);
  await writeFile(join(dir, 'tls.key'), pem.keyPem, { mode: 0o600 });
  if (ca) await writeFile(join(dir, 'ca.crt'), ca);
}
