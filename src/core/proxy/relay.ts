// relay(): one request to one fixed upstream (no route, no retries, no load balancing) — what a
// sidecar does towards its own app, and what an ALLOW_ANY passthrough does towards a host the
// mesh does not know. The request goes out with the normalized path the proxy checked and routed
// on (SEMANTICS §5.3), never the raw one, so policy and backend see the same path. The response
// streams back with backpressure; failures become local replies.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestFacts } from '../routing/types.js';
import type { RequestRecord } from '../telemetry/access-log.js';
import { downstreamResponseHeaders } from './headers.js';
import { LocalReplies, type LocalReply } from './respond.js';
import { exchange, type Cancel } from './upstream-exchange.js';
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
  req: IncomingMessage,
  res: ServerResponse,
  /** The normalized path and the query, as read by requestFacts(). */
  target: Pick<RequestFacts, 'path' | 'queryString'>,
  headers: Record<string, string | string[]>,
  record: RequestRecord,
  reply: (r: LocalReply) => void,
): void {
  const lease = pools.acquire(key);
  record.upstreamHost = key;
  let current: Cancel | undefined;
  let downstreamGone = false;
  res.once('close', () => {
    if (res.writableFinished) return;
    downstreamGone = true;
    current?.cancel(new Error('downstream closed'));
  });
  const started = performance.now();
  exchange(
    lease.pool,
    { path: target.queryString ? `${target.path}?${target.queryString}` : target.path, method: req.method ?? 'GET', headers, ...(requestHasBody(req) ? { body: req } : {}) },
    res,
    {
      retryOnStatus: () => false,
      responseHeaders: (upstream) => {
        record.upstreamServiceTime = Math.round(performance.now() - started);
        const out = downstreamResponseHeaders(upstream);
        out['x-envoy-upstream-service-time'] = String(record.upstreamServiceTime);
        out.server = 'istio-envoy';
        return out;
      },
    },
    (c) => {
      current = c;
      if (downstreamGone) c.cancel(new Error('downstream closed'));
    },
  ).then(
    (outcome) => {
      lease.end();
      if (outcome.kind === 'responded') {
        if (!outcome.complete && !res.destroyed) res.destroy();
      } else if (outcome.kind === 'failed') {
        reply(LocalReplies.connectFailure);
      }
    },
    () => {
      lease.end();
      reply(LocalReplies.upstreamReset);
    },
  );
}
