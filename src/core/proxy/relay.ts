// relay(): one request to one fixed upstream (no route, no retries, no load balancing) — what a
// sidecar does towards its own app, and what an ALLOW_ANY passthrough does towards a host the
// mesh does not know. The request goes out with the normalized path the proxy checked and routed
// on (docs/security.md), never the raw one, so policy and backend see the same path. The response
// streams back with backpressure; failures become local replies. The upstream's protocol
// (upstream-protocol.ts) says whether a request goes over h2c or pooled HTTP/1.1; a gRPC request goes
// over h2c whatever it says (gRPC is only spoken over HTTP/2), with its trailers, trailers-only answers
// and resets intact. A client that goes away cancels the app's request at once.

import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { RequestFacts } from '../routing/types.js';
import type { RequestRecord } from '../telemetry/access-log.js';
import { answerHeaders } from './headers.js';
import { LocalReplies, type LocalReply } from './respond.js';
import { startExchange, type Cancel, type ExchangeHooks, type ExchangeOutcome, type ExchangeRequest } from './upstream-exchange.js';
import { exchangeH2, UpstreamStreamReset } from './h2-exchange.js';
import { isGrpcRequest } from './grpc-status.js';
import { classify } from './retry-decisions.js';
import { upstreamH2, type UpstreamProtocol } from './upstream-protocol.js';
import { exchangeUpgrade, type UpgradeTunnel } from './upgrade-exchange.js';
import { guardedBody, onDownstreamGone, resetResponse, RequestBodyAborted, requestGone } from './stream-state.js';
import type { UpstreamPools } from './upstream-pools.js';
import type { ConnectionLimits } from '../policy/connection-limits.js';
import type { ClusterBreaker, Slot } from '../policy/circuit-breaker.js';
import { socketEnds } from './upstream-socket.js';
import { transportFailureReason } from './transport-failure.js';

/**
 * The one upstream a relay goes to: its pool key, the connection settings its pool keeps and, where
 * a Sidecar's inbound connectionPool sets finite limits, the circuit breaker that counts them (past
 * them: 503 UO, as forward()).
 */
export interface RelayUpstream {
  readonly key: string;
  /** Its connection settings: the connect timeout always (policy/connection-limits.ts), pool limits where set. */
  readonly limits: ConnectionLimits;
  readonly breaker?: ClusterBreaker;
}

export function requestHasBody(req: IncomingMessage): boolean {
  // HTTP/2 frames the body itself: a request has one unless its headers ended the stream.
  if (req.httpVersionMajor === 2) return !(req as unknown as { stream?: { endAfterHeaders?: boolean } }).stream?.endAfterHeaders;
  const len = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}

export function relay(
  pools: UpstreamPools,
  upstream: RelayUpstream,
  protocol: UpstreamProtocol,
  req: IncomingMessage,
  res: ServerResponse,
  /** The normalized path and the query, as read by requestFacts(). */
  target: Pick<RequestFacts, 'path' | 'queryString'>,
  headers: Record<string, string | string[]>,
  record: RequestRecord,
  reply: (r: LocalReply) => void,
  /** Set for an upgrade request (upgrade.ts). */
  tunnel?: UpgradeTunnel,
): void {
  record.upstreamHost = upstream.key;
  if (requestGone(req)) return reply(LocalReplies.downstreamDisconnect);
  new Relaying(pools, upstream, req, res, record, reply).start(protocol, target, headers, tunnel);
}

/**
 * One relayed request, from dispatch to outcome. Its hooks are methods and its outcome a callback
 * (startExchange), not a promise: made of closures, a hooks object and a promise, the relay was the
 * largest of a sidecar's own allocations per request (docs/benchmarks.md).
 */
class Relaying implements ExchangeHooks {
  readonly #pools: UpstreamPools;
  readonly #key: string;
  readonly #limits: ConnectionLimits;
  readonly #breaker: ClusterBreaker | undefined;
  #slot: Slot | undefined;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #record: RequestRecord;
  readonly #reply: (r: LocalReply) => void;
  readonly #lease: ReturnType<UpstreamPools['acquire']>;
  readonly #started = performance.now();
  readonly #offGone: () => void;
  #current: Cancel | undefined;
  #downstreamGone = false;

  constructor(pools: UpstreamPools, upstream: RelayUpstream, req: IncomingMessage, res: ServerResponse, record: RequestRecord, reply: (r: LocalReply) => void) {
    this.#pools = pools;
    this.#key = upstream.key;
    this.#limits = upstream.limits;
    this.#breaker = upstream.breaker;
    this.#req = req;
    this.#res = res;
    this.#record = record;
    this.#reply = reply;
    this.#lease = pools.acquire(upstream.key, undefined, upstream.limits);
    this.#offGone = onDownstreamGone(res, this.#onGone);
  }

