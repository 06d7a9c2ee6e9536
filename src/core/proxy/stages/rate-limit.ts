// The rate-limit stage of the request pipeline, where it meets RateLimitPolicy and the local rate
// limits of EnvoyFilters: once the route is known (on a sidecar's inbound side, the port), every limit
// bound to it counts the request, and either the request goes on (with x-ratelimit-* headers on its
// response, for RateLimitPolicy limits and EnvoyFilter ones with enable_x_ratelimit_headers) or it is
// answered: 429 with Retry-After for a RateLimitPolicy,
// Envoy's local rate limit reply (its status and response_headers_to_add) for an
// EnvoyFilter. A route without limits goes on at once, synchronously.

import type { LimitPosition } from '../../policy/envoy-filter-position.js';
import { rateLimitKey, type RateLimitSubject } from '../../policy/rate-limit-key.js';
import type { RateLimitDecision, RateLimiters } from '../../policy/rate-limiters.js';
import { clientAddressOf } from '../client-address.js';
import { envoyRateLimited, rateLimited } from '../respond.js';
import type { Exchange, StageResult } from './exchange.js';
import { DONE, factsOf } from './exchange.js';

export interface RateLimitContext {
  readonly limiters: RateLimiters;
}

/**
 * A rate-limit stage for the limits that count at `positions` of the pipeline: RateLimitPolicy's
 * after authorization, an EnvoyFilter's where its patch put the filter in Istio's chain
 * (policy/envoy-filter-position.ts), so that a request denied before the filter takes no token.
 */
export function rateLimitAt(...positions: LimitPosition[]): (ex: Exchange) => StageResult | Promise<StageResult> {
  const at = new Set(positions);
  return (ex) => rateLimit(ex, at);
}

/**
 * Every limit at `at` bound to the request's route counts it. Synchronous (no promise) when the route
 * has none; otherwise the request goes on, with x-ratelimit-* headers describing the limit closest to
 * refusing, or is answered 429 with Retry-After by the one that refused.
 */
function rateLimit(ex: Exchange, at: ReadonlySet<LimitPosition>): StageResult | Promise<StageResult> {
  const { ctx, snapshot, virtualHost, route, res, listener, req } = ex;
  const limits = ctx.rateLimits;
  // Most proxies have no limit at all: nothing to look up, nothing allocated.
  const table = limits && snapshot?.rateLimits.rules.length ? snapshot.rateLimits : undefined;
  // A sidecar's inbound side has no routes: its limits are the port's.
  const bindings = table && (listener.localApp ? table.inbound(listener.localApp.ports?.() ?? [listener.port]) : virtualHost && route && table.lookup(virtualHost, route));
  if (!bindings || !limits) return undefined;
  const facts = factsOf(ex);
  const subject: RateLimitSubject = {
    headers: facts.headers,
    clientIp: () => clientAddressOf(ex),
    principal: () => listener.peerPrincipal?.(req),
    connection: () => connectionId(req),
  };
  const pending: Array<Promise<RateLimitDecision | undefined>> = [];
  for (const b of bindings) {
    if (!at.has(b.rule.position)) continue;
    if (b.onlyHost !== undefined && b.onlyHost !== facts.host) continue;
    // filter_enabled: a request outside the fraction is not counted at all.
    if (b.rule.envoy && !chance(b.rule.envoy.enabled, ctx.random)) continue;
    const key = rateLimitKey(b.rule.key, subject);
    if (key !== undefined) pending.push(limits.limiters.consume(b.rule, key));
  }
  if (pending.length === 0) return undefined;
  return Promise.all(pending).then(
    (decisions): StageResult => {
      // The client gave up while the counters were asked: nothing left to answer.
      if (res.destroyed) return DONE;
      // enable_x_ratelimit_headers: Envoy's filter adds them to whatever response the request gets,
      // its own 429, one from a later filter, or the upstream's.
      const drafted = mostTelling(decisions.filter((d) => d?.rule.envoy?.xRateLimitHeaders));
      if (drafted?.rule.envoy) setDraftHeaders(res, drafted, drafted.rule.envoy.tokenBucket.maxTokens);
      // filter_enforced: a refusal outside the fraction lets the request go on.
      const refused = decisions.find((d) => d?.rule.envoy && !d.allowed && chance(d.rule.envoy.enforced, ctx.random));
      if (refused?.rule.envoy) return envoyRateLimited(refused.rule.envoy.status, refused.rule.envoy.responseHeaders);
      const shown = mostTelling(decisions.filter((d) => !d?.rule.envoy));
      if (shown) {
        res.setHeader('x-ratelimit-limit', String(shown.limit));
        res.setHeader('x-ratelimit-remaining', String(shown.remaining));
        res.setHeader('x-ratelimit-reset', String(shown.resetSeconds));
      }
      if (shown && !shown.allowed) {
        res.setHeader('retry-after', String(shown.resetSeconds));
        return rateLimited(shown.rule.id);
      }
      return undefined;
    },
    (): StageResult => {
      res.destroy(); // a bug past this point must cost one request, not the process
      return DONE;
    },
  );
}

/**
 * DRAFT_VERSION_03 as Envoy's local rate limit writes it: the bucket's max_tokens, the tokens left,
 * and 0 seconds while a token is left, else the seconds until the next one. A bucket with a burst
 * (max_tokens above tokens_per_fill) counts its reserve apart: remaining is what is left of
 * tokens_per_fill.
 */
function setDraftHeaders(res: Exchange['res'], d: RateLimitDecision, maxTokens: number): void {
  res.setHeader('x-ratelimit-limit', String(maxTokens));
  res.setHeader('x-ratelimit-remaining', String(d.remaining));
  res.setHeader('x-ratelimit-reset', String(d.remaining > 0 ? 0 : d.resetSeconds));
}

/** A refusal with the longest wait, else the allowance with the fewest requests left. */
function mostTelling(decisions: ReadonlyArray<RateLimitDecision | undefined>): RateLimitDecision | undefined {
  let best: RateLimitDecision | undefined;
  for (const d of decisions) {
    if (!d) continue;
    if (!best) best = d;
    else if (!d.allowed && (best.allowed || d.resetSeconds > best.resetSeconds)) best = d;
    else if (d.allowed && best.allowed && d.remaining < best.remaining) best = d;
  }
  return best;
}

/** True for a `fraction` of calls (always at 1, never at 0, so the usual 100% asks for no random number). */
function chance(fraction: number, random: () => number): boolean {
  return fraction >= 1 || (fraction > 0 && random() < fraction);
}

// Downstream connections by their socket (an HTTP/2 request: its session's), for buckets per connection.
const connectionIds = new WeakMap<object, string>();
let nextConnection = 0;

function connectionId(req: Exchange['req']): string {
  const stream = (req as unknown as { stream?: { session?: object } }).stream;
  const owner: object = stream?.session ?? req.socket;
  let id = connectionIds.get(owner);
  // The process id keeps connections of different --workers apart in the primary's counters.
  if (id === undefined) connectionIds.set(owner, (id = `${process.pid}:${++nextConnection}`));
  return id;
}
