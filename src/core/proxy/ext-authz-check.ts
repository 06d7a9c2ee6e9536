// One check with an external authorizer (a CUSTOM policy's provider, policy/ext-authz-providers.ts):
// the request goes to an endpoint of the provider's cluster through the same pools, load balancer and
// upstream TLS as any forwarded request (Istio mTLS when the authorizer runs a sidecar), and its answer
// is read whole. What is sent and how the answer reads follow Envoy's ext_authz filter, which Istio
// configures from the provider:
//
//   HTTP provider   the client's method; path = pathPrefix + the (normalized) path and query; the
//                   client's Host, Authorization and the headers includeRequestHeadersInCheck names,
//                   then includeAdditionalHeadersInCheck over them; no body (content-length 0)
//                   unless includeRequestBodyInCheck held one (ext-authz.ts): then it is the
//                   check's body.
//                   200 allows; a 5xx, a connection failure or the timeout is an error
//                   (statusOnError, or failOpen); any other status denies with that status.
//   gRPC provider   Envoy's Authorization/Check call (ext-authz-grpc.ts), answered the same three ways.

import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import type { IdentityProvider } from '../pki/types.js';
import { endpointPort } from '../registry/types.js';
import type { ExtAuthzHttpProvider, ExtAuthzProvider, HeaderNames } from '../policy/ext-authz-providers.js';
import { decideUpstreamTls, type UpstreamTlsProfile } from '../tls/upstream-tls.js';
import { downstreamResponseHeaders } from './headers.js';
import { UpstreamPools } from './upstream-pools.js';

/** What the authorizer said. */
export type AnswerHeaders = Readonly<Record<string, string | string[]>>;

export type CheckOutcome =
  | {
      readonly kind: 'allow';
      /** Set on the upstream request, replacing the client's. */
      readonly upstream: AnswerHeaders;
      /** Appended to the upstream request's values (a gRPC answer's `append: true`). */
      readonly upstreamAppend?: AnswerHeaders;
      /** Taken off the upstream request (a gRPC answer's headers_to_remove). */
      readonly remove?: readonly string[];
      /** Added to the client's response. */
      readonly downstream: AnswerHeaders;
    }
  | { readonly kind: 'deny'; readonly status: number; readonly body: string; readonly headers: AnswerHeaders }
  | { readonly kind: 'error'; readonly reason: string };

/** The request being authorized, as the proxy sees it after normalization. */
export interface CheckSubject {
  readonly method: string;
  /** Normalized path with the query. */
  readonly path: string;
  readonly authority: string;
  readonly headers: IncomingHttpHeaders;
  readonly sourceIp: string;
  readonly query: ReadonlyMap<string, string>;
  /** What a gRPC authorizer is also told: the connection's peers and the request's id, scheme and protocol. */
  readonly peer?: CheckPeers;
  /** The body, when the provider asks for it (includeRequestBodyInCheck) and the request has one. */
  readonly body?: CheckBody;
}

export interface CheckBody {
  /** The body, or its first maxRequestBytes. */
  readonly bytes: Buffer;
  /** Only the first maxRequestBytes of a longer body (Envoy's x-envoy-auth-partial-body: true). */
  readonly partial: boolean;
}

/** The header Envoy adds to a check that carries a body: whether the body was cut at maxRequestBytes. */
export const PARTIAL_BODY_HEADER = 'x-envoy-auth-partial-body';

export interface CheckPeers {
  readonly sourcePort?: number | undefined;
  /** The client's certificate identity, `spiffe://…`. */
  readonly sourcePrincipal?: string | undefined;
  readonly destinationAddress?: string | undefined;
  readonly destinationPort?: number | undefined;
  /** This proxy's own identity, `spiffe://…`. */
  readonly destinationPrincipal?: string | undefined;
  readonly requestId: string;
  readonly scheme: string;
  /** `HTTP/1.1` or `HTTP/2`. */
  readonly protocol: string;
}

export interface CheckContext {
  readonly pools: UpstreamPools;
  readonly identity?: IdentityProvider | undefined;
}

/** An authorizer's answer is held whole; past this it is an error rather than unbounded memory. */
const MAX_ANSWER_BYTES = 1024 * 1024;

/** Headers Envoy always sends an HTTP authorizer, whatever includeRequestHeadersInCheck says (Host apart). */
const ALWAYS_SENT = new Set(['authorization']);

/** An endpoint of the provider's cluster and the TLS to reach it with, or why there is none. */
export function authorizerEndpoint(
  provider: ExtAuthzProvider,
  subject: CheckSubject,
  identity: IdentityProvider | undefined,
): { ok: true; key: string; tls: UpstreamTlsProfile | undefined } | { ok: false; reason: string } {
  const cluster = provider.cluster;
  const pick = cluster.lb.pick({ headers: subject.headers, sourceIp: subject.sourceIp, query: subject.query });
  if (!pick) return { ok: false, reason: 'no_healthy_upstream' };
  const tls = decideUpstreamTls(cluster, pick.endpoint, identity, cluster.service.hostname);
  if (!tls.ok) return { ok: false, reason: `upstream_tls_error_${tls.reason}` };
  return { ok: true, key: UpstreamPools.key(pick.endpoint.address, endpointPort(pick.endpoint, cluster.port)), tls: tls.profile };
}

