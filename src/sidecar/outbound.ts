// The sidecar's outbound side (15001): the app's HTTP proxy (`HTTP_PROXY=http://127.0.0.1:15001`).
// A request names its destination (`GET http://user-service/x`, or a Host header); the port it asked
// for picks the outbound route config, the host its virtual host, and from there it is the same
// routing, load balancing and forwarding the gateway does — with mutual TLS to mesh endpoints.
// Hosts the mesh does not know pass through (ALLOW_ANY) or get 502 (REGISTRY_ONLY), as in Istio.
// A connection the capture port hands over comes with where the app sent it (its original
// destination): that port, not the Host's, picks the route config, and the address may pick the
// service outright (core/routing/captured-route-config.ts); passed-through requests go to it, and
// so do requests for a headless Service (its pod the app resolved and dialled). Captured or sent to
// the port, a connection may be HTTP/1.1 or h2c with prior knowledge (a plaintext gRPC client), told
// apart by its first bytes (core/proxy/h2c-sniff.ts).
// CONNECT tunnels (an HTTPS call through the proxy, or any TCP the app sends) to a mesh service port
// that can carry TCP take that port's `tcp` route and mutual TLS, as captured TCP does
// (outbound-tcp.ts); to anything else they are piped to their destination untouched.

import { outboundTrafficModeOf } from '../core/policy/outbound-traffic-policy.js';
import type { IncomingMessage } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { listenOn } from '../core/proxy/listen.js';
import { authorityOf, handleHttpRequest, Pipelines, type HttpHandlerContext, type ListenerInfo } from '../core/proxy/http-handler.js';
import { handleUpgrade } from '../core/proxy/upgrade.js';
import { LocalReplies, rawLocalReply } from '../core/proxy/respond.js';
import { AcceptStep } from '../core/proxy/accept.js';
import { outboundRouteConfig } from '../core/routing/compile-mesh.js';
import { capturedRouteConfig } from '../core/routing/captured-route-config.js';
import type { Dialled } from '../core/policy/original-dst.js';
import type { OutboundTcp } from './outbound-tcp.js';

export interface OutboundDeps {
  readonly ctx: HttpHandlerContext;
  readonly log: Logger;
  readonly tcp: OutboundTcp;
}

export interface OutboundListener {
  listen(port: number, host: string): Promise<number>;
  /** Serves an HTTP/1.1 or h2c connection accepted elsewhere (the capture port, which sniffed it); `dialled`: its original destination. */
  accept(socket: Socket, dialled?: Dialled): void;
  /** Whether an HTTP listener of Istio's would take a captured connection to `dialled` (else it is TCP). */
  serves(dialled: Dialled): boolean;
  close(): Promise<void>;
  destroy(): void;
}

/**
 * The port the app asked for: the request's one authority's (the parse stage made an absolute-form
 * target's authority the Host before anything asks), else 80.
 */
function destinationPort(req: IncomingMessage): number {
  const m = /:(\d+)$/.exec(authorityOf(req));
  return m ? Number(m[1]) : 80;
}

export function createOutboundListener(deps: OutboundDeps): OutboundListener {
  const { ctx } = deps;
  // Keyed by the accepted socket, which an h2c request names only through the sniffer (h2c-sniff.ts).
  const dialledBy = new WeakMap<Socket, Dialled>();
  const dialled = (req: IncomingMessage): Dialled | undefined => {
    const socket = plaintext.socketOf(req);
    return socket && dialledBy.get(socket);
  };
  const listener: ListenerInfo = {
    port: 80,
    scheme: 'http',
    requestPort: (req) => dialled(req)?.port ?? destinationPort(req),
    select: (snapshot, req) => {
      const to = dialled(req);
      return to ? capturedRouteConfig(snapshot, to) : outboundRouteConfig(snapshot, destinationPort(req));
    },
    dialled,
    stages: Pipelines.sidecarOutbound,
    unknownHost: 'outbound-traffic-policy',
    keepsForwardedFor: true,
  };
  // The one accept step (core/proxy/accept.ts): limits, drain and timeouts for every connection.
  const step = new AcceptStep(ctx);
  const { plaintext } = step.plaintext({
    request: (req, res) => handleHttpRequest(req, res, listener, ctx),
    upgrade: (req, socket, head) => handleUpgrade(req, socket, head, listener, ctx),
    connect: (req, socket, head) => tunnel(req, socket, head, deps, step),
  });
  // Its own listening socket: closing node:http's would also cut idle connections at once, which the drain does gently.
  // The app may speak h2c with prior knowledge (a plaintext gRPC client) as well as HTTP/1.1.
  const server = createNetServer({ noDelay: true }, (socket) => {
    step.accept(socket);
    plaintext.accept(socket);
  });

  return {
    listen: (port, host) => listenOn(server, port, host),
    serves: (to) => {
      const snapshot = ctx.holder.current();
      return snapshot !== undefined && capturedRouteConfig(snapshot, to) !== undefined;
    },
    // Captured HTTP is HTTP/1.1 or h2c with prior knowledge (a plaintext gRPC client), as on the port itself.
    accept: (socket, to) => {
      if (to) dialledBy.set(socket, to);
      step.accept(socket);
      plaintext.accept(socket);
    },
    // Stops accepting; the connections open are the drain's to finish.
    close: () => new Promise((resolve) => server.close(() => resolve())),
    destroy: () => {
      step.destroy();
      plaintext.close();
      server.close();
    },
  };
}

/** `CONNECT host:port`: the app speaks TLS itself end to end; the sidecar only carries the bytes. */
function tunnel(req: IncomingMessage, socket: Socket, head: Buffer, deps: OutboundDeps, step: AcceptStep): void {
  // A byte stream from here on, however long it lasts: the header and idle timeouts no longer apply.
  step.release(socket);
  socket.on('error', () => socket.destroy());
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(req.url ?? '');
  if (!m) return void socket.end(rawLocalReply(LocalReplies.badRequest));
  const host = m[1]!.replace(/^\[|\]$/g, '');
  const port = Number(m[2]);
  // No TCP port is 0 or past 65535 (a socket connect throws on the latter, taking the process down).
  if (port < 1 || port > 65535) return void socket.end(rawLocalReply(LocalReplies.badRequest));
  const mesh = deps.tcp.byHost(host, port);
  if (mesh) {
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    return deps.tcp.forward(socket, head, mesh);
  }
  // REGISTRY_ONLY (or no configuration yet) lets a tunnel through only to a port the mesh declares
  // for that host, as Istio has no listener (BlackHoleCluster) for any other.
  const snapshot = deps.ctx.holder.current();
  const declared = (): boolean => snapshot?.registry.lookup(host.toLowerCase())?.ports.some((p) => p.number === port) ?? false;
  if ((!snapshot || outboundTrafficModeOf(snapshot) === 'REGISTRY_ONLY') && !declared()) {
    deps.log.debug({ destination: `${host}:${port}` }, 'CONNECT to a port the mesh does not declare for that host, under REGISTRY_ONLY: 502 (BlackHoleCluster)');
    return void socket.end(rawLocalReply(LocalReplies.registryOnly));
  }
  deps.tcp.passThrough(socket, head, { host, port }, {
    onConnect: () => void socket.write('HTTP/1.1 200 Connection Established\r\n\r\n'),
    onFailure: () => void socket.end(rawLocalReply(LocalReplies.connectFailure)),
  });
}
