// forward(): sends a routed request to one of its destinations and streams the answer back, with
// the route's timeout, per-try timeout and retry policy, and starts its mirrored copies. Bodies
// stream both ways; only a small body is held so a retry (or a mirror) can send it again. Each
// attempt's connection gets the TLS its cluster and endpoint call for (Istio mTLS into the mesh,
// DestinationRule origination outside it, or none).

import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Endpoint } from '../registry/types.js';
import type { Cluster, PickContext } from '../policy/types.js';
import { endpointPort } from '../registry/types.js';
import type { DestinationTarget, ForwardAction, RequestFacts, RetryPolicy } from '../routing/types.js';
import { routedDestination } from './destination-pick.js';
import { answerHeaders, applyHeaderRules, upstreamRequestHeaders } from './headers.js';
import { LocalReplies, addFlag, upstreamTlsFailure, withRetriesExhausted, type LocalReply } from './respond.js';
import { guardedBody, onDownstreamGone, resetResponse, requestGone, RequestBodyAborted } from './stream-state.js';
import { boundedByGrpcTimeout, isGrpcRequest } from './grpc-status.js';
import { sendMirrors } from './mirror.js';
import { UpstreamPools } from './upstream-pools.js';
import { startExchange, type Cancel, type ExchangeHooks, type ExchangeOutcome, type ExchangeRequest } from './upstream-exchange.js';
import { exchangeH2, UpstreamStreamReset } from './h2-exchange.js';
import { exchangeUpgrade, type TunnelConnect, type UpgradeTunnel } from './upgrade-exchange.js';
import type { RequestRecord } from '../telemetry/access-log.js';
import { PEER_METADATA_HEADER, PEER_METADATA_ID_HEADER, workloadOfEndpoint } from '../telemetry/workload.js';
import type { IdentityProvider } from '../pki/types.js';
import { decideUpstreamTls, type UpstreamTlsProfile } from '../tls/upstream-tls.js';
import { AttemptGuard, type Gate } from './attempt-guard.js';
import { backoff, classify, retriableFailure, retriableStatus, type Failure } from './retry-decisions.js';
import { ReplayBody } from './replay-body.js';
import { requestHasBody } from './relay.js';
import { clusterProtocol, upstreamH2 } from './upstream-protocol.js';
import { keepsOriginalDestination, originalEndpoint, type Dialled } from '../policy/original-dst.js';
import { socketEnds } from './upstream-socket.js';
import { tlsFailureReason, transportFailureReason } from './transport-failure.js';
import type { PeerMetadata } from '../telemetry/peer-metadata.js';

/** Bodies up to this size are kept in memory so a retry can send them again (Envoy buffers similarly). */
const REPLAY_LIMIT = 64 * 1024;

export interface ForwardContext {
  readonly pools: UpstreamPools;
  readonly random: () => number;
  readonly remoteAddress: string;
  readonly requestId: string;
  /** x-forwarded-client-cert of a verified client certificate. */
  readonly clientCert?: string | undefined;
  /** This proxy's workload identity: with it, endpoints that run a sidecar get Istio mTLS. */
  readonly identity?: IdentityProvider | undefined;
  /** Set on the upstream's response over its own values (the route's CORS headers). */
  readonly responseHeaders?: Readonly<Record<string, string>> | undefined;
  /** An upgrade request: each attempt is an upgrade exchange on a connection of its own. */
  readonly upgrade?: UpgradeTunnel | undefined;
  /** This proxy's peer metadata (peer-metadata.ts), told to mesh peers over Istio mTLS. */
  readonly peerMetadata?: PeerMetadata | undefined;
  /** The destination picked when the route was selected (routedDestination); picked here without it. */
  readonly destination?: DestinationTarget | undefined;
  /**
   * Where a captured request was going (the original destination): a cluster that keeps to it (a
   * headless Service, a ServiceEntry with `resolution: NONE`) sends every attempt there (ORIGINAL_DST).
   */
  readonly dialled?: Dialled | undefined;
  /**
   * The proxy detects protocols (a sidecar's outbound side): a cluster whose port is left to detection
   * speaks upstream what the client spoke (upstream-protocol.ts).
   */
  readonly detectsProtocol?: boolean | undefined;
  /** x-forwarded-for goes on as the client sent it (ListenerInfo.keepsForwardedFor). */
  readonly keepsForwardedFor?: boolean | undefined;
  /** The trusted client address, sent as x-envoy-external-address where x-forwarded-for is appended. */
  readonly externalAddress?: string | undefined;
}

