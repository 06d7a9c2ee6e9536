// Upgraded connections (WebSocket, or any other `Upgrade:` protocol). Node hands such a request over
// as a raw socket instead of a response object; a ServerResponse is put on that socket so that the
// request goes through the same pipeline as every other (http-handler.ts: TLS redirect, routing,
// redirects and direct responses, rate limits, faults, circuit breakers, local replies from
// respond.ts, the access log). Only the upstream exchange differs (upgrade-exchange.ts): after the
// upstream's 101 the bytes are piped both ways. Which protocols may upgrade, and h2c (never a
// tunnel: served as plain HTTP/1.1), are upgrade-policy.ts's.

import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { handleHttpRequest, type HttpHandlerContext, type ListenerInfo } from './http-handler.js';
import type { UpgradeTunnel } from './upgrade-exchange.js';
import { offersH2c, replayWithoutH2c } from './upgrade-policy.js';

export function handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer, listener: ListenerInfo, ctx: HttpHandlerContext): void {
  socket.on('error', () => socket.destroy());
  if (offersH2c(req) && replayWithoutH2c(req, socket, head)) return;
  const res = new ServerResponse(req);
  // Whatever answer that is not a 101 ends the connection: the client asked to leave HTTP on it.
  res.shouldKeepAlive = false;
  res.assignSocket(socket);
  const tunnel: UpgradeTunnel = { socket, head, protocol: String(req.headers.upgrade ?? ''), upgraded: false, received: 0, sent: 0 };
  res.once('finish', () => {
    if (!tunnel.upgraded) socket.end();
  });
  handleHttpRequest(req, res, listener, ctx, tunnel);
}
