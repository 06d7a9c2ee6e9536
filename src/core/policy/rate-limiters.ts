// The counters behind RateLimitPolicy rules, on rate-limiter-flexible. Each rule gets a fixed-window
// limiter of `requests` per interval and, when it has a burst, a reserve of `burst` requests drawn
// on only when the window is used up (BurstyRateLimiter). Store `memory` counts in this process;
// store `redis` counts in Redis, shared by every gateway replica, and falls back to a local limiter
// of the same size (rate-limiter-flexible's insurance limiter) for as long as Redis does not answer.
// Local counts, the memory store's and the fallback's, are kept by the primary when the gateway runs
// `--workers`, so N workers hold one limit, not N. Limiters live across snapshots, keyed by the
// rule's settings, so a reload keeps counts.

import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import cluster from 'node:cluster';
import { createRequire } from 'node:module';
import type { RateLimiterCluster, RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { RateLimitRule } from './rate-limit-table.js';
import type { RedisLink, RedisLinkStats } from './redis-link.js';
import { LiveKeys, MAX_LIVE_KEYS } from './rate-limit-key-bound.js';

/** What one rule says about one request. */
type Flexible = typeof import('rate-limiter-flexible');
let flexibleLoaded: Flexible | undefined;
// Loaded with the first limiter a rule needs: a proxy whose configuration has no RateLimitPolicy
// (most sidecars) never holds the library.
const flexible = (): Flexible => (flexibleLoaded ??= createRequire(import.meta.url)('rate-limiter-flexible') as Flexible);

export interface RateLimitDecision {
  readonly rule: RateLimitRule;
  readonly allowed: boolean;
  /** Requests per window (the burst reserve is not included). */
  readonly limit: number;
  /** Requests left in the current window. */
  readonly remaining: number;
  /** Seconds until the window starts over; for a refused request, until one more is allowed. */
  readonly resetSeconds: number;
}

/** Counts of limit checks: a request under two limits is checked twice. */
export interface RateLimitStats {
  readonly allowed: number;
  readonly limited: number;
  /** Checks that failed for an unexpected reason; the request was let through. */
  readonly errors: number;
  /** Limits with live counters. */
  readonly limiters: number;
  readonly redis?: RedisLinkStats;
}

export interface RateLimitersOptions {
  readonly logger: Logger;
  /** Shared counters for rules with store `redis`; without it they count in this process. */
  readonly redis?: RedisLink;
  /** Keys one limit counts in this process at once (rate-limit-key-bound.ts). */
  readonly maxLiveKeys?: number;
}

interface Limiter {
  consume(key: string): Promise<RateLimiterRes>;
}

export class RateLimiters {
  readonly #log: Logger;
  readonly #redis: RedisLink | undefined;
  readonly #bySettings = new Map<string, Limiter>();
  /** The keys of limits counted in this process (not in Redis), by the same settings. */
  readonly #liveKeys = new Map<string, LiveKeys>();
  readonly #maxLiveKeys: number;
  /** Rules already told that they asked for Redis and got memory. */
  readonly #warnedNoRedis = new Set<string>();
  #allowed = 0;
  #limited = 0;
  #errors = 0;

  constructor(opts: RateLimitersOptions) {
    this.#log = opts.logger;
    this.#redis = opts.redis;
    this.#maxLiveKeys = opts.maxLiveKeys ?? MAX_LIVE_KEYS;
  }

  /** Counts one request against `rule` under `key`. Never rejects: a failure lets the request through. */
  async consume(rule: RateLimitRule, key: string): Promise<RateLimitDecision | undefined> {
    let res: RateLimiterRes;
    try {
      const limiter = this.#limiterFor(rule);
      res = await limiter.consume(this.#liveKeys.get(rule.settings)?.admit(key) ?? key);
    } catch (rejection) {
      if (rejection instanceof flexible().RateLimiterRes) {
        this.#limited++;
        return { rule, allowed: false, limit: rule.requests, remaining: 0, resetSeconds: Math.max(1, Math.ceil(rejection.msBeforeNext / 1000)) };
      }
      // Not a verdict: a bug or a store failure without insurance. Failing open keeps traffic flowing.
      this.#errors++;
      if (this.#errors === 1 || this.#errors % 1000 === 0) this.#log.error({ err: rejection, rule: rule.id, errors: this.#errors }, 'rate limit check failed; the request was let through');
      return undefined;
    }
    this.#allowed++;
    return { rule, allowed: true, limit: rule.requests, remaining: res.remainingPoints, resetSeconds: Math.max(0, Math.ceil(res.msBeforeNext / 1000)) };
  }

  /** Drops the counters of rules no longer in the configuration. */
  retain(rules: readonly RateLimitRule[]): void {
    const keep = new Set(rules.map((r) => r.settings));
    for (const settings of this.#bySettings.keys()) {
      if (keep.has(settings)) continue;
      this.#bySettings.delete(settings);
      this.#liveKeys.delete(settings);
    }
  }

  stats(): RateLimitStats {
    return {
      allowed: this.#allowed,
      limited: this.#limited,
      errors: this.#errors,
      limiters: this.#bySettings.size,
      ...(this.#redis ? { redis: this.#redis.stats() } : {}),
    };
  }

  #limiterFor(rule: RateLimitRule): Limiter {
    const known = this.#bySettings.get(rule.settings);
    if (known) return known;
    const made = this.#make(rule);
    this.#bySettings.set(rule.settings, made);
    // Redis holds the keys of a shared limit; this process holds the others'.
    if (!(rule.store === 'redis' && this.#redis)) this.#liveKeys.set(rule.settings, new LiveKeys(Math.max(1, rule.intervalSeconds, rule.burstSeconds) * 1000, this.#maxLiveKeys));
    return made;
  }

  #make(rule: RateLimitRule): Limiter {
    // Replicas with the same rule share keys; changed settings get fresh keys rather than old counts.
    const prefix = `meshgate:rl:${rule.id}:${createHash('sha256').update(rule.settings).digest('hex').slice(0, 8)}`;
    const redis = rule.store === 'redis' ? this.#redis : undefined;
    if (rule.store === 'redis' && !redis && !this.#warnedNoRedis.has(rule.id)) {
      this.#warnedNoRedis.add(rule.id);
      this.#log.warn({ rule: rule.id }, 'this rate limit asks for store redis, but this proxy runs without --redis; it counts in this process only');
    }
    const window = (points: number, duration: number, keyPrefix: string): LocalLimiter | RateLimiterRedis => {
      if (!redis) return local({ points, duration, keyPrefix });
      const insurance = local({ points, duration, keyPrefix });
      // Each decision the stand-in makes is reported, so outages are counted.
      const consume = insurance.consume.bind(insurance);
      insurance.consume = (key, n, options) => {
        redis.noteLocalDecision();
        return consume(key, n, options);
      };
      return new (flexible().RateLimiterRedis)({
        storeClient: redis.client,
        points,
        duration,
        keyPrefix,
        // Decide at once while the connection is down instead of waiting for a command to fail.
        rejectIfRedisNotReady: true,
        insuranceLimiter: insurance,
      });
    };
    const main = window(rule.requests, rule.intervalSeconds, prefix);
    if (rule.burst === 0) return main;
    return new (flexible().BurstyRateLimiter)(main, window(rule.burst, rule.burstSeconds, `${prefix}:burst`));
  }
}

type LocalLimiter = RateLimiterMemory | RateLimiterCluster;

/** Counts in this process, or, in a worker of one gateway (`--workers`), in the primary for all of them. */
function local(opts: { points: number; duration: number; keyPrefix: string }): LocalLimiter {
  const { RateLimiterCluster: InPrimary, RateLimiterMemory: InProcess } = flexible();
  return cluster.isWorker ? new InPrimary({ ...opts, timeoutMs: 1000 }) : new InProcess(opts);
}
