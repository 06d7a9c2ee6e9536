// forward(): sends a routed request to one of its destinations and streams the answer back, with
// the route's timeout, per-try timeout and retry policy, and starts its mirrored copies. Bodies
// stream both ways; only a small body is held so a retry (or a mirror) can send it again. Each
// attempt's connection gets the TLS its cluster and endpoint call for (Istio mTLS into the mesh,
// DestinationRule origination outside it, or none).

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Endpoint } from '../registry/types.js';
import type { PickContext } from '../policy/types.js';
import { endpointPort } from '../registry/types.js';
import type { DestinationTarget, ForwardAction, RequestFacts, RetryPolicy } from '../routing/types.js';
import { applyHeaderRules, downstreamResponseHeaders, upstreamRequestHeaders } from './headers.js';
import { LocalReplies, addFlag, upstreamTlsFailure, withRetriesExhausted, type LocalReply } from './respond.js';
import { guardedBody, onDownstreamGone, resetResponse, requestGone, RequestBodyAborted } from './stream-state.js';
import { boundedByGrpcTimeout, isGrpcRequest } from './grpc-status.js';
import { sendMirrors } from './mirror.js';
import { UpstreamPools } from './upstream-pools.js';
import { exchange, type Cancel, type ExchangeOutcome } from './upstream-exchange.js';
import { exchangeH2, UpstreamStreamReset } from './h2-exchange.js';
import { exchangeUpgrade, type TunnelConnect, type UpgradeTunnel } from './upgrade-exchange.js';
import type { RequestRecord } from '../telemetry/access-log.js';
import { PEER_METADATA_HEADER, workloadOfEndpoint } from '../telemetry/workload.js';
import type { IdentityProvider } from '../pki/types.js';
import { decideUpstreamTls } from '../tls/upstream-tls.js';
import { UpstreamTlsError } from '../tls/upstream-connector.js';
import { AttemptGuard } from './attempt-guard.js';
import { ReplayBody } from './replay-body.js';
import { requestHasBody } from './relay.js';
import { keepsOriginalDestination, originalEndpoint, type Dialled } from '../policy/original-dst.js';

/** Bodies up to this size are kept in memory so a retry can send them again (Envoy buffers similarly). */
const REPLAY_LIMIT = 64 * 1024;

export interface ForwardContext {
  readonly pools: UpstreamPools;
  readonly random: () => number;
  readonly remoteAddress: string;
  readonly requestId: string;
  /** x-forwarded-client-cert of a verified client certificate. */
  readonly clientCert?: string;
  /** This proxy's workload identity: with it, endpoints that run a sidecar get Istio mTLS. */
  readonly identity?: IdentityProvider;
  /** Set on the upstream's response over its own values (the route's CORS headers). */
  readonly responseHeaders?: Readonly<Record<string, string>>;
  /** An upgrade request: each attempt is an upgrade exchange on a connection of its own. */
  readonly upgrade?: UpgradeTunnel;
  /** This proxy's peer metadata (workload.ts), told to mesh peers over Istio mTLS. */
  readonly peerMetadata?: string;
  /** The destination picked when the route was selected (routedDestination); picked here without it. */
  readonly destination?: DestinationTarget;
  /**
   * Where a captured request was going (the original destination): a cluster that keeps to it (a
   * headless Service, a ServiceEntry with `resolution: NONE`) sends every attempt there (ORIGINAL_DST).
   */
  readonly dialled?: Dialled;
}

/** A destination by relative weight; used for HTTP routes and for piped (tls/tcp) connections alike. */
export function pickDestination(action: Pick<ForwardAction, 'destinations' | 'totalWeight'>, random: () => number): DestinationTarget | undefined {
  const ds = action.destinations;
  if (ds.length <= 1) return ds[0];
  let r = random() * action.totalWeight;
  for (const d of ds) {
    r -= d.weight;
    if (r < 0) return d;
  }
  return ds[ds.length - 1];
}

/**
 * The route's destination, picked once when the route is selected, as Envoy resolves a route's
 * (weighted) cluster before any filter runs, and named in the record when that cluster exists: a
 * local reply before the upstream (401, 403, 429, a fault) then reports the routed service, as
 * Istio's metrics do. A cluster that does not exist (NC) stays unnamed: Envoy has no cluster for it.
 */
