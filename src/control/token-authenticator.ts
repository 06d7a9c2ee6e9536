// Who is calling: every request to the control plane carries `authorization: Bearer <token>`, and an
// Authenticator turns the token into the namespace and service account it stands for. That identity,
// not anything the caller asks for, is what certificates are issued to and what the proxy list shows.
//
// File mode reads a YAML list of `{token, namespace, serviceAccount}` (bootstrap tokens, the way a
// cluster-less mesh hands out credentials) and re-reads it when it changes. Tokens are compared in
// constant time against every entry, so timing tells nothing about how close a guess was. A
// Kubernetes TokenReview authenticator plugs in behind the same interface.

import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import type { Logger } from 'pino';
import { parse as parseYaml } from 'yaml';
import { isRecord } from '../core/config/load.js';
import { parseSpiffeId } from '../core/pki/spiffe.js';

/** The caller a token stands for; the trust domain is the CA's. */
export interface Caller {
  readonly namespace: string;
  readonly serviceAccount: string;
}

export type AuthResult = { readonly ok: true; readonly caller: Caller } | { readonly ok: false; readonly message: string };

export interface Authenticator {
  readonly description: string;
  authenticate(token: string): Promise<AuthResult>;
}

/** The token of an `authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? '');
  return m?.[1];
}

interface Entry {
  readonly digest: Buffer;
  readonly caller: Caller;
}

export type TokenFileParse = { ok: true; entries: Entry[]; problems: string[] } | { ok: false; message: string };

/** Reads the token file's text. Bad entries are skipped with a problem each; a file that is not a list fails. */
export function parseTokenFile(text: string, file: string): TokenFileParse {
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: false });
  } catch (err) {
    return { ok: false, message: `${file}: cannot parse: ${(err as Error).message.split('\n')[0]}` };
  }
  if (doc === null || doc === undefined) doc = [];
  if (!Array.isArray(doc)) return { ok: false, message: `${file}: must be a YAML list of {token, namespace, serviceAccount}` };
  const problems: string[] = [];
  const byDigest = new Map<string, Entry | 'ambiguous'>();
  doc.forEach((item, i) => {
    const where = `${file}: entry ${i}`;
    if (!isRecord(item)) return void problems.push(`${where} is not a mapping; skipped`);
    const { token, namespace, serviceAccount } = item;
    if (typeof token !== 'string' || token.trim() === '') return void problems.push(`${where} has no token; skipped`);
    if (typeof namespace !== 'string' || typeof serviceAccount !== 'string') return void problems.push(`${where} needs namespace and serviceAccount; skipped`);
    // The same rule as the identities the CA writes: one spelling per identity.
    if (!parseSpiffeId(`spiffe://cluster.local/ns/${namespace}/sa/${serviceAccount}`)) {
      return void problems.push(`${where}: ${namespace}/${serviceAccount} is not a valid namespace and service account; skipped`);
    }
    const digest = digestOf(token.trim());
    const key = digest.toString('hex');
    const known = byDigest.get(key);
    if (known === undefined) byDigest.set(key, { digest, caller: { namespace, serviceAccount } });
    else if (known !== 'ambiguous' && (known.caller.namespace !== namespace || known.caller.serviceAccount !== serviceAccount)) {
      // One token, two identities: no way to know which was meant, so it stands for neither.
      problems.push(`${where} repeats a token already given to ${known.caller.namespace}/${known.caller.serviceAccount}; that token is refused`);
      byDigest.set(key, 'ambiguous');
    }
  });
  const entries = [...byDigest.values()].filter((e): e is Entry => e !== 'ambiguous');
  return { ok: true, entries, problems };
}

export class FileTokenAuthenticator implements Authenticator {
  readonly #file: string;
  readonly #log: Logger | undefined;
  #entries: Entry[] = [];
  #stamp = '';
  #reading: Promise<void> | undefined;

  private constructor(file: string, log: Logger | undefined) {
    this.#file = file;
    this.#log = log;
  }

  /** Fails when the file cannot be read or is not a token list: a control plane should not start without callers. */
  static async load(file: string, log?: Logger): Promise<{ ok: true; authenticator: FileTokenAuthenticator } | { ok: false; message: string }> {
    const a = new FileTokenAuthenticator(file, log);
    const first = await a.#read();
    return first.ok ? { ok: true, authenticator: a } : first;
  }

  get description(): string {
    return `token file ${this.#file}`;
  }

  async authenticate(token: string): Promise<AuthResult> {
    await this.#refresh();
    const presented = digestOf(token);
    let found: Entry | undefined;
    // No early exit: every entry is compared whatever matched.
    for (const e of this.#entries) if (timingSafeEqual(e.digest, presented)) found ??= e;
    return found ? { ok: true, caller: found.caller } : { ok: false, message: 'unknown token' };
  }

  /** Re-reads the file when its stamp changed; a change that does not parse keeps the tokens read before. */
  #refresh(): Promise<void> {
    this.#reading ??= (async () => {
      try {
        const st = await stat(this.#file);
        if (stampOf(st) === this.#stamp) return;
        const r = await this.#read();
        if (!r.ok) this.#log?.error({ file: this.#file }, `${r.message}; the tokens read before stay in use`);
      } catch (err) {
        this.#log?.error({ file: this.#file, error: (err as Error).message }, 'cannot read the token file; the tokens read before stay in use');
      }
    })().finally(() => (this.#reading = undefined));
    return this.#reading;
  }

  async #read(): Promise<{ ok: true } | { ok: false; message: string }> {
    let text: string;
    let stamp: string;
    try {
      const st = await stat(this.#file);
      text = await readFile(this.#file, 'utf8');
      stamp = stampOf(st);
    } catch (err) {
      return { ok: false, message: `cannot read ${this.#file}: ${(err as Error).message}` };
    }
    const parsed = parseTokenFile(text, this.#file);
    if (!parsed.ok) return parsed;
    for (const p of parsed.problems) this.#log?.warn({ file: this.#file }, p);
    const first = this.#stamp === '';
    this.#entries = parsed.entries;
    this.#stamp = stamp;
    this.#log?.info({ file: this.#file, tokens: parsed.entries.length }, first ? 'tokens loaded' : 'tokens reloaded');
    return { ok: true };
  }
}

function digestOf(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

function stampOf(st: { mtimeMs: number; ctimeMs: number; size: number; ino: number }): string {
  return `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}
