// The sidecar under transparent capture (`meshgate sidecar --capture`, after `meshgate iptables`):
// what reaches its ports was redirected by iptables, so the port a connection was meant for is not
// the port it arrived on.
//
// Outbound (15001): the app connected to `product-service:8080` with no proxy setting. The first
// bytes decide: an HTTP request goes to the outbound HTTP side, which routes by its Host header
// like any proxied request; anything else (TLS the app speaks itself, a database protocol, or a
// server-first protocol that sends nothing within the sniffing window) is raw TCP, forwarded to the
// original destination read from conntrack (core/capture/original-destination.ts), plaintext.
//
// Inbound (15006): a caller connected to the app's port; the original port (from conntrack, else
// --app-port) picks the inbound listener for that app port, which applies PeerAuthentication
// (STRICT refuses plaintext), AuthorizationPolicy and forwards to the app on the pod's address from
// 127.0.0.6, a source the capture rules let through.

import { connect as connectTcp, createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { listenOn } from '../core/proxy/listen.js';
import { AcceptStep } from '../core/proxy/accept.js';
import type { ConnectionDrain } from '../core/proxy/drain.js';
import type { HttpLimits } from '../core/proxy/http-limits.js';
import type { Destination, OriginalDestinationLookup } from '../core/capture/original-destination.js';
import type { InboundListener } from './inbound.js';
import type { OutboundListener } from './outbound.js';

/** How long the outbound side waits for a client's first bytes before treating the stream as TCP. */
export const SNIFF_TIMEOUT_MS = 250;
const HTTP_START = /^(GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH|TRACE|CONNECT|PRI) /;

export interface CaptureDeps {
  readonly originalDestination: OriginalDestinationLookup;
  readonly outbound: OutboundListener;
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
    sniff(socket, deps.sniffTimeoutMs ?? SNIFF_TIMEOUT_MS).then((first) => {
      if (first && HTTP_START.test(first.toString('latin1', 0, Math.min(first.length, 8)))) {
        socket.unshift(first);
        step.release(socket);
        deps.outbound.accept(socket);
        return;
      }
      void forwardTcp(socket, first);
    }, () => socket.destroy());
  });

  const forwardTcp = async (socket: Socket, first: Buffer | undefined): Promise<void> => {
    const peer = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
    const target = await deps.originalDestination.lookup(peer, outboundPort);
    if (!target || isSelf(target, outboundPort)) {
      deps.log.warn({ remote: `${peer.address}:${peer.port}` }, 'captured TCP connection with no known original destination: closed');
      return void socket.destroy();
    }
    step.release(socket);
    const upstream = connectTcp({ host: target.address, port: target.port, noDelay: true });
    upstream.on('error', () => socket.destroy());
    socket.on('close', () => upstream.destroy());
    upstream.on('close', () => socket.destroy());
    upstream.once('connect', () => {
      if (first) upstream.write(first);
      socket.pipe(upstream).pipe(socket);
    });
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
 * The first bytes a client sends, or undefined when it sends nothing in time. Read in paused mode
 * and not paused explicitly afterwards, so whoever takes the socket next (node:http's 'data'
 * listener, a pipe) starts the flow.
 */
function sniff(socket: Socket, timeoutMs: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (b: Buffer | undefined): void => {
      if (done) return;
      done = true;
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
}

/** A connection made straight to the capture port (no redirect) would otherwise loop to itself. */
function isSelf(target: Destination, port: number): boolean {
  return target.port === port && (target.address === '127.0.0.1' || target.address === '0.0.0.0');
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
}
