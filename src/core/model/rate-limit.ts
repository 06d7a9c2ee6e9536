// Readonly shape of meshgate's own meshgate.io/v1 RateLimitPolicy: which traffic it attaches to
// (a VirtualService, one of its http routes, or a Gateway host), what a client is (its address, a
// header, or its certificate identity), and how many requests it may make. Istio has no such kind;
// validation (core/config/validate-rate-limit.ts) guarantees this shape before anything reads it.

export type RateLimitTargetRef =
  | { readonly kind: 'VirtualService'; readonly name: string; /** An `http[].name` of that VirtualService. */ readonly route?: string }
  | { readonly kind: 'Gateway'; readonly name: string; /** One exact host name the Gateway serves. */ readonly host?: string }
  | { readonly kind: 'HTTPRoute'; readonly name: string; /** A `rules[].name` of that Gateway API HTTPRoute. */ readonly route?: string };

/** Exactly one member is set: what requests are counted by. */
export interface RateLimitKey {
  /** The client address: the peer, or the x-forwarded-for entry `--trusted-proxies` points at. */
  readonly clientIp?: Record<string, never>;
  readonly header?: { readonly name: string };
  /** The SPIFFE principal of an mTLS peer; at the edge, the URI SAN of the verified client certificate. */
  readonly principal?: Record<string, never>;
}

export interface RateLimit {
  readonly key: RateLimitKey;
  /** Requests per `interval` for one key. */
  readonly requests: number;
  /** A duration in whole seconds (`1m`, `30s`, `1h`). */
  readonly interval: string;
  /** Extra requests a key may make above `requests` in a burst (default 0). */
  readonly burst?: number;
}

export type RateLimitStore = 'memory' | 'redis';

export interface RateLimitPolicySpec {
  readonly targetRef: RateLimitTargetRef;
  readonly limits: readonly RateLimit[];
  /** `memory` (default): counted in each gateway process; `redis`: shared by every replica. */
  readonly store?: RateLimitStore;
}
