// The normalize stage of the request pipeline, right after parse (parse.ts made the target and the
// authority canonical): only the upgrade protocols the listener allows go on (WebSocket by default,
// upgrade-policy.ts), the path is normalized as the mesh config's pathNormalization says (Istio's
// BASE by default, path-normalize.ts; one that cannot be is 400), the headers only a proxy may set
// are sanitized on listeners that forward (headers.ts), and the request's facts are read once — the
// authority, the normalized path, the query, the method and the headers — for every later stage to
// match on.

import type { IncomingMessage } from 'node:http';
import type { RequestFacts } from '../../routing/types.js';
import { normalizeHost } from '../../routing/host-index.js';
import { normalizePath, pathNormalizationFor } from '../path-normalize.js';
import { sanitizeForwardedRequest } from '../headers.js';
import { badRequest, LocalReplies } from '../respond.js';
import { upgradeAllowed } from '../upgrade-policy.js';
import { DEFAULT_HTTP_LIMITS } from '../http-limits.js';
import type { Exchange, StageResult } from './exchange.js';
import { isConnect } from './parse.js';

/** Envoy's details for a path it cannot normalize (a NUL). */
const PATH_NORMALIZATION_FAILED = badRequest('path_normalization_failed');

export function normalize(ex: Exchange): StageResult {
  const { req, ctx, tunnel, listener } = ex;
  // CONNECT has no path (`paths` rules match nothing, `notPaths` everything, as Envoy's RBAC reads an
  // absent :path) and is no upgrade: it is answered 404 once authorization has run.
  const connect = isConnect(req);
  if (tunnel && !connect && !upgradeAllowed(tunnel.protocol, ctx.limits ?? DEFAULT_HTTP_LIMITS)) return LocalReplies.upgradeRefused;
  const path = connect ? '' : normalizePath(rawPath(req.url ?? '/'), pathNormalizationFor(ex.snapshot));
  if (path === undefined) return PATH_NORMALIZATION_FAILED;
  // A listener that forwards sanitizes what only a proxy may say; a sidecar's inbound side hands a
  // mesh peer's request to the app as it came (sidecar/inbound-headers.ts).
  if (!listener.localApp) sanitizeForwardedRequest(req.headers, listener.scheme, listener.clientCert?.(req));
  ex.facts = requestFacts(req, ex.port, listener.scheme, path);
  return undefined;
}

/** The query of every request without one: shared, as nothing writes to a request's query. */
const NO_QUERY: ReadonlyMap<string, string> = new Map();

export function requestFacts(req: IncomingMessage, port: number, scheme: string, path: string): RequestFacts {
  const url = isConnect(req) ? '' : (req.url ?? '/');
  const q = url.indexOf('?');
  const queryString = q >= 0 ? url.slice(q + 1) : '';
  let query: ReadonlyMap<string, string> = NO_QUERY;
  if (queryString) {
    const params = new Map<string, string>();
    for (const [k, v] of new URLSearchParams(queryString)) if (!params.has(k)) params.set(k, v);
    query = params;
  }
  const authority = authorityOf(req);
  return { port, host: normalizeHost(authority), authority, path, queryString, query, method: req.method ?? 'GET', scheme, headers: req.headers };
}

export function rawPath(url: string): string {
  // Absolute-form request targets (`GET http://host/path`) carry the path after the authority.
  if (url.startsWith('http://') || url.startsWith('https://')) {
    const slash = url.indexOf('/', url.indexOf('//') + 2);
    url = slash < 0 ? '/' : url.slice(slash);
  }
  const q = url.indexOf('?');
  return q >= 0 ? url.slice(0, q) : url;
}

/** Host for HTTP/1, `:authority` for HTTP/2 (after parse, both hold the one canonical authority). */
export function authorityOf(req: IncomingMessage): string {
  return req.headers.host ?? (req.headers[':authority'] as string | undefined) ?? '';
}
