// The observe step of the request pipeline: it wraps every other stage. When a request starts, its
// record is opened (the access log line, the Istio metrics and the trace span are all written from
// it when the response ends, telemetry/access-log.ts), and the exchange's `reply` is made: the one
// way a stage's typed failure reaches the client (respond.ts), with its response flag, details and
// error code put on the record.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { logWhenDone, newRequestRecord, type RequestRecord } from '../../telemetry/access-log.js';
import { peerOfRequest } from '../../telemetry/workload.js';
import { forwardedFor, requestIdOf } from '../headers.js';
import { addFlag, sendLocalReply, type LocalReply } from '../respond.js';
import type { UpgradeTunnel } from '../upgrade-exchange.js';
import type { Exchange, HttpHandlerContext, ListenerInfo } from './exchange.js';
import { authorityOf } from './normalize.js';

export function openExchange(req: IncomingMessage, res: ServerResponse, listener: ListenerInfo, ctx: HttpHandlerContext, port: number, tunnel: UpgradeTunnel | undefined): Exchange {
  const socket = req.socket;
  const requestId = requestIdOf(req.headers);
  const remoteAddress = socket.remoteAddress ?? '';
  const remotePort = socket.remotePort ?? 0;
  const record: RequestRecord = listener.localApp || listener.keepsForwardedFor
    ? newRequestRecord(req, requestId, authorityOf(req), remoteAddress, remotePort)
    : newRequestRecord(req, requestId, authorityOf(req), remoteAddress, remotePort, forwardedFor(req.headers, remoteAddress));
  if (listener.localApp) {
    // Delivered to the local app (a sidecar's inbound side), Istio reports it as the destination, with
    // the verified caller's workload. Set on the record itself: a spread copy of it per request was
    // the largest of the sidecar's own allocations (docs/benchmarks.md, fourth round).
    record.upstreamCluster = listener.localApp.cluster;
    record.reporter = 'destination';
    const downstreamPeer = peerOfRequest(req.headers, listener.peerPrincipal?.(req));
    if (downstreamPeer) record.downstreamPeer = downstreamPeer;
  }
  logWhenDone(req, res, record, ctx.accessLog, tunnel);
  ctx.accessLog.startSpan?.(req, record);
  const reply = (r: LocalReply): void => {
    record.flags = addFlag(record.flags, r.flag);
    record.details = r.details;
    record.errorCode = r.code;
    sendLocalReply(res, r, { 'x-request-id': requestId });
  };
  // `tunnel` is set (undefined for most requests) rather than spread in: one object, one shape for all.
  return { req, res, listener, ctx, tunnel, record, reply, requestId, remoteAddress, port, snapshot: ctx.holder.current() };
}
