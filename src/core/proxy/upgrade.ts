// Upgraded connections (WebSocket): routed like any request, then the raw bytes are piped both ways
// between the client and one endpoint for as long as either side keeps the connection open. The
// connection to the endpoint gets the same TLS as a request would (mesh mTLS, origination).

import { connect, type Socket } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { findRoute } from '../routing/lookup.js';
import { endpointPort } from '../registry/types.js';
import { applyHeaderRules, requestIdOf, upstreamRequestHeaders } from './headers.js';
import type { HttpHandlerContext, ListenerInfo } from './http-handler.js';
import { requestFacts } from './http-handler.js';
import { normalizePath } from './path-normalize.js';
import { pickDestination } from './forward.js';
import { LocalReplies, upstreamTlsFailure, type LocalReply } from './respond.js';
import { decideUpstreamTls } from '../tls/upstream-tls.js';

function rejectUpgrade(socket: Socket, r: LocalReply): void {
  const body = Buffer.from(r.body);
  socket.end(`HTTP/1.1 ${r.status} ${r.status === 404 ? 'Not Found' : 'Service Unavailable'}\r\nserver: istio-envoy\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${r.body}`);
}

export function handleUpgrade(
  req: IncomingMessage,
  socket: Socket,
  head: Buffer,
  listener: ListenerInfo,
  ctx: HttpHandlerContext,
): void {
  const { port, scheme, select } = listener;
  socket.on('error', () => socket.destroy());
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = normalizePath(q >= 0 ? url.slice(0, q) : url);
  if (path === undefined) return rejectUpgrade(socket, LocalReplies.badRequest);
  const snapshot = ctx.holder.current();
  const config = snapshot && select(snapshot, req);
  if (!config) return rejectUpgrade(socket, LocalReplies.noRoute);
  const facts = requestFacts(req, port, scheme, path);
  const { route } = findRoute(config, facts);
  if (!route || route.action.kind !== 'forward') return rejectUpgrade(socket, LocalReplies.noRoute);
  const action = route.action;
  const dest = pickDestination(action, ctx.random);
  const cluster = dest?.cluster;
  if (!dest || !cluster) return rejectUpgrade(socket, LocalReplies.clusterNotFound);
  const pick = cluster.lb.pick({ headers: req.headers, sourceIp: socket.remoteAddress ?? '', query: facts.query });
  if (!pick) return rejectUpgrade(socket, LocalReplies.noHealthyUpstream);

  const newPath = action.rewritePath ? action.rewritePath(facts.path) : facts.path;
  const headers = upstreamRequestHeaders(req.headers, {
    remoteAddress: socket.remoteAddress ?? '',
    scheme,
    authority: dest.authority ?? action.authority ?? facts.authority,
    requestId: requestIdOf(req.headers),
  });
  applyHeaderRules(headers, action.requestHeaders);
  applyHeaderRules(headers, dest.requestHeaders);
  headers.connection = 'Upgrade';
  headers.upgrade = req.headers.upgrade ?? 'websocket';

  const tls = decideUpstreamTls(cluster, pick.endpoint, ctx.identity, String(headers.host ?? ''));
  if (!tls.ok) return rejectUpgrade(socket, upstreamTlsFailure(tls.reason));
  const address = pick.endpoint.address;
  const endpointPortNumber = endpointPort(pick.endpoint, cluster.port);
  let upstream: Socket;
  if (tls.profile) {
    const opened = ctx.pools.openTls(tls.profile, address, endpointPortNumber);
    if (!opened.ok) return rejectUpgrade(socket, LocalReplies.connectFailure);
    upstream = opened.socket;
  } else {
    upstream = connect({ host: address, port: endpointPortNumber });
  }
  upstream.on('error', () => {
    if (socket.writable && !upstream.bytesRead) rejectUpgrade(socket, LocalReplies.connectFailure);
    else socket.destroy();
  });
  socket.on('close', () => upstream.destroy());
  upstream.on('close', () => socket.destroy());
  upstream.on(tls.profile ? 'secureConnect' : 'connect', () => {
    let head1 = `${req.method} ${facts.queryString ? `${newPath}?${facts.queryString}` : newPath} HTTP/1.1\r\n`;
    for (const [k, v] of Object.entries(headers)) for (const one of Array.isArray(v) ? v : [v]) head1 += `${k}: ${one}\r\n`;
    upstream.write(head1 + '\r\n');
    if (head.length > 0) upstream.write(head);
    upstream.pipe(socket);
    socket.pipe(upstream);
  });
}
