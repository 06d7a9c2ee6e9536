// The sidecar under transparent capture (`meshgate sidecar --capture`, after `meshgate iptables`):
// what reaches its ports was redirected by iptables, so the port a connection was meant for is not
// the port it arrived on.
//
// Outbound (15001): the app connected to `product-service:8080` with no proxy setting. The original
// destination (read from conntrack, core/capture/original-destination.ts) and the first bytes
// decide. A port of a mesh service whose protocol is declared TCP (`tcp`, `tls`, `mysql`, … or
// appProtocol), or an undeclared port Istio assumes to be TCP (3306, …), is TCP from the start: the
// client is not waited for, so a server-first protocol (MySQL, SMTP) gets its greeting. Otherwise the
// port is sniffed: an HTTP request (HTTP/1.x, or the HTTP/2 preface of a client with prior knowledge,
// as plaintext gRPC clients send) goes to the outbound HTTP side with its original destination,
// whose port picks the route config (core/routing/captured-route-config.ts: by Host on a port some
// service declares HTTP, as that service on an address whose service sniffs the port; HTTP on any
// other port is TCP like the rest); anything else (TLS the app speaks itself, a binary protocol, or nothing
// within the sniffing window) is TCP. TCP to a mesh service port takes its `tcp` route and mutual
// TLS to the server's sidecar (outbound-tcp.ts). TLS to an address the mesh does not know (an external
// name the app resolved itself) is matched by the ClientHello's SNI against the mesh's hosts and
// ports, as Istio's wildcard-address listener matches a ServiceEntry's hosts by server name, so a
// ServiceEntry for `api.example.com:443` lets it out under REGISTRY_ONLY. TCP to anything else goes to the original
// destination as it is under outboundTrafficPolicy ALLOW_ANY, and is closed under REGISTRY_ONLY.
//
// Inbound (15006): a caller connected to the app's port; the original port (from conntrack, else
// --app-port) picks the inbound listener for that app port, which applies PeerAuthentication
// (STRICT refuses plaintext), AuthorizationPolicy and forwards to the app on the pod's address from
// 127.0.0.6, a source the capture rules let through.

import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { listenOn } from '../core/proxy/listen.js';
import { AcceptStep } from '../core/proxy/accept.js';
import type { ConnectionDrain } from '../core/proxy/drain.js';
import type { HttpLimits } from '../core/proxy/http-limits.js';
import type { Destination, OriginalDestinationLookup } from '../core/capture/original-destination.js';
import type { InboundListener } from './inbound.js';
import type { OutboundListener } from './outbound.js';
import type { OutboundTcp } from './outbound-tcp.js';
import { isOpaqueTcp } from '../core/registry/protocol.js';
import { parseClientHello } from '../core/tls/client-hello.js';
import type { MeshTcpTarget } from '../core/routing/mesh-tcp-routes.js';

/** How long the outbound side waits for a client's first bytes before treating the stream as TCP. */
export const SNIFF_TIMEOUT_MS = 250;
const HTTP_START = /^(GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH|TRACE|CONNECT|PRI) /;

export interface CaptureDeps {
  readonly originalDestination: OriginalDestinationLookup;
  readonly outbound: OutboundListener;
  /** TCP to mesh services: routes and mutual TLS. */
  readonly tcp: OutboundTcp;
  /** The inbound listener for an app port (made on first use, kept for the sidecar's life). */
  readonly inboundFor: (appPort: number) => InboundListener;
  /** --app-port: the port inbound connections go to when conntrack cannot say. */
  readonly defaultAppPort: number | undefined;
  readonly log: Logger;
  readonly sniffTimeoutMs?: number;
  /** The proxy's drain and limits, for the accept step every listener shares (core/proxy/accept.ts). */
  readonly drain: ConnectionDrain;
  readonly limits?: HttpLimits;
}

export interface Capture {
  listenOutbound(port: number, host: string): Promise<number>;
  listenInbound(port: number, host: string): Promise<number>;
  close(): Promise<void>;
  destroy(): void;
}

