// Header handling between downstream and upstream: hop-by-hop headers dropped both ways, the
// x-forwarded-* and x-request-id headers a gateway sets, and VirtualService header rules applied.

import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { HeaderRules } from '../routing/types.js';
import { newRequestId } from './request-id.js';
import { PEER_METADATA_HEADER, PEER_METADATA_ID_HEADER } from '../telemetry/peer-metadata.js';

/**
 * RFC 9110 §7.6.1 connection-specific headers, plus those undici manages itself. `expect` is
 * answered on this hop: the downstream server sends its own 100 Continue (Envoy does the same
 * unless proxy_100_continue is set), and undici refuses requests that carry it.
 */
const HOP_BY_HOP = new Set([
  'expect',
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

/**
 * What an answer never passes back: the hop-by-hop headers, and Istio's metadata exchange headers,
 * which name the answering workload (namespace, labels, node id and address) for the proxy that
 * receives them; Istio's peer metadata filter removes them there, so a gateway's client never sees
 * an upstream sidecar's.
 */
const NOT_PASSED_BACK = new Set([...HOP_BY_HOP, PEER_METADATA_HEADER, PEER_METADATA_ID_HEADER]);

/**
 * The header names a Connection header lists (its `close` and `keep-alive` options aside). Nearly
 * every message says only `keep-alive` (undici sends it on every request) or `close`: those are
 * answered without building a list, which was a visible share of the gateway's own CPU per request.
 */
function connectionListed(c: string | string[] | undefined): Set<string> | undefined {
  if (typeof c !== 'string' || c === '') return undefined;
  if (c.length <= 10) {
    const only = c.toLowerCase();
    if (only === 'keep-alive' || only === 'close') return undefined;
  }
  const names = c.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s && s !== 'close' && s !== 'keep-alive');
  return names.length > 0 ? new Set(names) : undefined;
}

/**
 * `name` with its underscores read as dashes, when it has any: `x_forwarded_client_cert` is
 * `x-forwarded-client-cert`. CGI, WSGI and Rack give both spellings one name (HTTP_X_FORWARDED_CLIENT_CERT),
 * so a backend may take a client's underscore spelling for a header only a proxy or a verified token
 * may set. Envoy's edge advice is to refuse underscores altogether (headers_with_underscores_action),
 * which Istio leaves allowing: only the spellings of those headers are removed.
 */
export function dashSpelling(name: string): string | undefined {
  return name.includes('_') ? name.replaceAll('_', '-') : undefined;
}

/** The headers a forwarding listener writes itself; their underscore spellings are a client's forgery. */
const PROXY_WRITTEN: ReadonlySet<string> = new Set(['x-forwarded-client-cert', 'x-forwarded-for', 'x-forwarded-proto']);

/** An underscore spelling of x-envoy-*, x-forwarded-client-cert, -for or -proto (dashSpelling). */
function isProxyHeaderSpelling(name: string): boolean {
  const dashed = dashSpelling(name);
  return dashed !== undefined && (dashed.startsWith('x-envoy-') || PROXY_WRITTEN.has(dashed));
}

export interface ForwardedFacts {
  /**
   * The client address x-forwarded-for gets appended, as Envoy does where Istio sets
   * use_remote_address (gateways); undefined where it does not (a sidecar's outbound side): the
   * header goes on as the app sent it.
   */
  readonly remoteAddress: string | undefined;
  /**
   * The trusted client address (client-address.ts) in x-envoy-external-address, which Envoy sets on
   * every request it takes for external where it uses the remote address: since Envoy 1.36 no
   * address is internal unless internal_address_config names it, and Istio names none by default,
   * so that is every request a gateway serves (and x-envoy-internal is never set). Undefined where
   * the remote address is not used.
   */
  readonly externalAddress?: string | undefined;
  readonly scheme: string;
  readonly authority: string;
  readonly requestId: string;
  /** Set when the path was rewritten: Envoy keeps the original in x-envoy-original-path. */
  readonly originalPath?: string;
  /** x-forwarded-client-cert built from the verified client certificate. */
  readonly clientCert?: string;
}

/** The request id a request carries, or a new one (Envoy generates a UUID when it is absent). */
export function requestIdOf(headers: IncomingHttpHeaders): string {
  const id = headers['x-request-id'];
  return typeof id === 'string' && id !== '' ? id : newRequestId();
}

/**
 * The request as Envoy's connection manager hands it to its filters and routes on a listener that
 * forwards (a gateway, a sidecar's outbound side), every request counting as external as Istio
 * configures Envoy: the headers only a proxy may set are this proxy's, not the client's. Client
 * x-envoy-* and x-forwarded-client-cert go (the latter set again from a verified client certificate,
 * Istio's SANITIZE_SET), x-forwarded-proto is the connection's scheme, and underscore spellings of
 * these and x-forwarded-for go (isProxyHeaderSpelling). Done in place before routes,
 * authorization and external authorizers read the request: a DENY on `x-forwarded-proto` other than
 * https, or a route on `x-envoy-internal`, must not take the client's word. Deletes only what a
 * client sent, which is rare: a deleted property costs every later read of the object.
 */
export function sanitizeForwardedRequest(headers: IncomingHttpHeaders, scheme: string, clientCert: string | undefined): void {
  for (const name in headers) {
    if (name.charCodeAt(0) !== 120) continue;
    if (name.startsWith('x-envoy-') || name === 'x-forwarded-client-cert') delete headers[name];
    else if (isProxyHeaderSpelling(name)) delete headers[name];
  }
  if (clientCert !== undefined) headers['x-forwarded-client-cert'] = clientCert;
  if (headers['x-forwarded-proto'] !== scheme) headers['x-forwarded-proto'] = scheme;
}

/**
 * The end-to-end headers of a request: hop-by-hop, Connection-listed, `host` and HTTP/2 pseudo-headers
 * removed. Those named in `dropped` are left out as well: left out of the copy rather than deleted
 * from it, as a deleted property turns the object into a hash table that every later read and
 * undici's walk pay for.
 */
export function hopByHopFree(incoming: IncomingHttpHeaders, dropped?: ReadonlySet<string>): Record<string, string | string[]> {
  const listed = connectionListed(incoming.connection);
  const out: Record<string, string | string[]> = {};
  for (const name in incoming) {
    const v = incoming[name];
    // HTTP/2 pseudo-headers (`:authority`, `:path` …) describe this hop only.
    if (v === undefined || listed?.has(name) || name === 'host' || name.charCodeAt(0) === 58 || dropped?.has(name)) continue;
    // `te: trailers` is the one hop-by-hop value that must travel: gRPC servers check it.
    if (HOP_BY_HOP.has(name) && !(name === 'te' && v === 'trailers')) continue;
    out[name] = v;
  }
  return out;
}

/**
 * x-forwarded-for with the client address appended (Envoy's use_remote_address at the edge), after
 * a bare `,` as Envoy's appendXff writes it: `203.0.113.9,10.0.0.1`. What the client sent stays as
 * it was, spaces included.
 */
export function forwardedFor(incoming: IncomingHttpHeaders, remoteAddress: string): string {
  const xff = incoming['x-forwarded-for'];
  return xff ? `${String(xff)},${remoteAddress}` : remoteAddress;
}

/** Headers for the upstream request, before route header rules (`incoming` sanitized as above). */
export function upstreamRequestHeaders(incoming: IncomingHttpHeaders, f: ForwardedFacts): Record<string, string | string[]> {
  const out = hopByHopFree(incoming);
  if (f.remoteAddress !== undefined) out['x-forwarded-for'] = forwardedFor(incoming, f.remoteAddress);
  if (f.externalAddress !== undefined) out['x-envoy-external-address'] = f.externalAddress;
  out['x-forwarded-proto'] = f.scheme;
  out['x-request-id'] = f.requestId;
  out.host = f.authority;
  if (f.originalPath !== undefined) out['x-envoy-original-path'] = f.originalPath;
  if (f.clientCert !== undefined) out['x-forwarded-client-cert'] = f.clientCert;
  return out;
}

/** Response headers from upstream, hop-by-hop and peer metadata removed. */
export function downstreamResponseHeaders(upstream: Record<string, string | string[] | undefined>): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  const listed = connectionListed(upstream.connection);
  for (const name in upstream) {
    const v = upstream[name];
    if (v === undefined || NOT_PASSED_BACK.has(name) || listed?.has(name)) continue;
    out[name] = v;
  }
  return out;
}