export function routedDestination(action: Pick<ForwardAction, 'destinations' | 'totalWeight'>, random: () => number, record: RequestRecord): DestinationTarget | undefined {
  const dest = pickDestination(action, random);
  if (dest?.cluster) record.upstreamCluster = dest.clusterName;
  return dest;
}

/** Service port protocols spoken as HTTP/2 upstream (Istio's port naming: http2-*, grpc-*). */
const H2_PROTOCOLS = new Set(['HTTP2', 'GRPC']);

/**
 * Whether a cluster's upstream connections speak HTTP/2: its port is declared http2 or grpc (by name
 * or appProtocol), or its DestinationRule asks `h2UpgradePolicy: UPGRADE` for an HTTP port.
 */
export function speaksH2(cluster: { readonly port: { readonly protocol: string }; readonly policy?: { readonly connectionPool?: { readonly http?: { readonly h2UpgradePolicy?: string } } } }): boolean {
  if (H2_PROTOCOLS.has(cluster.port.protocol)) return true;
  const upgrade = cluster.policy?.connectionPool?.http?.h2UpgradePolicy;
  return upgrade === 'UPGRADE' && (cluster.port.protocol === 'HTTP' || cluster.port.protocol === 'UNKNOWN');
}

const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

/** `refused`: an HTTP/2 upstream reset the stream with REFUSED_STREAM (it never processed it). */
type Failure = { kind: 'connect' | 'reset' | 'refused'; reply: LocalReply };

function classify(err: unknown): Failure {
  if (err instanceof UpstreamTlsError) return { kind: 'connect', reply: upstreamTlsFailure(err.reason) };
  if (err instanceof UpstreamStreamReset) return { kind: 'reset', reply: LocalReplies.upstreamRemoteReset };
  const code = (err as { code?: string } | undefined)?.code ?? '';
  if (CONNECT_ERRORS.has(code)) return { kind: 'connect', reply: LocalReplies.connectFailure };
  if (code === 'ERR_HTTP2_STREAM_ERROR' && (err as Error).message.includes('REFUSED_STREAM')) return { kind: 'refused', reply: LocalReplies.upstreamRemoteReset };
  if (code === 'UND_ERR_INVALID_ARG' || code === 'HPE_INVALID_CONSTANT' || code.startsWith('HPE_')) return { kind: 'reset', reply: LocalReplies.protocolError };
  return { kind: 'reset', reply: LocalReplies.upstreamReset };
}

/** Envoy's wouldRetryFromReset: 5xx, gateway-error and reset cover every failure without a response. */
function retriableFailure(p: RetryPolicy, f: Failure): boolean {
  if (p.on.has('reset') || p.on.has('5xx') || p.on.has('gateway-error')) return true;
  if (f.kind === 'connect') return p.on.has('connect-failure') || p.on.has('reset-before-request');
  if (f.kind === 'refused') return p.on.has('refused-stream');
  return false;
}

function retriableStatus(p: RetryPolicy, status: number, headers: Record<string, string | string[] | undefined>): boolean {
  if (p.on.has('5xx') && status >= 500) return true;
  if (p.on.has('gateway-error') && (status === 502 || status === 503 || status === 504)) return true;
  if (p.on.has('retriable-4xx') && status === 409) return true;
  if (p.statusCodes.has(status)) return true;
  // gRPC conditions look at a trailers-only answer's grpc-status.
  if (p.grpcStatuses.size > 0) {
    const grpc = headers['grpc-status'];
    if (grpc !== undefined && p.grpcStatuses.has(Number(grpc))) return true;
  }
  return false;
}

/**
 * Envoy's back-off: full jitter over an exponentially growing window, capped at 10× the base. The
 * wait is cancelable like an attempt, so a route timeout or a departing client ends it at once.
 */
function backoff(p: RetryPolicy, retry: number, random: () => number, onCancelable: (c: Cancel) => void): Promise<void> {
  const window = Math.min(p.backoffBaseMs * (2 ** retry - 1 || 1), p.backoffBaseMs * 10);
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, Math.floor(random() * window));
    onCancelable({
      cancel() {
        clearTimeout(timer);
        resolve();
      },
    });
  });
}

