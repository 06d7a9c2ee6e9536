// Who put a server credential where the gateway reads it: the gateway's own ACME client or its
// self-signed fallback (which mark what they write), or a person (anything unmarked): the `source`
// of a ServerCredential.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServerCredential } from './types.js';

/** ACME writes `meta.json` beside the certificate it manages; anything else was put there by a person. */
export function sourceOf(folder: string): ServerCredential['source'] {
  try {
    const meta = JSON.parse(readFileSync(join(folder, 'meta.json'), 'utf8')) as { source?: string };
    return meta.source === 'acme' || meta.source === 'self-signed' ? meta.source : 'file';
  } catch {
    return 'file';
  }
}

/** The annotation the gateway's ACME writes on the Secrets it manages (acme-manager's Secret storage). */
export const SOURCE_ANNOTATION = 'meshgate.io/source';

export function secretSourceOf(annotations: Readonly<Record<string, string>> | undefined): ServerCredential['source'] {
  const v = annotations?.[SOURCE_ANNOTATION];
  return v === 'acme' || v === 'self-signed' ? v : 'file';
}
