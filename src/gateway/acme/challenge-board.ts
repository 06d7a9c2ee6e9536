// Where HTTP-01 key authorizations are kept while an order is in flight. The ACME server's
// validation request may reach any process of the gateway (any worker, any replica behind the load
// balancer), not only the one that orders, so the orderer publishes each answer where all of them
// read it, and tells the ACME server the challenge is ready only once `publish` has resolved:
// - one process: a Map (here);
// - `--workers N` in file mode: the primary keeps the answers for every worker (worker-challenges.ts);
// - replicas in a cluster: a Secret of the gateway's namespace (secret-challenges.ts).

export interface ChallengeBoard {
  /** Resolves once every process that may receive the validation request can answer `token`. */
  publish(token: string, keyAuthorization: string): Promise<void>;
  /** The order is over (valid or not): the token is answered no more. */
  withdraw(token: string): Promise<void>;
  /**
   * The key authorization for `token`, or undefined (404). Asynchronous where the local copy may lag
   * behind the published one: a miss is looked up again where it was published before it counts.
   */
  answer(token: string): string | undefined | Promise<string | undefined>;
  /** Stops following the published answers; nothing is withdrawn (an orderer elsewhere may still need them). */
  close(): void;
}

/** One process orders and answers: a Map. */
export function localChallenges(): ChallengeBoard {
  const answers = new Map<string, string>();
  return {
    publish: async (token, keyAuthorization) => {
      answers.set(token, keyAuthorization);
    },
    withdraw: async (token) => {
      answers.delete(token);
    },
    answer: (token) => answers.get(token),
    close: () => answers.clear(),
  };
}

/**
 * RFC 8555 §8.1: a token is base64url with at least 128 bits of entropy. Anything else is no token an
 * ACME server sent, and is answered 404 without looking further (the look-ups elsewhere cost).
 */
export function plausibleToken(token: string): boolean {
  return /^[A-Za-z0-9_-]{22,128}$/.test(token);
}
