// Graceful drain of everything a proxy's listeners accepted, the way Envoy's drain manager does it.
// Every listener hands its connections here (accept) and serves HTTP through here (serve), so one
// object knows each connection, HTTP/1 request and HTTP/2 session, and a rolling restart fails none:
//
//   start()   the drain period begins. Requests are still served, on old and new connections alike.
//             HTTP/1 responses carry `Connection: close`; every HTTP/2 session is sent a GOAWAY that
//             announces the shutdown while still admitting every stream (last stream id 2^31-1, as
//             RFC 9113 §6.8 advises), so clients open their next connections elsewhere with nothing
//             refused. HTTP/1 connections with no request in flight are closed once quiet for a second.
//   finish()  the listeners have closed. HTTP/2 sessions get the final GOAWAY (the last stream really
//             processed), requests in flight complete, and what is still open when the deadline comes
//             (a WebSocket, a TCP passthrough or CONNECT tunnel, a gRPC stream, a request that never
//             ends) is cut, so the process always exits.
//
// Why HTTP/1 connections wait to be quiet: HTTP/1 has no way to say "closing" on an idle connection
// other than closing it, and a client may have just sent its next request, which the close would lose.
// A connection still in use gets `Connection: close` on its next response instead — a signal no request
// can cross. One quiet for a second is as safe to close as any keep-alive timeout. The close is a FIN,
// and a request that crossed it anyway is dropped unserved, so the client may safely send it again.

import { Server as HttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { constants as h2, type Http2SecureServer, type Http2Server, type Http2Session } from 'node:http2';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Server as TlsServer } from '../tls/node-tls.js';

/** The largest HTTP/2 stream id: a GOAWAY naming it refuses no stream the client has opened or will open. */
const SHUTDOWN_NOTICE_LAST_STREAM = 2 ** 31 - 1;
/**
 * From SIGTERM to exit at most: the drain period (5 s by default) and then time for what is in flight,
 * inside Kubernetes' default terminationGracePeriodSeconds of 30 with room to spare.
 */
export const DEFAULT_DRAIN_DEADLINE_SECONDS = 25;
/** While draining, an HTTP/1 connection with nothing in flight for this long is closed. */
const QUIET_MS = 1000;

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;
export type TunnelHandler = (req: IncomingMessage, socket: Socket, head: Buffer) => void;

/** What a listener's HTTP server does; `upgrade` and `connect` hand the connection over for good. */
export interface ServedHandlers {
  readonly request: RequestHandler;
  readonly upgrade?: TunnelHandler;
  readonly connect?: TunnelHandler;
}

interface Http1Connection {
  /**
   * Responses not yet finished: an array, not a Set. A connection's Set lives long and is emptied
   * after every request, and V8 shrinks a Set's table by allocating a new one when it empties: an
   * object per request that outlives the young generation (it is the connection's), which at 1000
   * req/s was the largest thing a sidecar's requests left behind (docs/benchmarks.md, sixth round).
   */
  readonly inFlight: ServerResponse[];
  /** Each response's 'close' listener: one per connection, not a closure per request. */
  readonly onResponseClose: (this: ServerResponse) => void;
  lastActive: number;
  /** Our FIN is sent: nothing more is served on it. */
  closing: boolean;
}

export class ConnectionDrain {
  #phase: 'serving' | 'draining' | 'finishing' = 'serving';
  /** Every accepted connection (the raw TCP socket), until it closes. */
  readonly #sockets = new Set<Socket>();
  /** Connections an HTTP/1 parser reads (the TLS socket when TLS is terminated). */
  readonly #http1 = new Map<Socket, Http1Connection>();
  readonly #sessions = new Set<Http2Session>();
  readonly #noticed = new WeakSet<Http2Session>();
  #sweep: NodeJS.Timeout | undefined;
  #allClosed: (() => void) | undefined;
  readonly #periodEnds = new Set<() => void>();
  readonly #idleWaiters = new Set<() => void>();
  #finished: Promise<void> | undefined;