/** How a forward ended: undefined when the upstream's answer went to the client, else the failure to answer; `bug` when it threw. */
export type ForwardDone = (failure: LocalReply | undefined, bug?: unknown) => void;

/** The forward is waiting (for an answer, a circuit breaker's slot, a back-off): it goes on by itself. */
const PENDING: unique symbol = Symbol('pending');
type Step = LocalReply | undefined | typeof PENDING;

/**
 * Sends the request upstream and calls `done` once, when it has ended. Runs synchronously until the
 * first wait, and then from callbacks: one object per request holds what its attempts share, where
 * an async function kept it in a context and a dozen closures, and awaited each attempt (a promise
 * and a turn of the microtask queue; docs/benchmarks.md, "The plain-HTTP path").
 */
export function forward(
  req: IncomingMessage,
  res: ServerResponse,
  facts: RequestFacts,
  action: ForwardAction,
  ctx: ForwardContext,
  log: RequestRecord,
  done: ForwardDone,
): void {
  const dest = ctx.destination ?? routedDestination(action, ctx.random, log);
  if (!dest) return done(LocalReplies.clusterNotFound);
  const cluster = dest.cluster;
  if (!cluster) return done(dest.invalidBackend ? LocalReplies.invalidBackend : LocalReplies.clusterNotFound);
  // Envoy's ORIGINAL_DST: the dialled pod (ready or not) or nothing, the same one on every attempt.
  const pinned = ctx.dialled && keepsOriginalDestination(cluster.service) ? (originalEndpoint(cluster, ctx.dialled) ?? null) : undefined;
  if (pinned === null || (!pinned && cluster.endpoints.length === 0)) return done(LocalReplies.noHealthyUpstream);
  new Forwarding(req, res, facts, action, ctx, log, dest, cluster, pinned, done).start();
}

/** One forwarded request, from its first attempt to its end (forward()). */
class Forwarding implements ExchangeHooks {
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #facts: RequestFacts;
  readonly #action: ForwardAction;
  readonly #ctx: ForwardContext;
  readonly #log: RequestRecord;
  readonly #dest: DestinationTarget;
  readonly #cluster: Cluster;
  /** The endpoint every attempt goes to when the cluster keeps to the original destination. */
  readonly #pinned: Endpoint | undefined;
  readonly #done: ForwardDone;
  readonly #retry: RetryPolicy;
  /** Circuit breaker and outlier detection: admit each attempt, allow retries, report results. */
  readonly #guard: AttemptGuard;
  // An upgrade is HTTP/1.1 whatever the port speaks (WebSocket over HTTP/2 would need extended CONNECT).
  readonly #h2Upstream: boolean;
  readonly #pickContext: { -readonly [K in keyof PickContext]: PickContext[K] };
  #headers: Record<string, string | string[]> = {};
  #fullPath = '';
  #body: ReplayBody | AsyncIterable<Buffer> | undefined;
  // The route timeout spans every attempt; downstream going away cancels everything. No
  // AbortController: the attempt in flight is cancelled through its dispatch controller.
  #stopped: 'timeout' | 'downstream' | undefined;
  /** The attempt, wait for a connection slot or back-off in flight, to be called off. */
  #current: Cancel | undefined;
  #timer: NodeJS.Timeout | undefined;
  #offGone: (() => void) | undefined;
  #attempt = 0;
  #attemptsLeft: number;
  // The endpoints tried before this attempt, for a retry policy that avoids them (Istio's default).
  // The set starts at the first retry: empty, it excludes nothing, and most requests never retry.
  #tried: Set<Endpoint> | undefined;
  #previous: Endpoint | undefined;
  #setCookie: string | undefined;
  /** The attempt in flight: its endpoint, its TLS, its pool lease, its per-try timer. */
  #key = '';
  #tls: UpstreamTlsProfile | undefined;
  #lease: { end(): void } | undefined;
  #perTry: NodeJS.Timeout | undefined;
  #tryTimedOut = false;
  #started = 0;

  /** Attempts, waits for a connection slot and back-offs all register here to be called off. */
  readonly #cancelable = (c: Cancel): void => {
    this.#current = c;
    if (this.#stopped) c.cancel(new Error(this.#stopped));
  };

  readonly #onOutcome = (o: ExchangeOutcome): void => this.#drive(this.#ended, o);