/** Asks an HTTP provider about one request. Never rejects: failures are `error` outcomes. */
export function checkHttp(provider: ExtAuthzHttpProvider, subject: CheckSubject, ctx: CheckContext): Promise<CheckOutcome> {
  const target = authorizerEndpoint(provider, subject, ctx.identity);
  if (!target.ok) return Promise.resolve({ kind: 'error', reason: target.reason });
  const headers = checkHeaders(provider, subject);
  return new Promise((resolve) => {
    let lease: { end(): void; pool: Pick<Dispatcher, 'dispatch'> };
    try {
      lease = ctx.pools.acquire(target.key, target.tls, provider.cluster.traffic?.limits);
    } catch (err) {
      return resolve({ kind: 'error', reason: (err as Error).message });
    }
    const answer = new AnswerReader(provider.timeoutMs, (a) => {
      lease.end();
      resolve(a ? readAnswer(provider, a) : { kind: 'error', reason: answer.failure });
    });
    try {
      lease.pool.dispatch({ path: provider.pathPrefix + subject.path, method: subject.method as Dispatcher.HttpMethod, headers, body: subject.body?.bytes ?? null }, answer);
    } catch (err) {
      answer.fail(err as Error);
    }
  });
}

/** The check's headers: Host, Authorization, the named client headers, the fixed ones, the length. */
function checkHeaders(provider: ExtAuthzHttpProvider, subject: CheckSubject): Record<string, string> {
  const out: Record<string, string> = {};
  const named = provider.requestHeaders;
  for (const name in subject.headers) {
    const v = subject.headers[name];
    if (v === undefined || name.charCodeAt(0) === 58) continue;
    if (ALWAYS_SENT.has(name) || named?.(name)) out[name] = Array.isArray(v) ? v.join(', ') : v;
  }
  for (const [name, value] of provider.additionalHeaders) out[name] = value;
  out.host = subject.authority;
  // The check's own length: its body's (what includeRequestBodyInCheck held), else 0, as Envoy's.
  const body = subject.body;
  out['content-length'] = String(body?.bytes.length ?? 0);
  // Envoy adds this to the check's headers; an HTTP check carries it when the header list names it.
  if (body && named?.(PARTIAL_BODY_HEADER)) out[PARTIAL_BODY_HEADER] = String(body.partial);
  return out;
}

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

/** An HTTP answer read whole (the authorizer's is small), with the provider's timeout over all of it. */
class AnswerReader implements Dispatcher.DispatchHandler {
  failure = '';
  #status = 0;
  #headers: Record<string, string | string[] | undefined> = {};
  readonly #chunks: Buffer[] = [];
  #bytes = 0;
  #controller: Dispatcher.DispatchController | undefined;
  readonly #timer: NodeJS.Timeout;
  #done = false;
  readonly #onDone: (a: Answer | undefined) => void;

  constructor(timeoutMs: number, onDone: (a: Answer | undefined) => void) {
    this.#onDone = onDone;
    this.#timer = setTimeout(() => this.fail(new Error('timeout')), timeoutMs);
  }

  fail(err: Error): void {
    if (this.#done) return;
    this.failure = err.message === 'timeout' ? 'timeout' : `${(err as NodeJS.ErrnoException).code ?? 'request_failed'}`;
    this.#controller?.abort(err);
    this.#finish(undefined);
  }

  #finish(a: Answer | undefined): void {
    if (this.#done) return;
    this.#done = true;
    clearTimeout(this.#timer);
    this.#onDone(a);
  }

  onRequestStart(c: Dispatcher.DispatchController): void {
    this.#controller = c;
    if (this.#done) c.abort(new Error('given up'));
  }

  onResponseStart(_c: Dispatcher.DispatchController, status: number, headers: Record<string, string | string[] | undefined>): void {
    if (status < 200) return;
    this.#status = status;
    this.#headers = headers;
  }

  onResponseData(_c: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#bytes += chunk.length;
    if (this.#bytes > MAX_ANSWER_BYTES) return this.fail(new Error('answer_too_large'));
    this.#chunks.push(chunk);
  }

  onResponseEnd(): void {
    this.#finish({ status: this.#status, headers: this.#headers, body: Buffer.concat(this.#chunks) });
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    this.fail(err);
  }
}

/** Headers never copied from an authorizer's answer: they describe its own message, not the decision. */
const OWN_HEADERS = new Set(['content-length', 'date', 'server', 'host', 'x-envoy-upstream-service-time']);
/** Sent to the client on a denial whatever headersToDownstreamOnDeny names (Envoy adds them). */
const ALWAYS_ON_DENY = new Set(['www-authenticate', 'location']);

function readAnswer(provider: ExtAuthzHttpProvider, a: Answer): CheckOutcome {
  if (a.status >= 500) return { kind: 'error', reason: `authorizer_status_${a.status}` };
  const headers = downstreamResponseHeaders(a.headers);
  if (a.status === 200) {
    return { kind: 'allow', upstream: picked(headers, provider.upstreamOnAllow, 'content-type'), downstream: picked(headers, provider.downstreamOnAllow, 'content-type') };
  }
  const onDeny = provider.downstreamOnDeny;
  const names: HeaderNames = onDeny ? (n) => onDeny(n) || ALWAYS_ON_DENY.has(n) : () => true;
  return { kind: 'deny', status: a.status, body: a.body.toString('utf8'), headers: picked(headers, names) };
}

/** The headers `names` selects (none without a list); a repeated one (set-cookie) stays a list. */
function picked(headers: Record<string, string | number | string[] | undefined>, names: HeaderNames | undefined, skip?: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  if (!names) return out;
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined || OWN_HEADERS.has(name) || name === skip || !names(name)) continue;
    out[name] = Array.isArray(v) ? v : String(v);
  }
  return out;
}
