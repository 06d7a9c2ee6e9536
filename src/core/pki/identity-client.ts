// A proxy's side of the CA: creates a key and CSR, asks the CA (through whatever transport the proxy
// has, injected as `requestCertificate`), checks the answer, and serves it as the proxy's workload
// certificate. The certificate is renewed when about half its lifetime remains (Istio's
// SECRET_GRACE_PERIOD_RATIO 0.5 with ±0.01 jitter, so a fleet does not renew in lock-step). The
// lifetime counts from when the certificate arrived, as Istio's agent counts it, not from NotBefore:
// the CA backdates NotBefore by 2 minutes for clock skew, which would make a short-lived certificate
// look half spent on arrival. A failed request is retried with back-off while the current
// certificate keeps serving.

import { createPrivateKey } from 'node:crypto';
import type { Logger } from 'pino';
import { createWorkloadCsrAsync } from './workload-csr.js';
import { chainToRoot, parseCertificates, pemCertificates } from './pem-chain.js';
import { spiffeIdsOfCertificate } from './spiffe.js';
import type { IdentityProvider, WorkloadCertificate } from './types.js';
import type { X509Certificate } from 'node:crypto';

export const DEFAULT_SECRET_TTL_SECONDS = 24 * 3600;
const GRACE_RATIO = 0.5;
const GRACE_JITTER = 0.01;
const DEFAULT_BACKOFF = { initialMs: 500, maxMs: 30_000 };
/** setTimeout's ceiling (about 24.8 days); a 90-day certificate's half-life is waited for in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface IdentityClientOptions {
  /** The CA's answer, leaf first, root last. */
  requestCertificate(csrPem: string, ttlSeconds: number): Promise<string[]>;
  /** The proxy's configured trust bundle; a chain not leading to it is refused. */
  rootCertPem: string;
  ttlSeconds?: number;
  keyType?: 'rsa' | 'ec';
  now?: () => Date;
  random?: () => number;
  log?: Logger;
  /** Retry delays after a failed request: `initialMs` doubling up to `maxMs` (0.5 s to 30 s). */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Runs `fn` after `ms`; returns a function that cancels it (default: an unref'd setTimeout). */
  schedule?: (fn: () => void, ms: number) => () => void;
}

/**
 * Milliseconds from `now` until the certificate should be renewed: when 0.5 ± 0.01 of its lifetime,
 * counted from `obtainedAt` (when it arrived), remains.
 */
export function rotationDelayMs(cert: { obtainedAt: Date; notAfter: Date }, now: Date, random: () => number): number {
  const ratio = GRACE_RATIO + (random() * 2 - 1) * GRACE_JITTER;
  const lifetime = cert.notAfter.getTime() - cert.obtainedAt.getTime();
  const rotateAt = cert.notAfter.getTime() - ratio * lifetime;
  return Math.max(0, Math.round(rotateAt - now.getTime()));
}

function unrefTimeout(fn: () => void, ms: number): () => void {
  const timer = setTimeout(fn, ms);
  timer.unref();
  return () => clearTimeout(timer);
}

/**
 * Checks what the CA sent for our key: the leaf holds `keyPem`'s public key, carries exactly one SPIFFE
 * id, is not a CA, has not expired, and the chain leads to one of `roots`.
 */
export function acceptIssuedChain(
  chain: readonly string[],
  keyPem: string,
  roots: readonly X509Certificate[],
  rootCertPem: string,
  now: Date,
): { ok: true; cert: WorkloadCertificate } | { ok: false; message: string } {
  // One PEM per element is the contract, but a CA that puts several into one element is read as well.
  const pems = chain.flatMap(pemCertificates);
  if (pems.length === 0) return { ok: false, message: 'the CA answered without a certificate' };
  const parsed = parseCertificates(pems);
  if (!parsed.ok) return { ok: false, message: `certificate ${parsed.index} of the answer does not parse: ${parsed.message}` };
  const leaf = parsed.certs[0]!;
  if (!leaf.checkPrivateKey(createPrivateKey(keyPem))) return { ok: false, message: 'the leaf certificate is not for our key' };
  if (leaf.ca) return { ok: false, message: 'the leaf certificate is a CA certificate' };
  const ids = spiffeIdsOfCertificate(leaf);
  if (ids.length !== 1) return { ok: false, message: `the leaf certificate carries ${ids.length} SPIFFE ids, not one` };
  const notBefore = new Date(leaf.validFrom);
  const notAfter = new Date(leaf.validTo);
  if (notAfter.getTime() <= now.getTime()) return { ok: false, message: `the leaf certificate expired at ${notAfter.toISOString()}` };
  const walk = chainToRoot(parsed.certs, roots);
  if (!walk.ok) return { ok: false, message: `the chain does not lead to our trust bundle: ${walk.message}` };
  // The chain is presented as the CA sent it, up to the trusted root and with it when the CA sent it
  // (Istio's workloads present leaf, intermediate, root: the Plug in CA task checks the third).
  const rootSent = parsed.certs[walk.length]?.fingerprint256 === walk.root.fingerprint256;
  return {
    ok: true,
    cert: { spiffeId: ids[0]!, certChainPem: pems.slice(0, walk.length + (rootSent ? 1 : 0)).join(''), keyPem, rootCertPem, notBefore, notAfter },
  };
}