  readonly #onGone = (): void => {
    this.#downstreamGone = true;
    this.#current?.cancel(new Error('downstream closed'));
  };

  readonly #onCancelable = (c: Cancel): void => {
    this.#current = c;
    if (this.#downstreamGone) c.cancel(new Error('downstream closed'));
  };

  readonly #onOutcome = (outcome: ExchangeOutcome): void => {
    const res = this.#res;
    this.#end();
    if (outcome.kind === 'responded') {
      if (!outcome.complete) {
        this.#record.flags = this.#downstreamGone || outcome.error instanceof RequestBodyAborted ? 'DC' : outcome.error instanceof UpstreamStreamReset ? 'UR' : 'UC';
        resetResponse(res);
      }
    } else if (outcome.kind === 'failed') {
      this.#record.upstreamTransportFailureReason = transportFailureReason(outcome.error);
      // Told apart as forward() tells them (retry-decisions.ts): a refused connection is UF, one
      // the app dropped UC, a stream it reset UR, an answer that could not be parsed UPE.
      this.#reply(this.#downstreamGone || outcome.error instanceof RequestBodyAborted ? LocalReplies.downstreamDisconnect : classify(outcome.error).reply);
    }
  };

  /** Goes at once, or when the circuit breaker has room (HTTP/1: a connection free, waiting up to maxPendingRequests). */
  start(protocol: UpstreamProtocol, target: Pick<RequestFacts, 'path' | 'queryString'>, headers: Record<string, string | string[]>, tunnel: UpgradeTunnel | undefined): void {
    const breaker = this.#breaker;
    const limits = this.#limits;
    if (!breaker) return this.#go(protocol, target, headers, tunnel);
    const multiplexed = !tunnel && (upstreamH2(protocol, this.#req) || isGrpcRequest(this.#req.headers));
    const admission = breaker.admit(limits, multiplexed, this.#onCancelable);
    if (admission === 'overflow') return this.#refuse(LocalReplies.overflow);
    if (!(admission instanceof Promise)) {
      this.#slot = admission;
      return this.#go(protocol, target, headers, tunnel);
    }
    admission.then(
      (waited) => {
        this.#current = undefined;
        if (waited === 'overflow') return this.#refuse(LocalReplies.overflow);
        if (waited === 'cancelled' || this.#downstreamGone) {
          if (waited !== 'cancelled') waited.release();
          return this.#refuse(LocalReplies.downstreamDisconnect);
        }
        this.#slot = waited;
        this.#go(protocol, target, headers, tunnel);
      },
      () => this.#refuse(LocalReplies.upstreamReset),
    );
  }

  #refuse(reply: LocalReply): void {
    this.#end();
    this.#reply(reply);
  }

  #go(protocol: UpstreamProtocol, target: Pick<RequestFacts, 'path' | 'queryString'>, headers: Record<string, string | string[]>, tunnel: UpgradeTunnel | undefined): void {
    const req = this.#req;
    const path = target.queryString ? `${target.path}?${target.queryString}` : target.path;
    const method = req.method ?? 'GET';
    const body = requestHasBody(req) ? guardedBody(req) : undefined;
    const key = this.#key;
    const limits = this.#limits;
    const pools = this.#pools;
    const failed = (): void => {
      this.#end();
      this.#reply(LocalReplies.upstreamReset);
    };
    if (tunnel) {
      const request: ExchangeRequest = { path, method, headers, body };
      exchangeUpgrade((onFailure) => pools.connect(key, undefined, limits, onFailure), request, this.#res, this, this.#onCancelable, tunnel).then(this.#onOutcome, failed);
    } else if (upstreamH2(protocol, req) || isGrpcRequest(req.headers)) {
      const request: ExchangeRequest = { path, method, headers, body, trailers: () => req.trailers as Record<string, string> | undefined };
      exchangeH2((h, o) => pools.h2Request(key, undefined, limits, h, o), request, this.#res, this, this.#onCancelable).then(this.#onOutcome, failed);
    } else {
      startExchange(this.#lease.pool, { path, method, headers, body }, this.#res, this, this.#onCancelable, this.#onOutcome);
    }
  }

  #end(): void {
    this.#lease.end();
    this.#offGone();
    this.#slot?.release();
    this.#slot = undefined;
  }

  retryOnStatus(): boolean {
    return false;
  }

  responseHeaders(upstream: Record<string, string | string[] | undefined>): OutgoingHttpHeaders {
    return answerHeaders(upstream, this.#record, this.#started);
  }

  sentOn(socket: Socket): void {
    this.#record.upstreamConnection = socketEnds(socket);
  }
}