export async function forward(
  req: IncomingMessage,
  res: ServerResponse,
  facts: RequestFacts,
  action: ForwardAction,
  ctx: ForwardContext,
  log: RequestRecord,
): Promise<LocalReply | undefined> {
  const dest = ctx.destination ?? routedDestination(action, ctx.random, log);
  if (!dest) return LocalReplies.clusterNotFound;
  const cluster = dest.cluster;
  if (!cluster) return dest.invalidBackend ? LocalReplies.invalidBackend : LocalReplies.clusterNotFound;
  // Envoy's ORIGINAL_DST: the dialled pod (ready or not) or nothing, the same one on every attempt.
  const pinned = ctx.dialled && keepsOriginalDestination(cluster.service) ? (originalEndpoint(cluster, ctx.dialled) ?? null) : undefined;
  if (pinned === null || (!pinned && cluster.endpoints.length === 0)) return LocalReplies.noHealthyUpstream;

  const path = action.rewritePath ? action.rewritePath(facts.path) : facts.path;
  const fullPath = facts.queryString ? `${path}?${facts.queryString}` : path;
  const headers = upstreamRequestHeaders(req.headers, {
    remoteAddress: ctx.remoteAddress,
    scheme: facts.scheme,
    authority: dest.authority ?? action.authority ?? facts.authority,
    requestId: ctx.requestId,
    ...(path !== facts.path ? { originalPath: facts.path } : {}),
    ...(ctx.clientCert ? { clientCert: ctx.clientCert } : {}),
  });
  applyHeaderRules(headers, action.requestHeaders);
  applyHeaderRules(headers, dest.requestHeaders);

  const retry = action.retry;
  // A body that retries or mirrors may need again is copied as it streams, unless its length says
  // at once that it is too large to hold; without a length it is held until it proves too large.
  // A client already gone (it reset the stream while a fault delay or a rate limit held it) is not
  // forwarded at all: a cut-off upload must never reach the upstream as a whole request.
  if (requestGone(req)) return LocalReplies.downstreamDisconnect;
  let body: ReplayBody | AsyncIterable<Buffer> | undefined;
  if (requestHasBody(req)) {
    const len = Number(req.headers['content-length'] ?? 0);
    const source = guardedBody(req);
    body = (retry.attempts > 0 || action.mirrors.length > 0) && len <= REPLAY_LIMIT ? new ReplayBody(source, REPLAY_LIMIT) : source;
  }
  const replayable = (): boolean => body === undefined || (body instanceof ReplayBody && body.replayable);

  // Mirrors get the request as the main upstream does, once (not per attempt), with its whole body;
  // a body too large to hold is not mirrored (mirror.ts).
  if (action.mirrors.length > 0 && (body === undefined || body instanceof ReplayBody)) {
    const mirror = (copy: Buffer | undefined): void =>
      sendMirrors(action.mirrors, { path: fullPath, method: req.method ?? 'GET', headers, ...(copy ? { body: copy } : {}) }, {
        pools: ctx.pools,
        random: ctx.random,
        ...(ctx.identity ? { identity: ctx.identity } : {}),
        requestHeaders: req.headers,
        sourceIp: ctx.remoteAddress,
        query: facts.query,
        timeoutMs: action.timeoutMs,
      });
    if (body instanceof ReplayBody) void body.complete().then((copy) => copy && mirror(copy));
    else mirror(undefined);
  }

  // The route timeout spans every attempt; downstream going away cancels everything. No
  // AbortController: the attempt in flight is cancelled through its dispatch controller.
  let stopped: 'timeout' | 'downstream' | undefined;
  let current: Cancel | undefined;
  const stop = (why: 'timeout' | 'downstream'): void => {
    stopped ??= why;
    current?.cancel(new Error(why === 'timeout' ? 'route timeout' : 'downstream closed'));
  };
  // A gRPC call's grpc-timeout bounds the route timeout (Istio sets grpcTimeoutHeaderMax to it).
  const timeoutMs = isGrpcRequest(req.headers) ? boundedByGrpcTimeout(action.timeoutMs, req.headers) : action.timeoutMs;
  const timer = timeoutMs > 0 ? setTimeout(() => stop('timeout'), timeoutMs) : undefined;
  // An HTTP/2 reset or a closed connection cancels the attempt at once (the upstream stream is reset,
  // the upstream HTTP/1 connection dropped), whatever Node's writable flags say (stream-state.ts).
  const offGone = onDownstreamGone(res, () => stop('downstream'));

  // Circuit breaker and outlier detection: admit each attempt, allow retries, report results.
  const guard = new AttemptGuard(cluster);
  // The endpoints tried before this attempt, for a retry policy that avoids them (Istio's default).
  // The set starts at the first retry: empty, it excludes nothing, and most requests never retry.
  let tried: Set<Endpoint> | undefined;
  let previous: Endpoint | undefined;
  const pickContext: { -readonly [K in keyof PickContext]: PickContext[K] } = { headers: req.headers, sourceIp: ctx.remoteAddress, query: facts.query };
  let setCookie: string | undefined;
  let started = 0;
  const hooks = {
    retryOnStatus: (status: number, upstream: Record<string, string | string[] | undefined>): boolean => {
      if (retry.attempts === 0 || !retriableStatus(retry, status, upstream)) return false;
      if (attemptsLeft > 0 && replayable() && guard.mayRetry()) return true;
      // Envoy's UpstreamRetryLimitExceeded: the answer goes out as it is, flagged URX.
      if (attemptsLeft === 0) log.flags = addFlag(log.flags, 'URX');
      return false;
    },
    responseHeaders: (upstream: Record<string, string | string[] | undefined>) => {
      log.upstreamServiceTime = Math.round(performance.now() - started);
      const out = downstreamResponseHeaders(upstream);
      out['x-envoy-upstream-service-time'] = String(log.upstreamServiceTime);
      out['x-envoy-attempt-count'] = headers['x-envoy-attempt-count'];
      out.server = 'istio-envoy';
      applyHeaderRules(out as Record<string, string | string[]>, action.responseHeaders);
      applyHeaderRules(out as Record<string, string | string[]>, dest.responseHeaders);
      if (ctx.responseHeaders) Object.assign(out, ctx.responseHeaders);
      if (setCookie) out['set-cookie'] = [...toList(out['set-cookie']), setCookie];
      return out;
    },
  };
  let attemptsLeft = retry.attempts;
  // Attempts, waits for a connection slot and back-offs all register here to be called off.
  const cancelable = (c: Cancel): void => {
    current = c;
    if (stopped) c.cancel(new Error(stopped));
  };
  // An upgrade is HTTP/1.1 whatever the port speaks (WebSocket over HTTP/2 would need extended CONNECT).
  const h2Upstream = speaksH2(cluster) && !ctx.upgrade;
  try {
    for (let attempt = 0; ; attempt++) {
      attemptsLeft = retry.attempts - attempt;
      if (previous && retry.avoidPreviousHosts) pickContext.exclude = (tried ??= new Set<Endpoint>()).add(previous);
      const pick = pinned ? { endpoint: pinned } : cluster.lb.pick(pickContext);
      if (!pick) return LocalReplies.noHealthyUpstream;
      previous = pick.endpoint;
      setCookie = 'setCookie' in pick ? pick.setCookie : undefined;
      const key = UpstreamPools.key(pick.endpoint.address, endpointPort(pick.endpoint, cluster.port));
      log.upstreamHost = key;
      log.upstreamPeer = workloadOfEndpoint(pick.endpoint);
      headers['x-envoy-attempt-count'] = String(attempt + 1);
      const tls = decideUpstreamTls(cluster, pick.endpoint, ctx.identity, String(headers.host ?? ''));
      // Never plaintext where the rule asks for mTLS; without a certificate no endpoint is reachable.
      if (!tls.ok) return attempt > 0 ? withRetriesExhausted(upstreamTlsFailure(tls.reason)) : upstreamTlsFailure(tls.reason);
      if (ctx.peerMetadata && tls.profile?.kind === 'ISTIO_MUTUAL') headers[PEER_METADATA_HEADER] = ctx.peerMetadata;
      // Admitted at once unless a circuit breaker makes the attempt wait: no await (a microtask turn) then.
      const admission = guard.admit(h2Upstream, cancelable);
      const gate = admission instanceof Promise ? await admission : admission;
      current = undefined;
      if (gate !== 'admitted' || stopped) return AttemptGuard.refusal(gate, stopped);
      const lease = ctx.pools.acquire(key, h2Upstream ? undefined : tls.profile, cluster.traffic?.limits);
      started = performance.now();
      const attemptBody = body instanceof ReplayBody ? body.forAttempt() : body;
      const attemptRequest = { path: fullPath, method: req.method ?? 'GET', headers, trailers: () => trailersOf(req), ...(attemptBody !== undefined ? { body: attemptBody } : {}) };
      // Envoy lets a response that has started run on to the route timeout: a per-try timeout only
      // ends an attempt that has not answered yet.
      let tryTimedOut = false;
      const perTry = retry.perTryTimeoutMs > 0
        ? setTimeout(() => {
          if (res.headersSent) return;
          tryTimedOut = true;
          current?.cancel(new Error('per-try timeout'));
        }, retry.perTryTimeoutMs)
        : undefined;
      let outcome: ExchangeOutcome;
      if (ctx.upgrade) {
        const open: TunnelConnect = (onFailure) => ctx.pools.connect(key, tls.profile, cluster.traffic?.limits, onFailure);
        outcome = await exchangeUpgrade(open, attemptRequest, res, hooks, cancelable, ctx.upgrade);
      } else if (h2Upstream) {
        outcome = await exchangeH2((h, o) => ctx.pools.h2Request(key, tls.profile, cluster.traffic?.limits, h, o), attemptRequest, res, hooks, cancelable);
      } else {
        outcome = await exchange(lease.pool, attemptRequest, res, hooks, cancelable);
      }
      clearTimeout(perTry);
      lease.end();
      guard.done(key, outcome, res.statusCode, stopped);
      current = undefined;
      if (outcome.kind === 'responded') {
        if (!outcome.complete) {
          // The body broke off half-way (upstream reset, downstream gone, timeout): nothing more can
          // be said to this client; the access log records why.
          resetResponse(res);
          log.flags = addFlag(log.flags, stopped === 'timeout' ? 'UT' : stopped === 'downstream' || outcome.error instanceof RequestBodyAborted ? 'DC' : outcome.error instanceof UpstreamStreamReset ? 'UR' : 'UC');
        }
        return undefined;
      }
      if (stopped) return AttemptGuard.refusal('cancelled', stopped);
      if (outcome.kind === 'failed' && outcome.error instanceof RequestBodyAborted) return LocalReplies.downstreamDisconnect;
      if (outcome.kind === 'failed') {
        // A per-try timeout is retried like a reset; out of retries it answers 504 UT.
        const failure: Failure = tryTimedOut ? { kind: 'reset', reply: LocalReplies.timeout } : classify(outcome.error);
        const retriable = retry.attempts > 0 && retriableFailure(retry, failure);
        if (!(retriable && attemptsLeft > 0 && replayable() && guard.mayRetry())) {
          // URX only when the policy would have gone again but the retries ran out, as Envoy flags it.
          return retriable && attemptsLeft === 0 ? withRetriesExhausted(failure.reply) : failure.reply;
        }
      }
      // A retriable failure or answer (retry-status): wait, then go again unless stopped meanwhile.
      await backoff(retry, attempt + 1, ctx.random, cancelable);
      current = undefined;
      if (stopped) return AttemptGuard.refusal('cancelled', stopped);
    }
  } finally {
    guard.close();
    clearTimeout(timer);
    offGone();
  }
}

/** Trailers the client sent after its body (HTTP/2 trailers, HTTP/1 chunked trailers), if any. */
function trailersOf(req: IncomingMessage): Record<string, string> | undefined {
  const t = req.trailers as Record<string, string | undefined> | undefined;
  if (!t) return undefined;
  let out: Record<string, string> | undefined;
  for (const [k, v] of Object.entries(t)) if (v !== undefined && k.charCodeAt(0) !== 58) (out ??= {})[k] = v;
  return out;
}

function toList(v: string | number | readonly string[] | undefined): string[] {
  if (v === undefined) return [];
  return Array.isArray(v) ? [...v] : [String(v)];
}