  constructor(req: IncomingMessage, res: ServerResponse, facts: RequestFacts, action: ForwardAction, ctx: ForwardContext, log: RequestRecord, dest: DestinationTarget, cluster: Cluster, pinned: Endpoint | undefined, done: ForwardDone) {
    this.#req = req;
    this.#res = res;
    this.#facts = facts;
    this.#action = action;
    this.#ctx = ctx;
    this.#log = log;
    this.#dest = dest;
    this.#cluster = cluster;
    this.#pinned = pinned;
    this.#done = done;
    this.#retry = action.retry;
    this.#attemptsLeft = action.retry.attempts;
    this.#guard = new AttemptGuard(cluster);
    this.#h2Upstream = !ctx.upgrade && upstreamH2(clusterProtocol(cluster, ctx.detectsProtocol === true), req);
    this.#pickContext = { headers: req.headers, sourceIp: ctx.remoteAddress, query: facts.query };
  }

  start(): void {
    this.#drive(this.#begin, undefined);
  }

  /** Runs one step; anything but PENDING ends the request (a throw is a bug, answered as one). */
  #drive<A>(step: (this: Forwarding, a: A) => Step, arg: A): void {
    let result: Step;
    try {
      result = step.call(this, arg);
    } catch (err) {
      this.#close();
      // `bug` must be defined to read as one: a thrown undefined would pass for an answered request.
      return this.#done(undefined, err ?? new Error(`forward threw ${String(err)}`));
    }
    if (result === PENDING) return;
    this.#close();
    this.#done(result);
  }

  /** Frees everything the request holds, however it ended: an attempt that threw never reached #ended. */
  #close(): void {
    this.#guard.close();
    clearTimeout(this.#timer);
    clearTimeout(this.#perTry);
    this.#lease?.end();
    this.#offGone?.();
  }

  #begin(): Step {
    const action = this.#action;
    const req = this.#req;
    const facts = this.#facts;
    const ctx = this.#ctx;
    const dest = this.#dest;
    const path = action.rewritePath ? action.rewritePath(facts.path) : facts.path;
    const fullPath = (this.#fullPath = facts.queryString ? `${path}?${facts.queryString}` : path);
    // Envoy's router rewrites :path in the request its access log reads, and keeps the whole path it
    // replaced (query included) in x-envoy-original-path, which goes upstream too.
    let originalPath: string | undefined;
    if (path !== facts.path) {
      originalPath = facts.queryString ? `${facts.path}?${facts.queryString}` : facts.path;
      this.#log.originalPath = originalPath;
      this.#log.path = fullPath;
    }
    const headers = (this.#headers = upstreamRequestHeaders(req.headers, {
      remoteAddress: ctx.keepsForwardedFor ? undefined : ctx.remoteAddress,
      externalAddress: ctx.externalAddress,
      scheme: facts.scheme,
      authority: dest.authority ?? action.authority ?? facts.authority,
      requestId: ctx.requestId,
      ...(originalPath !== undefined ? { originalPath } : {}),
      ...(ctx.clientCert ? { clientCert: ctx.clientCert } : {}),
    }));
    applyHeaderRules(headers, action.requestHeaders);
    applyHeaderRules(headers, dest.requestHeaders);

    // A body that retries or mirrors may need again is copied as it streams, unless its length says
    // at once that it is too large to hold; without a length it is held until it proves too large.
    // A client already gone (it reset the stream while a fault delay or a rate limit held it) is not
    // forwarded at all: a cut-off upload must never reach the upstream as a whole request.
    if (requestGone(req)) return LocalReplies.downstreamDisconnect;
    if (requestHasBody(req)) {
      const len = Number(req.headers['content-length'] ?? 0);
      const source = guardedBody(req);
      this.#body = (this.#retry.attempts > 0 || action.mirrors.length > 0) && len <= REPLAY_LIMIT ? new ReplayBody(source, REPLAY_LIMIT) : source;
    }
    const body = this.#body;

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

    // A gRPC call's grpc-timeout bounds the route timeout (Istio sets grpcTimeoutHeaderMax to it).
    const timeoutMs = isGrpcRequest(req.headers) ? boundedByGrpcTimeout(action.timeoutMs, req.headers) : action.timeoutMs;
    if (timeoutMs > 0) this.#timer = setTimeout(() => this.#stop('timeout'), timeoutMs);
    // An HTTP/2 reset or a closed connection cancels the attempt at once (the upstream stream is reset,
    // the upstream HTTP/1 connection dropped), whatever Node's writable flags say (stream-state.ts).
    this.#offGone = onDownstreamGone(this.#res, () => this.#stop('downstream'));
    return this.#next();
  }

  #stop(why: 'timeout' | 'downstream'): void {
    this.#stopped ??= why;
    this.#current?.cancel(new Error(why === 'timeout' ? 'route timeout' : 'downstream closed'));
  }

  #replayable(): boolean {
    return this.#body === undefined || (this.#body instanceof ReplayBody && this.#body.replayable);
  }

  /** The next attempt: an endpoint, its TLS, and room under the circuit breaker. */
  #next(): Step {
    const cluster = this.#cluster;
    const headers = this.#headers;
    this.#attemptsLeft = this.#retry.attempts - this.#attempt;
    if (this.#previous && this.#retry.avoidPreviousHosts) this.#pickContext.exclude = (this.#tried ??= new Set<Endpoint>()).add(this.#previous);
    const pick = this.#pinned ? { endpoint: this.#pinned } : cluster.lb.pick(this.#pickContext);
    if (!pick) return LocalReplies.noHealthyUpstream;
    this.#previous = pick.endpoint;
    this.#setCookie = 'setCookie' in pick ? pick.setCookie : undefined;
    const key = (this.#key = UpstreamPools.key(pick.endpoint.address, endpointPort(pick.endpoint, cluster.port)));
    this.#log.upstreamHost = key;
    this.#log.upstreamPeer = workloadOfEndpoint(pick.endpoint);
    headers['x-envoy-attempt-count'] = String(this.#attempt + 1);
    const tls = decideUpstreamTls(cluster, pick.endpoint, this.#ctx.identity, String(headers.host ?? ''));
    // Never plaintext where the rule asks for mTLS; without a certificate no endpoint is reachable.
    if (!tls.ok) {
      this.#log.upstreamTransportFailureReason = tlsFailureReason(tls.reason);
      return this.#attempt > 0 ? withRetriesExhausted(upstreamTlsFailure(tls.reason)) : upstreamTlsFailure(tls.reason);
    }
    this.#tls = tls.profile;
    // Set only when true: a plaintext upstream's record keeps its shape (no property added per request).
    if (tls.profile?.kind === 'ISTIO_MUTUAL') this.#log.upstreamMtls = true;
    else if (this.#log.upstreamMtls) this.#log.upstreamMtls = false;
    if (this.#ctx.peerMetadata && tls.profile?.kind === 'ISTIO_MUTUAL') {
      headers[PEER_METADATA_HEADER] = this.#ctx.peerMetadata.header;
      headers[PEER_METADATA_ID_HEADER] = this.#ctx.peerMetadata.id;
    }
    // Admitted at once unless a circuit breaker makes the attempt wait.
    const admission = this.#guard.admit(this.#h2Upstream, this.#cancelable);
    if (!(admission instanceof Promise)) return this.#send(admission);
    admission.then((gate) => this.#drive(this.#send, gate), (err: unknown) => this.#drive(rethrow, err));
    return PENDING;
  }

  /** The attempt, once the circuit breaker has said whether it may go. */
  #send(gate: Gate): Step {
    this.#current = undefined;
    if (gate !== 'admitted' || this.#stopped) return AttemptGuard.refusal(gate, this.#stopped);
    const req = this.#req;
    const res = this.#res;
    const ctx = this.#ctx;
    const key = this.#key;
    const limits = this.#cluster.traffic?.limits;
    const lease = (this.#lease = ctx.pools.acquire(key, this.#h2Upstream ? undefined : this.#tls, limits));
    this.#started = performance.now();
    const body = this.#body instanceof ReplayBody ? this.#body.forAttempt() : this.#body;
    const request: ExchangeRequest = { path: this.#fullPath, method: req.method ?? 'GET', headers: this.#headers, ...(body !== undefined ? { body } : {}) };
    // Envoy lets a response that has started run on to the route timeout: a per-try timeout only
    // ends an attempt that has not answered yet.
    this.#tryTimedOut = false;
    const perTryTimeoutMs = this.#retry.perTryTimeoutMs;
    if (perTryTimeoutMs > 0) {
      this.#perTry = setTimeout(() => {
        if (res.headersSent) return;
        this.#tryTimedOut = true;
        this.#current?.cancel(new Error('per-try timeout'));
      }, perTryTimeoutMs);
    }
    const tls = this.#tls;
    if (ctx.upgrade) {
      const open: TunnelConnect = (onFailure) => ctx.pools.connect(key, tls, limits, onFailure);
      exchangeUpgrade(open, request, res, this, this.#cancelable, ctx.upgrade).then(this.#onOutcome, (err: unknown) => this.#drive(rethrow, err));
    } else if (this.#h2Upstream) {
      const h2Request = { ...request, trailers: () => trailersOf(req) };
      exchangeH2((h, o) => ctx.pools.h2Request(key, tls, limits, h, o), h2Request, res, this, this.#cancelable).then(this.#onOutcome, (err: unknown) => this.#drive(rethrow, err));
    } else {
      startExchange(lease.pool, request, res, this, this.#cancelable, this.#onOutcome);
    }
    return PENDING;
  }

  /** The attempt ended: the answer went out, or the request fails, or it goes again. */
  #ended(outcome: ExchangeOutcome): Step {
    const res = this.#res;
    const retry = this.#retry;
    const stopped = this.#stopped;
    clearTimeout(this.#perTry);
    this.#lease?.end();
    this.#guard.done(this.#key, outcome, res.statusCode, stopped);
    this.#current = undefined;
    // The last attempt's, as Envoy keeps it: a retry that connected clears what an earlier one failed with.
    if (outcome.kind === 'failed') this.#log.upstreamTransportFailureReason = transportFailureReason(outcome.error);
    else if (this.#log.upstreamTransportFailureReason !== undefined) this.#log.upstreamTransportFailureReason = undefined;
    if (outcome.kind === 'responded') {
      if (!outcome.complete) {
        // The body broke off half-way (upstream reset, downstream gone, timeout): nothing more can
        // be said to this client; the access log records why.
        resetResponse(res);
        this.#log.flags = addFlag(this.#log.flags, stopped === 'timeout' ? 'UT' : stopped === 'downstream' || outcome.error instanceof RequestBodyAborted ? 'DC' : outcome.error instanceof UpstreamStreamReset ? 'UR' : 'UC');
      }
      return undefined;
    }
    if (stopped) return AttemptGuard.refusal('cancelled', stopped);
    if (outcome.kind === 'failed' && outcome.error instanceof RequestBodyAborted) return LocalReplies.downstreamDisconnect;
    if (outcome.kind === 'failed') {
      // A per-try timeout is retried like a reset; out of retries it answers 504 UT.
      const failure: Failure = this.#tryTimedOut ? { kind: 'reset', reply: LocalReplies.timeout } : classify(outcome.error);
      const retriable = retry.attempts > 0 && retriableFailure(retry, failure);
      if (!(retriable && this.#attemptsLeft > 0 && this.#replayable() && this.#guard.mayRetry())) {
        // URX only when the policy would have gone again but the retries ran out, as Envoy flags it.
        return retriable && this.#attemptsLeft === 0 ? withRetriesExhausted(failure.reply) : failure.reply;
      }
    }
    // A retriable failure or answer (retry-status): wait, then go again unless stopped meanwhile.
    this.#attempt++;
    backoff(retry, this.#attempt, this.#ctx.random, this.#cancelable).then(() => this.#drive(this.#afterBackoff, undefined), (err: unknown) => this.#drive(rethrow, err));
    return PENDING;
  }

  #afterBackoff(): Step {
    this.#current = undefined;
    if (this.#stopped) return AttemptGuard.refusal('cancelled', this.#stopped);
    return this.#next();
  }

  retryOnStatus(status: number, upstream: Record<string, string | string[] | undefined>): boolean {
    const retry = this.#retry;
    if (retry.attempts === 0 || !retriableStatus(retry, status, upstream)) return false;
    if (this.#attemptsLeft > 0 && this.#replayable() && this.#guard.mayRetry()) return true;
    // Envoy's UpstreamRetryLimitExceeded: the answer goes out as it is, flagged URX.
    if (this.#attemptsLeft === 0) this.#log.flags = addFlag(this.#log.flags, 'URX');
    return false;
  }

  sentOn(socket: Socket): void {
    this.#log.upstreamConnection = socketEnds(socket);
  }

  responseHeaders(upstream: Record<string, string | string[] | undefined>): OutgoingHttpHeaders {
    // The attempt count goes upstream only: Istio turns on Envoy's include_request_attempt_count,
    // never include_attempt_count_in_response.
    const out = answerHeaders(upstream, this.#log, this.#started);
    applyHeaderRules(out as Record<string, string | string[]>, this.#action.responseHeaders);
    applyHeaderRules(out as Record<string, string | string[]>, this.#dest.responseHeaders);
    if (this.#ctx.responseHeaders) Object.assign(out, this.#ctx.responseHeaders);
    if (this.#setCookie) out['set-cookie'] = [...toList(out['set-cookie']), this.#setCookie];
    return out;
  }
}

/** A step that only throws what a promise it waited on rejected with (answered as a bug). */
function rethrow(err: unknown): Step {
  throw err;
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
