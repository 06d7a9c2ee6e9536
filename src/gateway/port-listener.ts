// The listener for one Gateway port. Plaintext HTTP goes straight to the HTTP server. When the
// port has TLS servers, the ClientHello is peeked (not consumed) to read the SNI, which picks the
// Gateway server: PASSTHROUGH pipes the untouched bytes to the `tls` route's destination; the others
// hand the socket to that server's own TLS server. The choice uses the snapshot current at accept.

import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { listenOn } from '../core/proxy/listen.js';
import { handleHttpRequest, type HttpHandlerContext, type ListenerInfo } from '../core/proxy/http-handler.js';
import { handleUpgrade } from '../core/proxy/upgrade.js';
import { LocalReplies, rawLocalReply } from '../core/proxy/respond.js';
import { forwardTcp } from '../core/proxy/tcp-forward.js';
import type { ServerConfig } from '../core/routing/types.js';
import { peekClientHello } from '../core/tls/client-hello.js';
import type { CredentialStore } from '../core/tls/types.js';
import { serverForSni } from '../core/routing/server-hosts.js';
import { TlsServers } from './tls-servers.js';

export interface PortListenerDeps {
  readonly ctx: HttpHandlerContext;
  readonly credentials: CredentialStore;
  readonly log: Logger;
  /** ACME HTTP-01 answers, served before routing on plaintext HTTP. */
  readonly acmeChallenge?: (token: string) => string | undefined;
}

export interface PortListener {
  readonly gatewayPort: number;
  listen(port: number, host: string): Promise<number>;
  close(): Promise<void>;
  destroy(): void;
}

function isTlsServer(s: ServerConfig): boolean {
  return s.protocol === 'HTTPS' || s.protocol === 'TLS';
}

export function createPortListener(gatewayPort: number, deps: PortListenerDeps): PortListener {
  const { ctx } = deps;
  const plain: ListenerInfo = {
    port: gatewayPort,
    scheme: 'http',
    select: (snapshot) => {
      const name = snapshot.listeners.get(gatewayPort)?.httpRouteConfig;
      return name ? snapshot.routeConfigs.get(name) : undefined;
    },
    ...(deps.acmeChallenge ? { acmeChallenge: deps.acmeChallenge } : {}),
  };
  const http = createHttpServer({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 60_000 }, (req, res) => handleHttpRequest(req, res, plain, ctx));
  http.on('upgrade', (req, socket: Socket, head: Buffer) => handleUpgrade(req, socket, head, plain, ctx));
  http.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (socket.writable && err.code !== 'ECONNRESET') socket.end(rawLocalReply(LocalReplies.badRequest));
    else socket.destroy();
  });
  const tls = new TlsServers({ gatewayPort, ctx, credentials: deps.credentials, log: deps.log });
  const sockets = new Set<Socket>();

  const onConnection = (socket: Socket): void => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const listener = ctx.holder.current()?.listeners.get(gatewayPort);
    // A plain TCP server: its one `tcp` route takes the whole connection (SEMANTICS §1.3).
    const tcp = listener?.protocol === 'TCP' ? listener.servers.find((s) => s.tcpRoute)?.tcpRoute : undefined;
    if (tcp) {
      forwardTcp(socket, Buffer.alloc(0), tcp.destinations, tcp.totalWeight, { random: ctx.random });
      return;
    }
    const tlsServers = listener?.servers.filter(isTlsServer) ?? [];
    if (tlsServers.length === 0) {
      http.emit('connection', socket);
      return;
    }
    void peekClientHello(socket).then(
      ({ data, hello }) => {
        if (hello.state === 'not-tls' && listener?.httpRouteConfig) {
          socket.unshift(data);
          http.emit('connection', socket);
          return;
        }
        if (hello.state !== 'ok') return void socket.destroy();
        // Re-read the snapshot: a reload may have landed while the hello was in flight.
        const servers = ctx.holder.current()?.listeners.get(gatewayPort)?.servers.filter(isTlsServer) ?? [];
        const server = serverForSni(servers, hello.sni);
        if (!server) return void socket.destroy();
        const mode = server.tls?.mode ?? 'PASSTHROUGH';
        if (mode === 'PASSTHROUGH' || mode === 'AUTO_PASSTHROUGH') {
          const route = server.tlsRoutes?.lookup(hello.sni);
          if (!route) return void socket.destroy();
          forwardTcp(socket, data, route.destinations, route.totalWeight, { random: ctx.random });
          return;
        }
        socket.unshift(data);
        tls.accept(socket, server, servers);
      },
      () => socket.destroy(),
    );
  };

  const server: Server = createNetServer({ noDelay: true }, onConnection);
  return {
    gatewayPort,
    listen: (port, host) => listenOn(server, port, host),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        http.closeIdleConnections();
        tls.closeIdle();
      }),
    destroy: () => {
      for (const s of sockets) s.destroy();
      tls.destroy();
      server.close();
    },
  };
}
