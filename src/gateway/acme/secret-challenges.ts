// HTTP-01 answers of a gateway with several replicas (cluster mode): one Secret of the gateway's
// namespace, `meshgate-acme-http01`, key = token, value = the key authorization with who published
// it and when. The orderer writes it (read, change, write back at the version read, so two orderers
// never lose each other's tokens) before it tells the ACME server the challenge is ready; every
// replica, the orderer included, answers from its watched copy of the namespace's Secrets (the
// informer the credential store already runs), and a token missing there is read again from the
// API server before the answer is 404, so a watch that lags never fails a validation. Those re-reads
// are shared and spaced out: a flood of requests for made-up tokens costs the API server a few reads
// a second, not one per request. Gateways of one namespace share the Secret, so a replica of another
// gateway that receives the validation answers it too.

import type { Logger } from 'pino';
import type { SecretReader, SecretWriter } from '../../core/tls/types.js';
import { plausibleToken, type ChallengeBoard } from './challenge-board.js';

export const CHALLENGE_SECRET = 'meshgate-acme-http01';

/** Longest an answer is kept when its orderer never withdrew it (it died): twice the longest order. */
const DEFAULT_MAX_AGE_MS = 10 * 60_000;
/** Least time between two re-reads of the Secret on a miss. */
const DEFAULT_REREAD_GAP_MS = 200;
/**
 * Longest a re-read may take: the ACME server's validation request is waiting on it, and re-reads
 * queue one behind the other, so an API server that does not answer must cost a 404, not a hang.
 */
const DEFAULT_REREAD_TIMEOUT_MS = 3000;
const WRITE_ATTEMPTS = 5;

interface Published {
  readonly keyAuthorization: string;
  /** The Lease that made the publisher the orderer, and the publisher's identity in it. */
  readonly lease: string;
  readonly by: string;
  readonly at: string;
}

export interface SecretChallengesOptions {
  readonly secrets: SecretReader & SecretWriter;
  /** This replica's identity, and the Lease under which it orders. */
  readonly identity: string;
  readonly lease: string;
  readonly logger: Logger;
  readonly maxAgeMs?: number;
  readonly rereadGapMs?: number;
  readonly rereadTimeoutMs?: number;
  readonly now?: () => number;
}

export class SecretChallenges implements ChallengeBoard {
  readonly #opts: SecretChallengesOptions;
  readonly #now: () => number;
  /** The re-read under way, and the one after it that requests arriving meanwhile share. */
  #inFlight: Promise<unknown> | undefined;
  #queued: Promise<Readonly<Record<string, string>> | undefined> | undefined;
  #lastRead = 0;
  /** This replica's writes, one after the other: concurrent ones would only conflict with each other. */
  #writes: Promise<unknown> = Promise.resolve();

  constructor(opts: SecretChallengesOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  async publish(token: string, keyAuthorization: string): Promise<void> {
    const entry: Published = { keyAuthorization, lease: this.#opts.lease, by: this.#opts.identity, at: new Date(this.#now()).toISOString() };
    await this.#update((data) => {
      data[token] = JSON.stringify(entry);
      return true;
    });
  }

  async withdraw(token: string): Promise<void> {
    await this.#update((data) => {
      if (!(token in data)) return false;
      delete data[token];
      return true;
    });
  }

  /**
   * Called on becoming the orderer: answers published under the same Lease by another replica are
   * what a predecessor left when it died or was cut off mid-order; nobody completes those orders.
   */
  async withdrawLeftovers(): Promise<number> {
    let removed = 0;
    await this.#update((data) => {
      removed = 0;
      for (const [token, text] of Object.entries(data)) {
        const p = parse(text);
        if (p && p.lease === this.#opts.lease && p.by !== this.#opts.identity) {
          delete data[token];
          removed++;
        }
      }
      return removed > 0;
    });
    return removed;
  }

  answer(token: string): string | undefined | Promise<string | undefined> {
    const local = parse(this.#opts.secrets.get(CHALLENGE_SECRET)?.data[token]);
    if (local) return local.keyAuthorization;
    if (!plausibleToken(token)) return undefined;
    return this.#reread().then((data) => parse(data?.[token])?.keyAuthorization);
  }

  close(): void {
    // The informer belongs to the credential store; published answers stay for whoever still orders.
  }

  /** A read of the Secret that starts after this call: one that started earlier may predate the publish asked about. */
  #reread(): Promise<Readonly<Record<string, string>> | undefined> {
    if (this.#queued) return this.#queued;
    const before = this.#inFlight ?? Promise.resolve();
    const next = before.then(async () => {
      const wait = this.#lastRead + (this.#opts.rereadGapMs ?? DEFAULT_REREAD_GAP_MS) - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      // Requests from now on need a read that starts after them.
      this.#queued = undefined;
      this.#lastRead = Date.now();
      const read = this.#opts.secrets.fetch(CHALLENGE_SECRET, { timeoutMs: this.#opts.rereadTimeoutMs ?? DEFAULT_REREAD_TIMEOUT_MS }).then(
        (s) => s?.data,
        (err: unknown) => {
          this.#opts.logger.warn({ secret: CHALLENGE_SECRET, error: (err as Error).message }, 'cannot read the HTTP-01 answers from the API server; answering 404');
          return undefined;
        },
      );
      this.#inFlight = read;
      try {
        return await read;
      } finally {
        if (this.#inFlight === read) this.#inFlight = undefined;
      }
    });
    this.#queued = next;
    return next;
  }

  /**
   * Read, change, write back at the version read; again on a conflict (another replica wrote). This
   * replica's own orders (one per certificate, at once) take turns, or they would use up each
   * other's attempts. Old leftovers go on the way.
   */
  #update(change: (data: Record<string, string>) => boolean): Promise<void> {
    const turn = this.#writes.then(() => this.#write(change));
    this.#writes = turn.catch(() => undefined);
    return turn;
  }

  async #write(change: (data: Record<string, string>) => boolean): Promise<void> {
    const { secrets } = this.#opts;
    const maxAge = this.#opts.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
    for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
      const current = await secrets.fetch(CHALLENGE_SECRET);
      const data = { ...current?.data };
      let changed = change(data);
      for (const [token, text] of Object.entries(data)) {
        const at = Date.parse(parse(text)?.at ?? '');
        if (Number.isNaN(at) || this.#now() - at > maxAge) {
          delete data[token];
          changed = true;
        }
      }
      if (!changed) return;
      const secret = {
        type: 'Opaque',
        data,
        labels: { 'app.kubernetes.io/managed-by': 'meshgate' },
        annotations: { 'meshgate.io/description': 'ACME HTTP-01 answers of orders in flight, read by every gateway replica of this namespace' },
      };
      const put = current
        ? await secrets.put(CHALLENGE_SECRET, secret, current.resourceVersion !== undefined ? { ifResourceVersion: current.resourceVersion } : {})
        : await secrets.put(CHALLENGE_SECRET, secret, { onlyCreate: true });
      if (current ? !put.conflict : put.created) return;
    }
    throw new Error(`Secret ${secrets.namespace}/${CHALLENGE_SECRET} changed ${WRITE_ATTEMPTS} times while being written; giving up this time`);
  }
}

function parse(text: string | undefined): Published | undefined {
  if (!text) return undefined;
  try {
    const v = JSON.parse(text) as Partial<Published>;
    return typeof v.keyAuthorization === 'string' && typeof v.lease === 'string' && typeof v.by === 'string' && typeof v.at === 'string' ? (v as Published) : undefined;
  } catch {
    return undefined;
  }
}
