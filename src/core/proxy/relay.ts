// relay(): one request to one fixed upstream (no route, no retries, no load balancing) — what a
// sidecar does towards its own app, and what an ALLOW_ANY passthrough does towards a host the
// mesh does not know. The request goes out with the normalized path the proxy checked and routed
// on (docs/security.md), never the raw one, so policy and backend see the same path. The response
// streams back with backpressure; failures become local replies. The upstream's protocol
// (upstream-protocol.ts) says whether a request goes over h2c or pooled HTTP/1.1; a gRPC request goes
// over h2c whatever it says (gRPC is only spoken over HTTP/2), with its trailers, trailers-only answers
// and resets intact. A client that goes away cancels the app's request at once.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestFacts } from '../routing/types.js';
import type { RequestRecord } from '../telemetry/access-log.js';
import { downstreamResponseHeaders } from './headers.js';
import { LocalReplies, type LocalReply } from './respond.js';
import { exchange, type Cancel, type ExchangeHooks, type ExchangeOutcome } from './upstream-exchange.js';
import { exchangeH2, UpstreamStreamReset } from './h2-exchange.js';
import { isGrpcRequest } from './grpc-status.js';
import { classify } from './retry-decisions.js';
import { upstreamH2, type UpstreamProtocol } from './upstream-protocol.js';
import { exchangeUpgrade, type UpgradeTunnel } from './upgrade-exchange.js';
import { guardedBody, onDownstreamGone, resetResponse, RequestBodyAborted, requestGone } from './stream-state.js';
import type { UpstreamPools } from './upstream-pools.js';

export function requestHasBody(req: IncomingMessage): boolean {
  // HTTP/2 frames the body itself: a request has one unless its headers ended the stream.
  if (req.httpVersionMajor === 2) return !(req as unknown as { stream?: { endAfterHeaders?: boolean } }).stream?.endAfterHeaders;
  const len = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}

export function relay(
  pools: UpstreamPools,
  key: string,
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
  record.upstreamHost = key;
  if (requestGone(req)) return reply(LocalReplies.downstreamDisconnect);
  const lease = pools.acquire(key);
  let current: Cancel | undefined;
  let downstreamGone = false;
  const offGone = onDownstreamGone(res, () => {
    downstreamGone = true;
    current?.cancel(new Error('downstream closed'));
  });
  const started = performance.now();
  const request = {
    path: target.queryString ? `${target.path}?${target.queryString}` : target.path,
    method: req.method ?? 'GET',
    headers,
    trailers: () => req.trailers as Record<string, string> | undefined,
    ...(requestHasBody(req) ? { body: guardedBody(req) } : {}),
  };
  const onCancelable = (c: Cancel): void => {
    current = c;
    if (downstreamGone) c.cancel(new Error('downstream closed'));
  };
  const hooks: ExchangeHooks = {
    retryOnStatus: () => false,
    responseHeaders: (upstream) => {
      record.upstreamServiceTime = Math.round(performance.now() - started);
      const out = downstreamResponseHeaders(upstream);
      out['x-envoy-upstream-service-time'] = String(record.upstreamServiceTime);
      out.server = 'istio-envoy';
      return out;
    },
  };
  const attempt: Promise<ExchangeOutcome> = tunnel
    ? exchangeUpgrade((onFailure) => pools.connect(key, undefined, undefined, onFailure), request, res, hooks, onCancelable, tunnel)
    : upstreamH2(protocol, req) || isGrpcRequest(req.headers)
    ? exchangeH2((h, o) => pools.h2Request(key, undefined, undefined, h, o), request, res, hooks, onCancelable)
    : exchange(lease.pool, request, res, hooks, onCancelable);
  attempt.then(
    (outcome) => {
      lease.end();
      offGone();
      if (outcome.kind === 'responded') {
        if (!outcome.complete) {
          record.flags = downstreamGone || outcome.error instanceof RequestBodyAborted ? 'DC' : outcome.error instanceof UpstreamStreamReset ? 'UR' : 'UC';
          resetResponse(res);
        }
      } else if (outcome.kind === 'failed') {
        // Told apart as forward() tells them (retry-decisions.ts): a refused connection is UF, one
        // the app dropped UC, a stream it reset UR, an answer that could not be parsed UPE.
        reply(downstreamGone || outcome.error instanceof RequestBodyAborted ? LocalReplies.downstreamDisconnect : classify(outcome.error).reply);
      }
    },
    () => {
      lease.end();
      offGone();
      reply(LocalReplies.upstreamReset);
    },
  );
}
