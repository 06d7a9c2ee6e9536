// The certificates Gateway servers terminate TLS with, read from files or Secrets and kept current.
//
// `credentialName: X` is a Kubernetes Secret's keys: `tls.crt` and `tls.key` (kubernetes.io/tls) or
// `cert` and `key` (Istio's Opaque form); the client CA for MUTUAL is `ca.crt` / `cacert` in the same
// credential or in the separate credential `X-cacert`. Where the keys are read from is the one
// difference between the modes: a folder `<certsDir>/X/` on one machine, or, in cluster mode
// (`secrets` given), the Secret X in the gateway's own namespace, as Istio does. File settings
// (`serverCertificate`, `privateKey`, `caCertificates`) are paths, relative ones to the process cwd.
//
// The first resolution reads synchronously (it happens when a configuration is loaded, never per
// request). After that every folder involved is watched, with a slow poll behind the watchers, and a
// change is re-read after a debounce. Valid new material is swapped in and `onChange` fires; broken or
// mismatched material is refused with one log line and the last good material keeps serving.

import { createHash } from 'node:crypto';
import { readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import { basename, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { ServerTlsSettings } from '../model/istio.js';
import { checkMaterial, validityProblems } from './credential-check.js';
import { secretSourceOf, sourceOf } from './credential-source.js';
import type { CredentialProblem, CredentialStore, SecretReader, ServerCredential } from './types.js';
import type { IdentityProvider } from '../pki/types.js';
import { meshServerCredential } from './mesh-credential.js';
import { specsFor, type Candidate, type CredentialRoots, type Spec } from './credential-spec.js';

export interface CredentialStoreOptions {
  readonly certsDir: string;
  /**
   * Cluster mode: `credentialName` is a Secret of this reader's namespace instead of a folder of
   * certsDir (file settings stay files). Its changes are followed as the folders' are.
   */
  readonly secrets?: SecretReader;
  /** The proxy's workload identity: what an ISTIO_MUTUAL server presents; its rotations fire onChange. */
  readonly identity?: IdentityProvider;
  readonly logger?: Logger;
  /** Quiet time after the last file event before re-reading (writers touch several files). */
  readonly debounceMs?: number;
  /** Re-check interval for file systems whose change events get lost (network mounts). */
  readonly pollMs?: number;
  /** `false` for one-shot tools: resolve, but neither watch nor poll. */
  readonly watch?: boolean;
  readonly now?: () => Date;
}

export function createCredentialStore(opts: CredentialStoreOptions): FileCredentialStore {
  return new FileCredentialStore(opts);
}

interface Entry {
  readonly spec: Spec;
  good?: ServerCredential;
  /** Why the material on disk right now is not serving (empty when it is). */
  problems: string[];
  fingerprint?: string;
  /** A MUTUAL / OPTIONAL_MUTUAL server uses it, so a missing client CA is a problem. */
  mutual: boolean;
}

interface Read {
  readonly cert?: { name: string; text: string };
  readonly key?: { name: string; text: string };
  readonly ca?: { name: string; text: string };
  readonly problems: string[];
}

const MUTUAL_MODES = new Set(['MUTUAL', 'OPTIONAL_MUTUAL']);

export class FileCredentialStore implements CredentialStore {
  readonly #roots: CredentialRoots;
  readonly #log: Logger | undefined;
  readonly #debounceMs: number;
  readonly #pollMs: number;
  readonly #watch: boolean;
  readonly #now: () => Date;
  readonly #secrets: SecretReader | undefined;
  #unsubscribeSecrets: (() => void) | undefined;
  readonly #identity: IdentityProvider | undefined;
  #unsubscribeIdentity: (() => void) | undefined;
  readonly #entries = new Map<string, Entry>();
  readonly #combined = new Map<string, ServerCredential>();
  readonly #watchers = new Map<string, { watcher: FSWatcher; ino: number }>();
  readonly #listeners = new Set<() => void>();
  #debounce: NodeJS.Timeout | undefined;
  #poll: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(opts: CredentialStoreOptions) {
    this.#roots = { certsDir: resolve(opts.certsDir), shownCertsDir: opts.certsDir.replace(/\/+$/, '') || '.', ...(opts.secrets ? { secretsNamespace: opts.secrets.namespace } : {}) };
    this.#log = opts.logger;
    this.#debounceMs = opts.debounceMs ?? 100;
    this.#pollMs = opts.pollMs ?? 5000;
    this.#watch = opts.watch ?? true;
    this.#now = opts.now ?? (() => new Date());
    this.#secrets = opts.secrets;
    this.#identity = opts.identity;
    this.#unsubscribeIdentity = opts.identity?.onRotate(() => {
      for (const l of this.#listeners) l();
    });
  }

  forServer(tls: ServerTlsSettings): ServerCredential | undefined {
    if (tls.mode === 'ISTIO_MUTUAL') return meshServerCredential(this.#identity);
    const mutual = MUTUAL_MODES.has(tls.mode ?? '');
    const entries = specsFor(tls, this.#roots).map((s) => this.#entry(s));
    if (mutual) for (const e of entries) e.mutual = true;
    // Without a CA, Node would verify client certificates against its public roots: never that.
    const usable = entries.map((e) => e.good).filter((c): c is ServerCredential => c !== undefined && (!mutual || c.caPem !== undefined));
    if (usable.length <= 1) return usable[0];
    return this.#combine(usable);
  }

  /** The problems of the material `tls` refers to (resolving it if it was not yet), for tools. */
  problemsFor(tls: ServerTlsSettings): CredentialProblem[] {
    const mutual = MUTUAL_MODES.has(tls.mode ?? '');
    return specsFor(tls, this.#roots).flatMap((s) => this.#problemsOf(this.#entry(s), mutual));
  }

  /** What `tls` refers to, e.g. `credential demo-tls (certs/demo-tls)`, whether or not it exists. */
  describe(tls: ServerTlsSettings): string[] {
    return specsFor(tls, this.#roots).map((s) => s.description);
  }

  list(): ReadonlyArray<{ readonly name: string; readonly credential?: ServerCredential; readonly problems: readonly CredentialProblem[] }> {
    return [...this.#entries.values()]
      .sort((a, b) => a.spec.name.localeCompare(b.spec.name))
      .map((e) => ({ name: e.spec.name, ...(e.good ? { credential: e.good } : {}), problems: this.#problemsOf(e, e.mutual) }));
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#debounce);
    clearInterval(this.#poll);
    this.#debounce = this.#poll = undefined;
    this.#unsubscribeSecrets?.();
    this.#unsubscribeSecrets = undefined;
    this.#unsubscribeIdentity?.();
    this.#unsubscribeIdentity = undefined;
    for (const { watcher } of this.#watchers.values()) watcher.close();
    this.#watchers.clear();
  }

  // ------------------------------------------------------------------ resolution

  #entry(spec: Spec): Entry {
    let entry = this.#entries.get(spec.key);
    if (!entry) {
      entry = { spec, problems: [], mutual: false };
      this.#entries.set(spec.key, entry);
      this.#evaluate(entry, true);
      this.#startWatching();
    }
    return entry;
  }

  #problemsOf(e: Entry, mutual: boolean): CredentialProblem[] {
    const credential = e.spec.name;
    const out: CredentialProblem[] = e.problems.map((message) => ({ credential, message, severity: 'error' }));
    if (e.good) {
      for (const message of validityProblems(e.good, this.#now())) out.push({ credential, message, severity: 'warning' });
      if (mutual && e.good.caPem === undefined) {
        const where = e.spec.ca.map((c) => c.name).join(', ') || 'caCertificates';
        out.push({ credential, message: `MUTUAL needs a CA to verify client certificates; none found (looked for ${where})`, severity: 'error' });
      }
    }
    return out;
  }

  /** One ServerCredential for two certificates; the same object while neither changes. */
  #combine(creds: ServerCredential[]): ServerCredential {
    const version = createHash('sha256').update(creds.map((c) => c.version).join('+')).digest('hex').slice(0, 16);
    const key = creds.map((c) => c.description).join('\n');
    const cached = this.#combined.get(key);
    if (cached && cached.version === version) return cached;
    const [primary, ...alternates] = creds as [ServerCredential, ...ServerCredential[]];
    const combined: ServerCredential = { ...primary, version, alternates };
    this.#combined.set(key, combined);
    return combined;
  }

  // ------------------------------------------------------------------ reading and checking

  #read(spec: Spec): Read {
    if (spec.invalid) return { problems: [spec.invalid] };
    const problems: string[] = [];
    const first = (cands: readonly Candidate[]): { name: string; text: string } | undefined => {
      for (const c of cands) {
        if (c.secret) {
          const text = this.#secrets?.get(c.secret.name)?.data[c.secret.key];
          if (text !== undefined) return { name: c.name, text };
          continue;
        }
        try {
          return { name: c.name, text: readFileSync(c.path, 'utf8') };
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code !== 'ENOENT' && code !== 'ENOTDIR') {
            problems.push(`cannot read ${c.name}: ${code ?? (err as Error).message}`);
            return undefined;
          }
        }
      }
      return undefined;
    };
    const cert = first(spec.cert);
    const key = first(spec.privateKey);
    const ca = first(spec.ca);
    if (problems.length === 0 && !cert && !key && spec.folder && !isDirectory(spec.folder.path)) {
      problems.push(`${spec.folder.shown} does not exist`);
    } else if (problems.length === 0 && !cert && !key && spec.secret && !this.#secrets?.get(spec.secret.name)) {
      problems.push(`${spec.secret.shown} does not exist`);
    } else if (problems.length === 0) {
      if (!cert) problems.push(spec.missing.cert);
      if (!key) problems.push(spec.missing.key);
      if (spec.ca.length > 0 && !ca && spec.key.startsWith('files:')) problems.push(`${spec.ca[0]!.name} does not exist`);
    }
    return { ...(cert ? { cert } : {}), ...(key ? { key } : {}), ...(ca ? { ca } : {}), problems };
  }

  /** Re-reads one entry; true when the material it serves changed. */
  #evaluate(entry: Entry, initial: boolean): boolean {
    const spec = entry.spec;
    const read = this.#read(spec);
    const fingerprint = createHash('sha256')
      .update(JSON.stringify([read.cert ?? null, read.key ?? null, read.ca ?? null, read.problems]))
      .digest('hex');
    if (fingerprint === entry.fingerprint) return false;
    entry.fingerprint = fingerprint;

    let problems = read.problems;
    if (problems.length === 0) {
      const result = checkMaterial(
        { certPem: read.cert!.text, keyPem: read.key!.text, ...(read.ca ? { caPem: read.ca.text, caName: read.ca.name } : {}), certName: read.cert!.name, keyName: read.key!.name },
        spec.folder ? sourceOf(spec.folder.path) : spec.secret ? secretSourceOf(this.#secrets?.get(spec.secret.name)?.annotations) : 'file',
        spec.description,
      );
      if (result.ok) {
        const previous = entry.good;
        const changed = previous?.version !== result.credential.version;
        entry.good = changed ? result.credential : previous;
        entry.problems = [];
        const until = result.credential.notAfter.toISOString();
        if (changed) {
          const msg = previous ? `${spec.label}: reloaded, valid until ${until}` : `${spec.label}: loaded, valid until ${until}`;
          if (previous || !initial) this.#log?.info({ credential: spec.name, version: result.credential.version }, msg);
          else this.#log?.debug({ credential: spec.name, version: result.credential.version }, msg);
        }
        for (const w of validityProblems(result.credential, this.#now())) this.#log?.warn({ credential: spec.name }, `${spec.label}: ${w}; serving it anyway`);
        return changed;
      }
      problems = [...result.problems];
    }

    if (entry.good) {
      const keep = `keeping the certificate valid until ${entry.good.notAfter.toISOString()}`;
      entry.problems = problems.map((p) => `${p}; ${keep}`);
    } else {
      entry.problems = problems;
    }
    this.#log?.[entry.good ? 'error' : 'warn']({ credential: spec.name }, `${spec.label}: ${entry.problems.join('; ')}`);
    return false;
  }

  // ------------------------------------------------------------------ watching

  #startWatching(): void {
    if (!this.#watch || this.#closed) return;
    if (this.#secrets && !this.#unsubscribeSecrets) this.#unsubscribeSecrets = this.#secrets.onChange(() => this.#schedule());
    this.#armWatchers();
    if (!this.#poll) {
      this.#poll = setInterval(() => this.#recheck(), this.#pollMs);
      this.#poll.unref();
    }
  }

  /**
   * Watches every folder the entries read from. Watching the folder rather than the file survives
   * editors and `mv` replacing the file, and Kubernetes swapping its `..data` symlink. A folder that
   * was replaced (new inode) or appeared since gets a fresh watcher; one that vanished loses its own.
   */
  #armWatchers(): void {
    const wanted = new Set([...this.#entries.values()].flatMap((e) => e.spec.dirs));
    for (const [dir, w] of this.#watchers) {
      if (!wanted.has(dir)) {
        w.watcher.close();
        this.#watchers.delete(dir);
      }
    }
    for (const dir of wanted) {
      let ino: number | undefined;
      try {
        const st = statSync(dir);
        ino = st.isDirectory() ? st.ino : undefined;
      } catch {
        ino = undefined;
      }
      const current = this.#watchers.get(dir);
      if (current && current.ino === ino) continue;
      current?.watcher.close();
      this.#watchers.delete(dir);
      if (ino === undefined) continue; // the parent folder's watcher (or the poll) sees it appear
      try {
        const watcher = watch(dir, { persistent: false }, () => this.#schedule());
        watcher.on('error', () => {
          watcher.close();
          if (this.#watchers.get(dir)?.watcher === watcher) this.#watchers.delete(dir);
          this.#schedule();
        });
        this.#watchers.set(dir, { watcher, ino });
      } catch (err) {
        this.#log?.debug({ dir, err: (err as Error).message }, `cannot watch ${basename(dir)}; relying on the poll`);
      }
    }
  }

  #schedule(): void {
    if (this.#closed) return;
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => this.#recheck(), this.#debounceMs);
    this.#debounce.unref();
  }

  #recheck(): void {
    if (this.#closed) return;
    this.#debounce = undefined;
    let changed = false;
    for (const entry of this.#entries.values()) {
      if (this.#evaluate(entry, false)) changed = true;
    }
    this.#armWatchers();
    if (!changed) return;
    for (const listener of [...this.#listeners]) {
      try {
        listener();
      } catch (err) {
        this.#log?.error({ err }, 'credential change listener failed');
      }
    }
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
