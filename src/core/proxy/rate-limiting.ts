// One proxy's rate limiting, wired the same way in every role that forwards (the gateway, a
// sidecar's outbound side): the counters, the Redis link when `--redis` is given, and the request
// path's context. Counters of limits a reload removed are let go; unchanged ones carry on counting.

import type { Logger } from 'pino';
import { RateLimiters } from '../policy/rate-limiters.js';
import { RedisLink } from '../policy/redis-link.js';
import type { SnapshotHolder } from '../snapshot/holder.js';
import type { RateLimitContext } from './stages/rate-limit.js';

export interface RateLimitingOptions {
  readonly holder: SnapshotHolder;
  readonly logger: Logger;
  /** Redis for limits with `store: redis`, shared by every proxy that points at it. */
  readonly redisUrl?: string;
}

export interface RateLimiting {
  readonly limiters: RateLimiters;
  /** What the request path is given (HttpHandlerContext.rateLimits). */
  readonly context: RateLimitContext;
  /** Connects to Redis, if any; resolves either way (unreachable means local limits for now). */
  start(): Promise<void>;
  close(): Promise<void>;
}

export function createRateLimiting(opts: RateLimitingOptions): RateLimiting {
  const redis = opts.redisUrl ? new RedisLink({ url: opts.redisUrl, logger: opts.logger }) : undefined;
  const limiters = new RateLimiters({ logger: opts.logger, ...(redis ? { redis } : {}) });
  opts.holder.onSwap((s) => limiters.retain(s.rateLimits.rules));
  return {
    limiters,
    context: { limiters },
    start: async () => {
      await redis?.start();
    },
    close: async () => {
      await redis?.close();
    },
  };
}
