// Keeps every cert-manager Certificate the gateway serves issued by ACME, the way cert-manager would
// but inside the gateway: it follows the snapshot, writes a self-signed stand-in until the first
// certificate arrives, orders with HTTP-01 (answered from `challengeResponse`), renews at
// two-thirds of the lifetime (or `renewBefore`), and after a failure retries with growing, jittered
// delays while the certificate already on disk keeps serving. It only writes files (or Secrets);
// the credential store notices them and swaps them in. With several replicas only the holder of the
// ACME Lease orders (acme-election.ts calls `lead()`); the others serve what it writes.

import { X509Certificate } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { SnapshotHolder } from '../../core/snapshot/holder.js';
import type { Snapshot } from '../../core/snapshot/snapshot.js';
import { checkMaterial } from '../../core/tls/credential-check.js';
import { selfSignedStandIn } from '../../core/tls/issue-certificate.js';
import { describeAcmeError, orderCertificate } from './acme-order.js';
import { localChallenges, type ChallengeBoard } from './challenge-board.js';
import { trustDirectory } from './acme-trust.js';
import { fileStorage, recordFailure, type CertificateSource, type CertificateStorage, type FailureRecord, type StoredCertificate } from './certificate-files.js';
import { isReal, renewAt, satisfies, standInDue } from './certificate-facts.js';
import { DEFAULT_BACKOFF, renewalTime, retryDelay, type BackoffOptions } from './renewal-policy.js';
import { wantedCertificates, type ResolvedIssuer, type WantedCertificate } from './wanted-certificates.js';

export interface AcmeManagerOptions {
  /**
   * Where credentials live: `<certsDir>/<secretName>/tls.crt|tls.key|meta.json` and account keys at
   * `<privateKeySecretRef.name>/tls.key` (fileStorage), or the Secrets of those names (secretStorage).
   */
  readonly storage?: CertificateStorage;
  /** Shorthand for `storage: fileStorage(certsDir)`. */
  readonly certsDir?: string;
  readonly holder: SnapshotHolder;
  readonly logger: Logger;
  /** PEM of a CA to trust for the ACME server (a private or test ACME CA), on top of the system roots. */
  readonly acmeCa?: string;
  readonly random?: () => number;
  /** Milliseconds since the epoch; decides when renewal and retries are due. */
  readonly now?: () => number;
  /** How often due work is looked for (default 10 s). */
  readonly renewCheckMs?: number;
  /** Back-off after failures (default 1 min doubling to 1 h). */
  readonly retry?: Partial<BackoffOptions>;
  /** Longest one order may take before it counts as failed (default 5 min). */
  readonly orderTimeoutMs?: number;
  /** First wait before polling a pending challenge or order again (default 2 s, doubling). */
  readonly orderPollMs?: number;
  /**
   * Where HTTP-01 answers are kept while an order is in flight: where every process and replica
   * that may receive the ACME server's validation request reads them (default: this process only).
   */
  readonly challenges?: ChallengeBoard;
  /** Who this process is, as records and status name the orderer (default: the host's name). */
  readonly identity?: string;
  /**
   * Replicas: this process orders only while it holds the ACME Lease, from `lead()` until that
   * work is closed; `holder()` names whoever holds it. Absent: it orders from `start()` on.
   */
  readonly election?: { holder(): string | undefined };
}

export type CertificateState = 'waiting' | 'issuing' | 'ready' | 'retrying';

export interface ManagedCertificateStatus {
  readonly secretName: string;
  /** `Certificate ns/name`. */
  readonly certificate: string;
  readonly issuer?: string;
  readonly state: CertificateState;
  /** What is on disk now: `acme`, `self-signed`, `other` (put there by someone else) or nothing. */
  readonly serving?: CertificateSource | 'other';
  readonly notAfter?: string;
  readonly renewAt?: string;
  readonly nextAttemptAt?: string;
  readonly failures: number;
  readonly lastError?: string;
  /** Who orders it: this process's identity, another replica's (the Lease holder), or absent when unknown. */
  readonly orderer?: string;
}

