// Where the request path meets RateLimitPolicy: once the route is known, every limit bound to it
// counts the request, and either the request goes on (with x-ratelimit-* headers on its response)
// or it is answered 429 with Retry-After. A route without limits goes on at once, synchronously.

import type { ServerResponse } from 'node:http';
import type { CompiledRoute, RequestFacts, VirtualHost } from '../routing/types.js';
import type { RateLimitTable } from '../policy/rate-limit-table.js';
import { rateLimitKey, type RateLimitSubject } from '../policy/rate-limit-key.js';
import type { RateLimitDecision, RateLimiters } from '../policy/rate-limiters.js';
import { trustedClientAddress } from './client-address.js';
import { rateLimited, type LocalReply } from './respond.js';

export interface RateLimitContext {
  readonly limiters: RateLimiters;
  /** Proxies in front of the gateway that append to x-forwarded-for (Envoy's xff_num_trusted_hops). */
  readonly trustedProxies: number;
}

/** What the gate needs to know about the request besides its facts. */
export interface RateLimitRequest {
  readonly facts: RequestFacts;
  /** The connection's peer address. */
  readonly peer: string;
  principal(): string | undefined;
}

/**
 * Calls `proceed` when every limit on the route admits the request, or `reply` with a 429 when one
 * does not. Response headers describe the limit closest to refusing (or the one that refused).
 */
export function admitRateLimited(
  ctx: RateLimitContext | undefined,
  table: RateLimitTable | undefined,
  virtualHost: VirtualHost,
  route: CompiledRoute,
  request: RateLimitRequest,
  res: ServerResponse,
  reply: (r: LocalReply) => void,
  proceed: () => void,
): void {
  const bindings = ctx && table?.lookup(virtualHost, route);
  if (!bindings) return proceed();
  const subject: RateLimitSubject = {
    headers: request.facts.headers,
    clientIp: () => trustedClientAddress(request.peer, request.facts.headers['x-forwarded-for'], ctx.trustedProxies),
    principal: () => request.principal(),
  };
  const pending: Array<Promise<RateLimitDecision | undefined>> = [];
  for (const b of bindings) {
    if (b.onlyHost !== undefined && b.onlyHost !== request.facts.host) continue;
    const key = rateLimitKey(b.rule.key, subject);
    if (key !== undefined) pending.push(ctx.limiters.consume(b.rule, key));
  }
  if (pending.length === 0) return proceed();
  void Promise.all(pending).then((decisions) => {
    // The client gave up while the counters were asked: nothing left to answer.
    if (res.destroyed) return;
    const shown = mostTelling(decisions);
    if (shown) {
      res.setHeader('x-ratelimit-limit', String(shown.limit));
      res.setHeader('x-ratelimit-remaining', String(shown.remaining));
      res.setHeader('x-ratelimit-reset', String(shown.resetSeconds));
    }
    if (shown && !shown.allowed) {
      res.setHeader('retry-after', String(shown.resetSeconds));
      reply(rateLimited(shown.rule.id));
      return;
    }
    proceed();
  }).catch(() => res.destroy()); // a bug past this point must cost one request, not the process
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