  /** True from start(): readiness fails, HTTP/1 responses close their connection. */
  get draining(): boolean {
    return this.#phase !== 'serving';
  }

  /** A connection a listener accepted; it counts until it closes, and is cut at the deadline. */
  accept(socket: Socket): void {
    if (this.#sockets.has(socket)) return;
    this.count(socket);
    socket.once('close', () => this.closed(socket));
  }

  /** Counts a connection whose owner calls `closed` when it closes (the accept step, one listener for all). */
  count(socket: Socket): void {
    this.#sockets.add(socket);
  }

  closed(socket: Socket): void {
    this.#sockets.delete(socket);
    if (this.#sockets.size > 0) return;
    this.#allClosed?.();
    for (const wake of this.#idleWaiters) wake();
    this.#idleWaiters.clear();
  }

  /** Connections the listeners accepted that are still open (Envoy's downstream_cx_active of its listeners). */
  get active(): number {
    return this.#sockets.size;
  }

  /** Resolves once no accepted connection is open, at once if none is. */
  idle(): Promise<void> {
    if (this.#sockets.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.add(resolve));
  }

  /** Serves HTTP on `server` (node:http, node:http2 with allowHTTP1, or plaintext h2c) with the drain applied. */
  serve(server: HttpServer | Http2SecureServer | Http2Server, handlers: ServedHandlers): void {
    server.on('connection', (socket: Socket) => this.accept(socket));
    if (server instanceof TlsServer) {
      // After the handshake ALPN says which: HTTP/2 becomes a session, anything else is HTTP/1.
      server.on('secureConnection', (socket: TLSSocket) => {
        if (socket.alpnProtocol !== 'h2') this.#trackHttp1(socket);
      });
      (server as Http2SecureServer).on('session', (session: Http2Session) => this.#trackSession(session));
    } else if (server instanceof HttpServer) {
      server.on('connection', (socket: Socket) => this.#trackHttp1(socket));
    } else {
      // Plaintext HTTP/2 with prior knowledge (h2c-sniff.ts): every connection is a session.
      (server as Http2Server).on('session', (session: Http2Session) => this.#trackSession(session));
    }
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.#request(req, res, handlers.request));
    // An Expect other than 100-continue: without a listener node:http and node:http2 answer 417
    // themselves, before any policy, access log line or request id. Envoy acts only on 100-continue
    // and passes other expectations on; so does this, as an ordinary request (every 'request'
    // listener, the connection limits' too, sees it).
    server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => server.emit('request', req, res));
    // Only servers that handle these get listeners: without one, node:http serves an upgrade as a request.
    for (const event of ['upgrade', 'connect'] as const) {
      const handler = handlers[event];
      if (!handler) continue;
      server.on(event, (req: IncomingMessage, socket: Socket, head: Buffer) => {
        // node:http2 hands an HTTP/2 CONNECT to 'connect' listeners as (request, response), not a
        // socket: a request like any other, which the pipeline answers.
        if (req.httpVersionMajor === 2) return this.#request(req, socket as unknown as ServerResponse, handlers.request);
        // No longer HTTP/1 requests but a stream of bytes: it lasts until either side or the deadline ends it.
        this.#http1.delete(socket);
        handler(req, socket, head);
      });
    }
  }

  /** The drain period begins (safe to call again). */
  start(): void {
    if (this.#phase !== 'serving') return;
    this.#phase = 'draining';
    for (const session of this.#sessions) this.#notice(session);
    // Requests already being answered close their connection too, unless their headers have gone.
    for (const conn of this.#http1.values()) {
      for (const res of conn.inFlight) if (!res.headersSent) res.setHeader('connection', 'close');
    }
    this.#closeQuiet();
    this.#sweep = setInterval(() => this.#closeQuiet(), QUIET_MS / 4);
    this.#sweep.unref();
  }

  /** Starts the drain; resolves when `ms` have passed, or sooner if the drain is finished or cut meanwhile. */
  period(ms: number): Promise<void> {
    this.start();
    if (this.#phase !== 'draining') return Promise.resolve();
    return new Promise((resolve) => {
      const end = (): void => {
        clearTimeout(timer);
        this.#periodEnds.delete(end);
        resolve();
      };
      const timer = setTimeout(end, Math.max(0, ms));
      this.#periodEnds.add(end);
    });
  }

  /**
   * The listeners have stopped accepting: sessions get their final GOAWAY and in-flight work may
   * finish for `graceMs`, after which whatever is still open is cut. Resolves once nothing is open.
   */
  finish(graceMs: number): Promise<void> {
    if (this.#finished) return this.#finished;
    this.start();
    this.#phase = 'finishing';
    for (const end of this.#periodEnds) end();
    for (const session of this.#sessions) session.close();
    this.#closeQuiet();
    this.#finished = new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(deadline);
        clearInterval(this.#sweep);
        this.#allClosed = undefined;
        resolve();
      };
      const deadline = setTimeout(() => {
        this.destroy();
        done();
      }, Math.max(0, graceMs));
      if (this.#sockets.size === 0) done();
      else this.#allClosed = done;
    });
    return this.#finished;
  }

  /** Cuts every connection now. */
  destroy(): void {
    clearInterval(this.#sweep);
    for (const end of this.#periodEnds) end();
    for (const session of this.#sessions) session.destroy();
    for (const socket of this.#sockets) socket.destroy();
    for (const socket of this.#http1.keys()) socket.destroy();
  }

  #trackHttp1(socket: Socket): void {
    if (this.#http1.has(socket)) return;
    const conn: Http1Connection = {
      inFlight: [],
      lastActive: Date.now(),
      closing: false,
      onResponseClose(this: ServerResponse) {
        // Order does not matter: the last takes the place of the one that ended. pop() keeps the
        // array's storage for the next request, where splice() allocates.
        const i = conn.inFlight.indexOf(this);
        if (i >= 0) {
          const last = conn.inFlight.pop()!;
          if (i < conn.inFlight.length) conn.inFlight[i] = last;
        }
        conn.lastActive = Date.now();
      },
    };
    this.#http1.set(socket, conn);
    socket.once('close', () => this.#http1.delete(socket));
  }

  #trackSession(session: Http2Session): void {
    this.#sessions.add(session);
    session.once('close', () => this.#sessions.delete(session));
    // A session opened while draining is told once it has been used: told before its first request,
    // a client would go and come back to a proxy that its load balancer still points at, for ever.
    if (this.#phase === 'draining') session.once('stream', () => this.#notice(session));
    else if (this.#phase === 'finishing') session.close();
  }

  #notice(session: Http2Session): void {
    if (this.#noticed.has(session) || session.closed || session.destroyed) return;
    this.#noticed.add(session);
    session.goaway(h2.NGHTTP2_NO_ERROR, SHUTDOWN_NOTICE_LAST_STREAM);
  }

  #request(req: IncomingMessage, res: ServerResponse, handler: RequestHandler): void {
    // HTTP/2 streams: the session carries the drain.
    if (req.httpVersionMajor !== 1) return handler(req, res);
    const conn = this.#http1.get(req.socket);
    if (conn?.closing) {
      // Sent before our FIN reached the client: not served, so the client may send it again.
      req.socket.destroy();
      return;
    }
    if (conn) {
      conn.inFlight.push(res);
      res.on('close', conn.onResponseClose);
    }
    if (this.draining) res.setHeader('connection', 'close');
    handler(req, res);
  }

  #closeQuiet(): void {
    const now = Date.now();
    for (const [socket, conn] of this.#http1) {
      if (conn.closing || conn.inFlight.length > 0 || now - conn.lastActive < QUIET_MS) continue;
      conn.closing = true;
      socket.end();
    }
  }
}