export interface CertificateWritten {
  readonly secretName: string;
  readonly source: CertificateSource;
  readonly notAfter: Date;
  readonly serialNumber: string;
}

interface Entry {
  wanted: WantedCertificate;
  stored: StoredCertificate | undefined;
  failures: number;
  /** Epoch ms before which no order is placed (after a failure). */
  nextAttemptAt: number;
  /** The last failure as meta.json records it. */
  failure?: FailureRecord;
  running?: Promise<void>;
  issuing: boolean;
  /** The last "waiting" reason logged, so a reason is said once, not at every check. */
  saidWaiting?: string;
}

const STAND_IN_HOURS = 24;

export class AcmeManager {
  readonly #opts: AcmeManagerOptions & { readonly storage: CertificateStorage };
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #backoff: BackoffOptions;
  readonly #entries = new Map<string, Entry>();
  readonly #challenges: ChallengeBoard;
  readonly #identity: string;
  readonly #trust = new Map<string, ReturnType<typeof trustDirectory>>();
  readonly #listeners = new Set<(e: CertificateWritten) => void>();
  #saidNotes = new Set<string>();
  #unsubscribe: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #started = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** Whether this process orders now; each time it starts to, a new term (work of an older one writes nothing). */
  #ordering = false;
  #term = 0;

  constructor(opts: AcmeManagerOptions) {
    if (!opts.storage && opts.certsDir === undefined) throw new Error('AcmeManager needs storage or certsDir');
    this.#opts = { ...opts, storage: opts.storage ?? fileStorage(opts.certsDir!) };
    this.#challenges = opts.challenges ?? localChallenges();
    this.#identity = opts.identity ?? hostname();
    this.#log = opts.logger;
    this.#now = opts.now ?? Date.now;
    this.#random = opts.random ?? Math.random;
    this.#backoff = { ...DEFAULT_BACKOFF, ...opts.retry };
  }

  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    if (!this.#opts.election) this.#ordering = true;
    this.#unsubscribe = this.#opts.holder.onSwap((s) => this.#onSnapshot(s));
    const current = this.#opts.holder.current();
    if (current) this.#onSnapshot(current);
    this.#timer = setInterval(() => this.#checkAll(), this.#opts.renewCheckMs ?? 10_000);
    this.#timer.unref();
  }