export class IdentityClient implements IdentityProvider {
  readonly #opts: IdentityClientOptions;
  readonly #roots: X509Certificate[];
  readonly #rootCertPem: string;
  readonly #backoff: { initialMs: number; maxMs: number };
  readonly #listeners = new Set<(cert: WorkloadCertificate) => void>();
  #cert: WorkloadCertificate | undefined;
  #cancelTimer: (() => void) | undefined;
  #failures = 0;
  #closed = false;
  #started: Promise<void> | undefined;
  #first: { resolve(): void; reject(err: Error): void } | undefined;

  constructor(opts: IdentityClientOptions) {
    this.#opts = opts;
    const pems = pemCertificates(opts.rootCertPem);
    const parsed = parseCertificates(pems);
    // A proxy without a usable trust bundle is misconfigured from the start: a bug of its caller.
    if (pems.length === 0 || !parsed.ok) throw new TypeError('IdentityClient: rootCertPem holds no readable certificate');
    this.#roots = parsed.certs;
    this.#rootCertPem = pems.join('');
    this.#backoff = { ...DEFAULT_BACKOFF, ...opts.backoff };
  }

  /** Resolves once the first certificate is held; until then it keeps asking, with back-off. */
  start(): Promise<void> {
    if (this.#started) return this.#started;
    this.#started = new Promise<void>((resolve, reject) => {
      this.#first = { resolve, reject };
    });
    // Whoever awaits start() sees a rejection; a caller that dropped the promise must not crash the process.
    this.#started.catch(() => {});
    if (this.#closed) this.#first?.reject(new Error('identity client closed'));
    else void this.#request();
    return this.#started;
  }

  current(): WorkloadCertificate {
    if (!this.#cert) throw new Error('IdentityClient.current() before start() resolved');
    return this.#cert;
  }

  onRotate(listener: (cert: WorkloadCertificate) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    if (!this.#cert) this.#first?.reject(new Error('identity client closed before a certificate arrived'));
  }

  async #request(): Promise<void> {
    const ttl = this.#opts.ttlSeconds ?? DEFAULT_SECRET_TTL_SECONDS;
    let outcome: ReturnType<typeof acceptIssuedChain>;
    try {
      const csr = await createWorkloadCsrAsync({ keyType: this.#opts.keyType ?? 'rsa' });
      if (this.#closed) return;
      const chain = await this.#opts.requestCertificate(csr.csrPem, ttl);
      if (this.#closed) return;
      outcome = Array.isArray(chain) ? acceptIssuedChain(chain, csr.keyPem, this.#roots, this.#rootCertPem, this.#now()) : { ok: false, message: 'the CA answer is not a list' };
    } catch (err) {
      if (this.#closed) return;
      outcome = { ok: false, message: (err as Error)?.message ?? String(err) };
    }

    if (!outcome.ok) {
      this.#failures++;
      const delay = Math.min(this.#backoff.maxMs, this.#backoff.initialMs * 2 ** Math.min(this.#failures - 1, 30));
      this.#opts.log?.warn(
        { attempt: this.#failures, retryInMs: delay, servingUntil: this.#cert?.notAfter.toISOString() },
        `workload certificate request failed: ${outcome.message}`,
      );
      this.#schedule(delay);
      return;
    }

    const rotated = this.#cert !== undefined;
    this.#failures = 0;
    this.#cert = outcome.cert;
    this.#opts.log?.info({ spiffeId: outcome.cert.spiffeId, notAfter: outcome.cert.notAfter.toISOString() }, rotated ? 'workload certificate rotated' : 'workload certificate obtained');
    const now = this.#now();
    // Never faster than the retry pace, even when a CA hands out a certificate already past its half-life.
    this.#schedule(Math.max(this.#backoff.initialMs, rotationDelayMs({ obtainedAt: now, notAfter: outcome.cert.notAfter }, now, this.#opts.random ?? Math.random)));
    if (!rotated) this.#first?.resolve();
    else {
      for (const listener of [...this.#listeners]) {
        try {
          listener(outcome.cert);
        } catch (err) {
          this.#opts.log?.error({ err }, 'a certificate rotation listener threw');
        }
      }
    }
  }

  #schedule(delayMs: number): void {
    if (this.#closed) return;
    const step = Math.min(delayMs, MAX_TIMER_MS);
    this.#cancelTimer = (this.#opts.schedule ?? unrefTimeout)(() => (step < delayMs ? this.#schedule(delayMs - step) : void this.#request()), step);
  }

  #now(): Date {
    return this.#opts.now?.() ?? new Date();
  }
}
