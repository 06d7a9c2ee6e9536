// A plaintext HTTP listener for one Gateway port: it serves the port's merged `http.<port>` route
// config from whatever snapshot is current when each request starts.

import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { handleHttpRequest, type HttpHandlerContext, type RouteConfigSelector } from '../core/proxy/http-handler.js';
import { handleUpgrade } from '../core/proxy/upgrade.js';

export interface HttpListener {
  readonly server: Server;
  readonly gatewayPort: number;
  listen(port: number, host: string): Promise<number>;
  close(): Promise<void>;
  destroy(): void;
}

export function createHttpListener(gatewayPort: number, ctx: HttpHandlerContext): HttpListener {
  const select: RouteConfigSelector = (snapshot) => {
    const name = snapshot.listeners.get(gatewayPort)?.httpRouteConfig;
    return name ? snapshot.routeConfigs.get(name) : undefined;
  };
  const server = createServer({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 60_000 }, (req, res) =>
    handleHttpRequest(req, res, gatewayPort, 'http', select, ctx),
  );
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('upgrade', (req, socket: Socket, head: Buffer) => handleUpgrade(req, socket, head, gatewayPort, 'http', select, ctx));
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (socket.writable && err.code !== 'ECONNRESET') socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  });
  return {
    server,
    gatewayPort,
    listen: (port, host) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const addr = server.address();
          resolve(typeof addr === 'object' && addr ? addr.port : port);
        });
      }),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
    destroy: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}
