// What a rate limit is, in words and in JSON, for the tools that show a proxy's configuration:
// `meshgate routes` and the admin port's /routes (the limits on each route), `meshgate explain` (the
// limits a request meets, and whether and where each counts it), and the admin port's /rate_limits.
// An EnvoyFilter's local rate limit is named as `istioctl proxy-config` would let one find it: the
// EnvoyFilter and patch, the token bucket, whose bucket it is and where the filter sits in the chain.

import type { IncomingHttpHeaders } from 'node:http';
import { POSITION_TEXT } from './envoy-filter-position.js';
import type { BucketScope, RateLimitBinding, RateLimitRule } from './rate-limit-table.js';

/** One line: the limit, its bucket or key, and where in the pipeline it counts. */
export function describeRule(rule: RateLimitRule): string {
  const e = rule.envoy;
  if (!e) {
    const burst = rule.burst > 0 ? ` + burst ${rule.burst}` : '';
    return `${rule.id}: ${rule.requests} requests per ${rule.intervalSeconds}s${burst}, ${keyText(rule)}, store ${rule.store}; counted ${POSITION_TEXT[rule.position]}`;
  }
  const b = e.tokenBucket;
  const fractions = [e.enabled < 1 && `filter_enabled ${percent(e.enabled)}`, e.enforced < 1 && `filter_enforced ${percent(e.enforced)}${e.enforced === 0 ? ' (shadow: never refuses)' : ''}`, e.status !== 429 && `status ${e.status}`, e.xRateLimitHeaders && 'x-ratelimit-* headers'].filter(Boolean);
  return `${rule.id}: token bucket max_tokens ${b.maxTokens}, tokens_per_fill ${b.tokensPerFill}, fill_interval ${b.fillIntervalMs / 1000}s; ${keyText(rule)}${fractions.length ? `; ${fractions.join(', ')}` : ''}; ${e.placement}: counted ${POSITION_TEXT[rule.position]}`;
}

/** Whose count a request lands in. */
function keyText(rule: RateLimitRule): string {
  const k = rule.key;
  const bucket = rule.envoy ? bucketText(rule.envoy.bucket) : '';
  switch (k.kind) {
    case 'proxy':
      return `one bucket for ${bucket}`;
    case 'connection':
      return `one bucket per downstream connection, for ${bucket}`;
    case 'header':
      return `one count per value of header ${k.name}`;
    case 'principal':
      return 'one count per client certificate identity';
    case 'clientIp':
      return 'one count per client address';
  }
}

function bucketText(s: BucketScope): string {
  if (s.inboundPort !== undefined) return s.inboundPort === '*' ? 'the inbound side (every port)' : `inbound port ${s.inboundPort}`;
  if (s.route !== undefined) return `route ${s.route} of virtual host ${s.virtualHost} (its own configuration)`;
  if (s.virtualHost !== undefined) return `virtual host ${s.virtualHost} (its own configuration)`;
  return `route config ${s.routeConfig} (every virtual host and route without its own)`;
}

const percent = (f: number): string => `${Math.round(f * 10_000) / 100}%`;

/** What a request with these facts would be counted as by `b`: its count, or why it is not counted. */
export function requestCount(b: RateLimitBinding, request: { host: string; headers: IncomingHttpHeaders }): string {
  if (b.onlyHost !== undefined && b.onlyHost !== request.host) return `not counted: only requests for host ${b.onlyHost}`;
  const k = b.rule.key;
  const sometimes = b.rule.envoy && b.rule.envoy.enabled < 1 ? ` (${percent(b.rule.envoy.enabled)} of requests are)` : '';
  switch (k.kind) {
    case 'proxy':
      return `counted in this bucket${sometimes}`;
    case 'connection':
      return `counted in its connection's bucket${sometimes}`;
    case 'clientIp':
      return 'counted under its client address (the peer, or x-forwarded-for with --trusted-proxies)';
    case 'principal':
      return 'counted under its client certificate identity; not counted without one';
    case 'header': {
      const v = request.headers[k.name];
      return v === undefined ? `not counted: no ${k.name} header` : `counted under ${k.name}: ${Array.isArray(v) ? v.join(',') : v}`;
    }
  }
}

/** The admin port's /rate_limits entry of a rule. */
export function ruleJson(r: RateLimitRule): Record<string, unknown> {
  const base = { id: r.id, key: r.key, requests: r.requests, intervalSeconds: r.intervalSeconds, burst: r.burst, burstSeconds: r.burstSeconds, store: r.store, position: r.position };
  const e = r.envoy;
  if (!e) return base;
  return {
    ...base,
    envoyFilter: {
      placement: e.placement,
      bucket: e.bucket,
      tokenBucket: { maxTokens: e.tokenBucket.maxTokens, tokensPerFill: e.tokenBucket.tokensPerFill, fillInterval: `${e.tokenBucket.fillIntervalMs / 1000}s` },
      filterEnabled: e.enabled,
      filterEnforced: e.enforced,
      status: e.status,
      xRateLimitHeaders: e.xRateLimitHeaders,
    },
  };
}