  /**
   * Starts ordering (this replica holds the ACME Lease now) until the returned work is closed (it
   * lost or gave up the Lease): an order still in flight then writes nothing.
   */
  lead(): { close(): Promise<void> } {
    if (this.#closed) return { close: async () => undefined };
    const term = ++this.#term;
    this.#ordering = true;
    this.#log.info({ identity: this.#identity }, 'ordering ACME certificates for the gateway\'s replicas (this replica holds the ACME Lease)');
    this.#checkAll();
    return {
      close: async () => {
        if (this.#term !== term) return;
        this.#term++;
        this.#ordering = false;
        if (!this.#closed) this.#log.info({ identity: this.#identity }, 'no longer ordering ACME certificates (the ACME Lease is not this replica\'s)');
      },
    };
  }

  /** The key authorization for an HTTP-01 token of an order in flight (`GET /.well-known/acme-challenge/<token>`). */
  challengeResponse(token: string): string | undefined | Promise<string | undefined> {
    return this.#challenges.answer(token);
  }

  /** Looks for due work now and resolves once everything it started has finished. */
  async checkNow(): Promise<void> {
    await this.#settle();
    this.#checkAll();
    await this.#settle();
  }

  status(): ManagedCertificateStatus[] {
    return [...this.#entries.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([secretName, e]) => this.#statusOf(secretName, e));
  }

  /** Fired after a certificate (or stand-in) was written, for whoever wants to react before the file watchers do. */
  onWrite(listener: (e: CertificateWritten) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Stops looking for work and waits for orders in flight; certificates on disk stay. */
  close(): Promise<void> {
    return (this.#closing ??= this.#stop(true));
  }

  /** Stops at once; an order in flight finishes unseen and writes nothing. */
  destroy(): Promise<void> {
    return (this.#closing ??= this.#stop(false));
  }

  async #stop(wait: boolean): Promise<void> {
    this.#closed = true;
    this.#unsubscribe?.();
    clearInterval(this.#timer);
    if (wait) await this.#settle();
    for (const t of this.#trust.values()) t.release();
    this.#trust.clear();
    this.#challenges.close();
  }

  async #settle(): Promise<void> {
    for (;;) {
      const running = [...this.#entries.values()].map((e) => e.running).filter((p): p is Promise<void> => p !== undefined);
      if (running.length === 0) return;
      await Promise.all(running);
    }
  }

  // ------------------------------------------------------------------ following the configuration

  #onSnapshot(snapshot: Snapshot): void {
    if (this.#closed) return;
    const { wanted, notes } = wantedCertificates(snapshot);
    const notesNow = new Set(notes);
    for (const n of notes) if (!this.#saidNotes.has(n)) this.#log.warn(n);
    this.#saidNotes = notesNow;
    for (const [secretName, w] of wanted) {
      const entry = this.#entries.get(secretName);
      if (!entry) {
        this.#entries.set(secretName, { wanted: w, stored: undefined, failures: 0, nextAttemptAt: 0, issuing: false });
      } else if (entry.wanted.fingerprint !== w.fingerprint) {
        // Different names, key or issuer: order at once, whatever back-off the old spec had earned.
        entry.wanted = w;
        entry.failures = 0;
        entry.nextAttemptAt = 0;
        entry.saidWaiting = undefined;
      } else {
        entry.wanted = w;
      }
    }
    for (const [secretName, entry] of this.#entries) {
      if (wanted.has(secretName)) continue;
      this.#entries.delete(secretName);
      this.#log.info({ secretName }, `certificate ${name(entry.wanted)}: no Gateway server uses ${secretName} any more; no longer renewed (its files stay)`);
    }
    this.#checkAll();
  }

  #checkAll(): void {
    // A replica that does not order looks at nothing: the orderer writes, the credential store serves.
    if (this.#closed || !this.#ordering) return;
    for (const [secretName, entry] of this.#entries) {
      if (entry.running) continue;
      entry.running = this.#step(secretName, entry, this.#term)
        .catch((err: unknown) => this.#log.error({ err, secretName }, `certificate ${name(entry.wanted)}: ${describeAcmeError(err)}`))
        .finally(() => {
          entry.running = undefined;
        });
    }
  }

  /** One look at one certificate: stand-in if needed, then an order if one is due. */
  async #step(secretName: string, entry: Entry, term: number): Promise<void> {
    const { storage } = this.#opts;
    // The store is the truth: someone may have replaced or removed the certificate since the last look.
    entry.stored = await storage.read(secretName);
    const w = entry.wanted;
    const now = this.#now();
    const real = isReal(entry.stored) ? entry.stored : undefined;

    if (!real && standInDue(w, entry.stored, now)) {
      const reason = w.waiting ?? entry.failure?.lastError ?? 'no certificate issued yet';
      await this.#writeStandIn(secretName, entry, reason, term);
    }
    if (!w.issuer) {
      const reason = w.waiting ?? 'no issuer';
      if (entry.saidWaiting !== reason) {
        entry.saidWaiting = reason;
        this.#log.warn({ secretName }, `certificate ${name(w)}: cannot be issued: ${reason}`);
      }
      return;
    }
    if (real && satisfies(w, real) && now < renewAt(w, real)) return;
    if (now < entry.nextAttemptAt) return;
    if (this.#term !== term) return;
    await this.#issue(secretName, entry, w, w.issuer, real, term);
  }

  /** Still the work of this process's current term of ordering (not closed, Lease not lost since). */
  #current(term: number): boolean {
    return !this.#closed && this.#ordering && this.#term === term;
  }

  // ------------------------------------------------------------------ stand-in

  async #writeStandIn(secretName: string, entry: Entry, reason: string, term: number): Promise<void> {
    const w = entry.wanted;
    const standIn = selfSignedStandIn(w.dnsNames, STAND_IN_HOURS);
    const leaf = new X509Certificate(standIn.certPem);
    if (!this.#current(term)) return;
    await this.#opts.storage.write(secretName, {
      certPem: standIn.certPem,
      keyPem: standIn.keyPem,
      meta: { source: 'self-signed', issuer: 'self-signed', notAfter: new Date(leaf.validTo).toISOString(), ...entry.failure, orderer: this.#identity },
    });
    entry.stored = await this.#opts.storage.read(secretName);
    this.#log.warn({ secretName }, `certificate ${name(w)}: waiting for ACME (${reason}); serving a self-signed stand-in`);
    this.#emit(secretName, 'self-signed', leaf);
  }

  // ------------------------------------------------------------------ ordering

  async #issue(secretName: string, entry: Entry, w: WantedCertificate, issuer: ResolvedIssuer, real: StoredCertificate | undefined, term: number): Promise<void> {
    const { storage } = this.#opts;
    const renewing = real !== undefined;
    entry.issuing = true;
    const started = Date.now();
    this.#log.info({ secretName, issuer: issuer.ref, server: issuer.acme.server }, `certificate ${name(w)}: ordering ${w.dnsNames.join(', ')} from ${issuer.ref}`);
    try {
      const issued = await orderCertificate({
        directoryUrl: issuer.acme.server,
        agent: this.#trustFor(issuer).agent,
        ...(issuer.acme.email ? { email: issuer.acme.email } : {}),
        accountKeyPem: await this.#accountKey(issuer),
        commonName: w.commonName,
        dnsNames: w.dnsNames,
        key: w.key,
        ...(issuer.acme.preferredChain ? { preferredChain: issuer.acme.preferredChain } : {}),
        challenges: this.#challenges,
        timeoutMs: this.#opts.orderTimeoutMs ?? 300_000,
        pollMs: this.#opts.orderPollMs ?? 2000,
        stillOrdering: () => this.#current(term),
      });
      const checked = checkMaterial({ certPem: issued.certPem, keyPem: issued.keyPem, certName: 'the issued certificate', keyName: 'its key' }, 'acme', `credential ${secretName}`);
      if (!checked.ok) throw new Error(checked.problems.join('; '));
      // Closed, the Lease lost, or the Certificate gone while the order ran: not this process's to write.
      if (!this.#current(term) || this.#entries.get(secretName) !== entry) return;
      const leaf = new X509Certificate(issued.certPem);
      const notAfter = new Date(leaf.validTo);
      await storage.write(secretName, {
        certPem: issued.certPem,
        keyPem: issued.keyPem,
        meta: { source: 'acme', issuer: issuer.ref, server: issuer.acme.server, notAfter: notAfter.toISOString(), orderer: this.#identity },
      });
      entry.stored = await storage.read(secretName);
      entry.failures = 0;
      entry.nextAttemptAt = 0;
      delete entry.failure;
      const due = new Date(renewalTime(Date.parse(leaf.validFrom), notAfter.getTime(), w.renewBeforeMs));
      this.#log.info(
        { secretName, issuer: issuer.ref, serialNumber: leaf.serialNumber, notAfter: notAfter.toISOString(), renewAt: due.toISOString(), ms: Date.now() - started },
        `certificate ${name(w)}: ${renewing ? 'renewed' : 'issued'} by ${issuer.ref}, valid until ${notAfter.toISOString()}, renewal due ${due.toISOString()}`,
      );
      this.#emit(secretName, 'acme', leaf);
    } catch (err) {
      if (!this.#current(term)) return;
      const reason = describeAcmeError(err);
      entry.failures++;
      const delay = retryDelay(entry.failures, this.#random, this.#backoff);
      const failedAt = this.#now();
      entry.nextAttemptAt = failedAt + delay;
      entry.failure = { lastError: reason, lastErrorAt: new Date(failedAt).toISOString(), nextAttemptAt: new Date(entry.nextAttemptAt).toISOString(), orderer: this.#identity };
      const keeping = real
        ? `keeping the certificate valid until ${new Date(real.leaf.validTo).toISOString()}`
        : 'the self-signed stand-in keeps serving';
      this.#log.warn(
        { secretName, issuer: issuer.ref, failures: entry.failures, retryInMs: delay },
        `certificate ${name(w)}: ACME ${renewing ? 'renewal' : 'issuance'} failed (${reason}); ${keeping}; next attempt in ${humanDelay(delay)}`,
      );
      const current = entry.stored;
      if (current?.meta) {
        await recordFailure(storage, secretName, current, entry.failure).catch((e: unknown) => this.#log.error({ err: e, secretName }, `could not record the failure in ${storage.metaName}`));
        entry.stored = await storage.read(secretName);
      }
    } finally {
      entry.issuing = false;
    }
  }

  async #accountKey(issuer: ResolvedIssuer): Promise<string> {
    const key = await this.#opts.storage.accountKey(issuer.accountKey);
    if (key.note) this.#log.info({ issuer: issuer.ref, file: key.file }, `${issuer.ref}: ${key.note}`);
    return key.pem;
  }

  #trustFor(issuer: ResolvedIssuer): ReturnType<typeof trustDirectory> {
    const bundle = issuer.acme.caBundle ? Buffer.from(issuer.acme.caBundle, 'base64').toString('utf8') : '';
    const skipVerify = issuer.acme.skipTLSVerify === true;
    const key = JSON.stringify([issuer.acme.server, skipVerify, bundle]);
    let t = this.#trust.get(key);
    if (!t) {
      t = trustDirectory(issuer.acme.server, { skipVerify, ca: [this.#opts.acmeCa ?? '', bundle] });
      this.#trust.set(key, t);
    }
    return t;
  }

  // ------------------------------------------------------------------ reporting

  #statusOf(secretName: string, e: Entry): ManagedCertificateStatus {
    const s = e.stored;
    const real = isReal(s) ? s : undefined;
    const orderer = this.#ordering ? this.#identity : this.#opts.election?.holder();
    const state: CertificateState = e.issuing ? 'issuing' : e.failures > 0 ? 'retrying' : real && satisfies(e.wanted, real) ? 'ready' : 'waiting';
    return {
      secretName,
      certificate: e.wanted.ref,
      ...(e.wanted.issuer ? { issuer: e.wanted.issuer.ref } : {}),
      state,
      ...(s ? { serving: s.meta?.source ?? 'other', notAfter: new Date(s.leaf.validTo).toISOString() } : {}),
      ...(real && e.wanted.issuer ? { renewAt: new Date(renewAt(e.wanted, real)).toISOString() } : {}),
      ...(e.failures > 0 ? { nextAttemptAt: new Date(e.nextAttemptAt).toISOString() } : {}),
      failures: e.failures,
      ...(e.failure?.lastError ? { lastError: e.failure.lastError } : {}),
      ...(orderer ? { orderer } : {}),
    };
  }

  #emit(secretName: string, source: CertificateSource, leaf: X509Certificate): void {
    const event: CertificateWritten = { secretName, source, notAfter: new Date(leaf.validTo), serialNumber: leaf.serialNumber };
    for (const l of [...this.#listeners]) {
      try {
        l(event);
      } catch (err) {
        this.#log.error({ err }, 'certificate write listener failed');
      }
    }
  }
}

/** `namespace/name` of the Certificate, as log lines name it. */
function name(w: WantedCertificate): string {
  return w.ref.replace(/^Certificate /, '');
}

function humanDelay(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  return `${Math.round(ms / 60_000)} min`;
}
