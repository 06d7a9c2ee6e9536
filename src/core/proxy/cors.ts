// CORS (VirtualService `corsPolicy`, docs/reference/routing.md), as Envoy's CORS filter applies it: a preflight
// (OPTIONS with Origin and Access-Control-Request-Method) from an allowed origin is answered by the
// proxy itself; any other request from an allowed origin goes on and its response gets
// Access-Control-Allow-Origin (the origin echoed), -Allow-Credentials and -Expose-Headers.

import type { IncomingHttpHeaders } from 'node:http';
import type { CorsRules } from '../routing/types.js';

export type CorsOutcome =
  /** An allowed preflight: answer 200 with these headers, without going upstream. */
  | { readonly kind: 'preflight'; readonly headers: Record<string, string> }
  /** A preflight from an origin not allowed, with `unmatchedPreflights: IGNORE`: 200 without CORS headers. */
  | { readonly kind: 'ignore' }
  /** A request from an allowed origin: go on, and add these headers to whatever answers it. */
  | { readonly kind: 'actual'; readonly headers: Record<string, string> };

/** Undefined when CORS has nothing to say: no Origin, or an origin not allowed (the request goes on as is). */
export function evaluateCors(cors: CorsRules, method: string, headers: IncomingHttpHeaders): CorsOutcome | undefined {
  const origin = headers.origin;
  if (!origin) return undefined;
  const preflight = method === 'OPTIONS' && !!headers['access-control-request-method'];
  if (!originAllowed(cors, origin)) return preflight && !cors.forwardUnmatchedPreflights ? { kind: 'ignore' } : undefined;
  const out: Record<string, string> = { 'access-control-allow-origin': origin };
  if (cors.allowCredentials) out['access-control-allow-credentials'] = 'true';
  if (preflight) {
    if (cors.allowMethods) out['access-control-allow-methods'] = cors.allowMethods;
    if (cors.allowHeaders) out['access-control-allow-headers'] = cors.allowHeaders;
    if (cors.maxAge) out['access-control-max-age'] = cors.maxAge;
    return { kind: 'preflight', headers: out };
  }
  if (cors.exposeHeaders) out['access-control-expose-headers'] = cors.exposeHeaders;
  return { kind: 'actual', headers: out };
}

/** Envoy allows an origin when a matcher accepts it, or accepts the literal `*` (allow any origin). */
function originAllowed(cors: CorsRules, origin: string): boolean {
  for (const m of cors.allowOrigins) if (m.test(origin) || m.test('*')) return true;
  return false;
}