export function createCapture(deps: CaptureDeps): Capture {
  // The one accept step: captured connections are drained and timed like any listener's until they
  // are handed to the inbound or outbound listener (whose own step takes over) or passed on as TCP.
  const step = new AcceptStep({ drain: deps.drain, limits: deps.limits });
  let outboundPort = 0;
  let inboundPort = 0;

  const outbound: Server = createServer({ noDelay: true }, (socket) => {
    step.accept(socket);
    const peer = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
    // The destination and the first bytes are looked for at once: a declared TCP port must not wait.
    const original = deps.originalDestination.lookup(peer, outboundPort).catch(() => undefined);
    const sniffer = sniff(socket, deps.sniffTimeoutMs ?? SNIFF_TIMEOUT_MS);
    let decided = false;
    void original.then((target) => {
      if (decided || !target || isSelf(target, outboundPort)) return;
      const mesh = deps.tcp.byAddress(target.address, target.port);
      if (!isOpaqueTcp(mesh?.port.protocol ?? 'UNKNOWN', target.port)) return;
      decided = true;
      // Bytes the sniffer may already have read go first.
      forward(socket, sniffer.stop(), target, mesh);
    });
    sniffer.first.then(async (first) => {
      if (decided) return;
      decided = true;
      const target = await original;
      if (first && HTTP_START.test(first.toString('latin1', 0, Math.min(first.length, 8)))) {
        const known = target && !isSelf(target, outboundPort) ? target : undefined;
        // HTTP that no HTTP listener of Istio's would take (no service has the port as HTTP, and the
        // address is no service's that sniffs it) is TCP like any other bytes: passed through or closed.
        if (!known || deps.outbound.serves(known)) {
          socket.unshift(first);
          step.release(socket);
          deps.outbound.accept(socket, known);
          return;
        }
        return forward(socket, first, known, deps.tcp.byAddress(known.address, known.port));
      }
      forward(socket, first, target, target && (deps.tcp.byAddress(target.address, target.port) ?? bySni(first, target.port)));
    }, () => socket.destroy());
  });

  const bySni = (first: Buffer | undefined, port: number): MeshTcpTarget | undefined => {
    const hello = first ? parseClientHello(first) : undefined;
    return hello?.sni ? deps.tcp.bySni(hello.sni, port) : undefined;
  };

  const forward = (socket: Socket, first: Buffer | undefined, target: Destination | undefined, mesh: MeshTcpTarget | undefined): void => {
    if (!target || isSelf(target, outboundPort)) {
      deps.log.warn({ remote: `${socket.remoteAddress ?? ''}:${socket.remotePort ?? 0}` }, 'captured TCP connection with no known original destination: closed');
      return void socket.destroy();
    }
    if (mesh) {
      step.release(socket);
      return deps.tcp.forward(socket, first ?? Buffer.alloc(0), mesh, target);
    }
    if (!deps.tcp.passesUnknown()) {
      deps.log.debug({ destination: `${target.address}:${target.port}` }, 'captured TCP connection to a destination the mesh does not know, under REGISTRY_ONLY: closed (BlackHoleCluster)');
      return deps.tcp.blackHole(socket, first ?? Buffer.alloc(0));
    }
    step.release(socket);
    deps.tcp.passThrough(socket, first ?? Buffer.alloc(0), { host: target.address, port: target.port, captured: true });
  };

  const inbound: Server = createServer({ noDelay: true }, (socket) => {
    step.accept(socket);
    const peer = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
    deps.originalDestination.lookup(peer, inboundPort).then(
      (target) => {
        const port = target && !isSelf(target, inboundPort) ? target.port : deps.defaultAppPort;
        if (port === undefined) {
          deps.log.warn({ remote: `${peer.address}:${peer.port}` }, 'captured inbound connection with no known port and no --app-port: closed');
          return void socket.destroy();
        }
        step.release(socket);
        deps.inboundFor(port).accept(socket);
      },
      () => socket.destroy(),
    );
  });

  return {
    listenOutbound: async (port, host) => (outboundPort = await listenOn(outbound, port, host)),
    listenInbound: async (port, host) => (inboundPort = await listenOn(inbound, port, host)),
    close: () => Promise.all([closeServer(outbound), closeServer(inbound)]).then(() => undefined),
    destroy: () => {
      step.destroy();
      outbound.close();
      inbound.close();
    },
  };
}

/**
 * The first bytes a client sends, or undefined when it sends nothing in time (or `stop()` was
 * called; it returns the bytes if they had been read). Read in paused mode and not paused explicitly afterwards, so whoever takes the socket
 * next (node:http's 'data' listener, a pipe) starts the flow; bytes not read yet stay queued.
 */
function sniff(socket: Socket, timeoutMs: number): { first: Promise<Buffer | undefined>; stop(): Buffer | undefined } {
  let finish: (b: Buffer | undefined) => void = () => undefined;
  let read: Buffer | undefined;
  const first = new Promise<Buffer | undefined>((resolve) => {
    let done = false;
    finish = (b) => {
      if (done) return;
      done = true;
      read = b;
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
      resolve(b);
    };
    const onReadable = (): void => {
      const chunk = socket.read() as Buffer | null;
      if (chunk !== null) finish(chunk);
    };
    const onEnd = (): void => finish(undefined);
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    socket.on('readable', onReadable);
    socket.once('end', onEnd);
  });
  // Stopping returns what was read before (the caller owns those bytes now).
  return {
    first,
    stop: () => {
      finish(undefined);
      return read;
    },
  };
}

/** A connection made straight to the capture port (no redirect) would otherwise loop to itself. */
function isSelf(target: Destination, port: number): boolean {
  return target.port === port && (target.address === '127.0.0.1' || target.address === '0.0.0.0');
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
}
