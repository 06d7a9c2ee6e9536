// Cluster mode's Authenticator: a proxy's bearer token is its projected service-account token
// (audience `istio-ca`), and the API server says whose it is (TokenReview), as istiod does. The
// identity is the review's `status.user.username`, `system:serviceaccount:<ns>:<sa>`, and nothing the
// caller sends. Any doubt refuses: a review that fails, a token valid for other audiences only, a
// user that is not a service account (by name and by the `system:serviceaccounts` group).
//
// Accepted tokens are remembered for a minute (by digest, never the token), so that a proxy's
// acknowledgements do not each cost the API server a review; a refusal is never remembered.

import { createHash } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { isRecord } from '../core/config/load.js';
import { parseSpiffeId } from '../core/pki/spiffe.js';
import { describeError, kubeJson, serverOf } from '../core/sources/kube-request.js';
import type { AuthResult, Authenticator, Caller } from './token-authenticator.js';

/** Istio's TOKEN_AUDIENCES default: what a proxy's projected token must be for. */
export const ISTIO_CA_AUDIENCE = 'istio-ca';
export const TOKEN_REVIEW_PATH = '/apis/authentication.k8s.io/v1/tokenreviews';
const SERVICE_ACCOUNT_USER = /^system:serviceaccount:([^:]+):([^:]+)$/;
const SERVICE_ACCOUNTS_GROUP = 'system:serviceaccounts';

export interface TokenReviewOptions {
  readonly kubeconfig: KubeConfig;
  readonly audiences?: readonly string[];
  /** How long an accepted token is remembered (default 60 s; 0: never). */
  readonly cacheMs?: number;
  readonly now?: () => number;
  readonly logger?: Logger;
}

export class TokenReviewAuthenticator implements Authenticator {
  readonly #kc: KubeConfig;
  readonly #audiences: readonly string[];
  readonly #cacheMs: number;
  readonly #now: () => number;
  readonly #log: Logger | undefined;
  readonly #cache = new Map<string, { caller: Caller; until: number }>();

  constructor(opts: TokenReviewOptions) {
    this.#kc = opts.kubeconfig;
    this.#audiences = opts.audiences ?? [ISTIO_CA_AUDIENCE];
    this.#cacheMs = opts.cacheMs ?? 60_000;
    this.#now = opts.now ?? Date.now;
    this.#log = opts.logger;
  }

  get description(): string {
    return `Kubernetes TokenReview at ${serverOf(this.#kc)} (audiences ${this.#audiences.join(', ')})`;
  }

  async authenticate(token: string): Promise<AuthResult> {
    const digest = createHash('sha256').update(token, 'utf8').digest('hex');
    const now = this.#now();
    const cached = this.#cache.get(digest);
    if (cached && cached.until > now) return { ok: true, caller: cached.caller };
    this.#cache.delete(digest);
    let review: Record<string, unknown>;
    try {
      review = (await kubeJson(this.#kc, 'POST', TOKEN_REVIEW_PATH, [200, 201], {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenReview',
        spec: { token, audiences: this.#audiences },
      })).body;
    } catch (err) {
      const message = `TokenReview failed: ${describeError(err)}`;
      this.#log?.error({ error: describeError(err) }, 'TokenReview failed; the caller is refused');
      return { ok: false, message };
    }
    const result = readReview(review, this.#audiences);
    if (!result.ok) return result;
    if (this.#cacheMs > 0) {
      // Bounded: a flood of distinct valid tokens must not grow memory without end.
      if (this.#cache.size >= 10_000) this.#cache.clear();
      this.#cache.set(digest, { caller: result.caller, until: now + this.#cacheMs });
    }
    return result;
  }
}

/** The caller a TokenReview's answer names, or why it names none. */
export function readReview(review: Record<string, unknown>, audiences: readonly string[]): AuthResult {
  const status = isRecord(review.status) ? review.status : {};
  if (status.authenticated !== true) {
    return { ok: false, message: `token not authenticated${typeof status.error === 'string' && status.error ? `: ${status.error}` : ''}` };
  }
  // An API server that ignores audiences answers without them: then the token is not known to be ours.
  const granted = Array.isArray(status.audiences) ? status.audiences.filter((a): a is string => typeof a === 'string') : [];
  if (!granted.some((a) => audiences.includes(a))) return { ok: false, message: `token is not for audience ${audiences.join(' or ')}` };
  const user = isRecord(status.user) ? status.user : {};
  const username = typeof user.username === 'string' ? user.username : '';
  const m = SERVICE_ACCOUNT_USER.exec(username);
  // The name alone could come from an authenticator that lets users choose theirs; the API server
  // puts every service account in this group, and istiod requires it too.
  const groups = Array.isArray(user.groups) ? user.groups : [];
  if (!m || !groups.includes(SERVICE_ACCOUNTS_GROUP)) return { ok: false, message: `${JSON.stringify(username)} is not a service account` };
  const caller = { namespace: m[1]!, serviceAccount: m[2]! };
  if (!parseSpiffeId(`spiffe://cluster.local/ns/${caller.namespace}/sa/${caller.serviceAccount}`)) return { ok: false, message: `${username} does not make a valid workload identity` };
  return { ok: true, caller };
}
