// Which `Upgrade:` requests may become tunnels (Envoy's upgrade_configs; Istio turns on WebSocket
// only), and what happens to `Upgrade: h2c`: Envoy's HTTP/1 codec strips it — the Upgrade token,
// HTTP2-Settings and their Connection tokens — and serves the request as the plain HTTP/1.1 request
// it also is, so h2c never reaches an upstream as a tunnel past routing and policy.
//
// node:http decides whether a request is an upgrade while parsing, before any handler sees it: an
// h2c upgrade request arrives detached from the parser as a raw socket. It is put back: its head is
// written out again without the h2c parts and handed, with the bytes after it, to the same server as
// if the connection had just begun, which reads it as an ordinary request (body and keep-alive too).

import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { HttpLimits } from './http-limits.js';

/** The protocols an Upgrade header names, lower case (`websocket`, `h2c`); versions kept (`foo/2`). */
export function upgradeProtocols(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const text = Array.isArray(value) ? value.join(',') : value;
  return text
    .split(',')
    .map((p) => p.trim().toLowerCase())
    .filter((p) => p !== '');
}

/** True when every protocol the request asks for is one the listener proxies. */
export function upgradeAllowed(protocol: string, limits: HttpLimits): boolean {
  const asked = upgradeProtocols(protocol);
  return asked.length > 0 && asked.every((p) => limits.upgradeTypes.includes(p) || limits.upgradeTypes.includes(p.split('/')[0]!));
}

export function offersH2c(req: IncomingMessage): boolean {
  return upgradeProtocols(req.headers.upgrade).includes('h2c');
}

/**
 * Serves an h2c upgrade request as plain HTTP/1.1 on its connection (with any other protocol it
 * offered left as the upgrade). False when the connection cannot be handed back (no server).
 */
export function replayWithoutH2c(req: IncomingMessage, socket: Socket, head: Buffer): boolean {
  const server = (socket as unknown as { server?: NodeJS.EventEmitter }).server;
  if (!server || socket.destroyed) return false;
  const others = upgradeProtocols(req.headers.upgrade).filter((p) => p !== 'h2c');
  const dropped = new Set(['http2-settings', ...(others.length > 0 ? [] : ['upgrade'])]);
  let text = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    let value = raw[i + 1]!;
    if (lower === 'http2-settings') continue;
    if (lower === 'upgrade') {
      if (others.length === 0) continue;
      value = others.join(', ');
    } else if (lower === 'connection') {
      value = value
        .split(',')
        .map((t) => t.trim())
        .filter((t) => t !== '' && !dropped.has(t.toLowerCase()))
        .join(', ');
      if (value === '') continue;
    }
    text += `${name}: ${value}\r\n`;
  }
  socket.unshift(Buffer.concat([Buffer.from(`${text}\r\n`, 'latin1'), head]));
  // The server reads it as a connection just made (a TLS one as just handshaken).
  server.emit('encrypted' in socket ? 'secureConnection' : 'connection', socket);
  return true;
}