/**
 * The upstream's answer as the client gets it, before route header rules: hop-by-hop headers
 * removed, the time since the attempt `started` (performance.now()) in
 * x-envoy-upstream-service-time and on the record, and Envoy's server name.
 */
export function answerHeaders(upstream: Record<string, string | string[] | undefined>, record: { upstreamServiceTime?: number | undefined }, started: number): OutgoingHttpHeaders {
  const ms = (record.upstreamServiceTime = Math.round(performance.now() - started));
  const out = downstreamResponseHeaders(upstream);
  out['x-envoy-upstream-service-time'] = String(ms);
  out.server = 'istio-envoy';
  return out;
}

/** set overwrites, add appends, remove deletes (docs/reference/routing.md). */
export function applyHeaderRules(headers: Record<string, string | string[] | number | undefined>, rules: HeaderRules): void {
  // Most routes have no rules: four calls per request that would each allocate their iterators.
  if (rules.remove.length === 0 && rules.set.length === 0 && rules.add.length === 0) return;
  for (const name of rules.remove) delete headers[name];
  for (const [name, value] of rules.set) headers[name] = value;
  for (const [name, value] of rules.add) {
    const cur = headers[name];
    if (cur === undefined) headers[name] = value;
    else if (Array.isArray(cur)) headers[name] = [...cur, value];
    else headers[name] = [String(cur), value];
  }
}
