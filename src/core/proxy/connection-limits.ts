// The accept stage's timeouts: a connection must deliver complete request headers within
// request_headers_timeout, and one with no request in flight is closed after idle_timeout, on every
// listener, raw or TLS, HTTP/1 or HTTP/2 (docs/request-limits.md).
//
// Why not node:http's own headersTimeout: our listeners hand sockets to their HTTP servers with
// emit('connection') (after peeking the ClientHello), and node:http only checks its timeouts on a
// server that listens itself; node:http2 has no header timeout at all. So one sweep here watches every
// connection a listener accepted, from accept on (which also bounds a TLS handshake or a ClientHello
// that never comes):
//
//   waiting   no request in flight: before the first request, its headers must be complete within the
//             header timeout of the accept; after a response, the next request's headers within the
//             header timeout of its first byte (seen as bytesRead growing, so no byte is copied), and
//             with no byte at all the connection is idle and closed after the idle timeout.
//   active    an HTTP/1 request or HTTP/2 stream is in flight: route timeouts apply, and the stream idle
//             timeout: a connection that moves no byte either way that long (a stalled upload, an
//             upstream that never answers, a client that stopped reading) is cut. On HTTP/2 it counts
//             the connection's bytes, not one stream's: any stream's traffic keeps them all. An HTTP/2
//             connection goes back to waiting when its last stream closes.
//   tunnel    upgraded or CONNECT: a byte stream, no longer ours to time.
//
// A connection that runs out of time mid-headers on HTTP/1 is answered 408 (Envoy's
// request_header_timeout); an HTTP/2 one gets GOAWAY; anything else is closed.
//
// The same count bounds HTTP/1 pipelining: node:http parses every request a client pipelines while
// the first is answered, each held with its response until its turn, so a client that sends without
// reading made the proxy hold them all (2 MB of small requests held 80 MB). Envoy stops reading until
// the answer is written; here a connection with more than MAX_PIPELINED_HTTP1 requests waiting is
// closed. No browser or HTTP library pipelines that deep.

import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Http2SecureServer, Http2Server, Http2Session, ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Server as TlsServer } from '../tls/node-tls.js';
import { DEFAULT_HTTP_LIMITS, type HttpLimits } from './http-limits.js';
import { LocalReplies, rawLocalReply } from './respond.js';
import { offersH2c } from './upgrade-policy.js';

/** HTTP/1 requests one connection may have parsed and not yet answered. */
export const MAX_PIPELINED_HTTP1 = 64;

interface Watched {
  /** Requests or streams in flight. */
  active: number;
  /** When the current waiting period began (accept, or the end of the last request). */
  since: number;
  /** bytesRead when waiting began; more means a next request has started arriving. */
  bytesAtWait: number;
  /** When the first byte of the next request was seen; undefined while none has come. */
  firstByteAt: number | undefined;
  /** Before the first request the header timeout runs from accept. */
  served: boolean;
  /** While active: bytesRead + bytesWritten when last seen to change, and when that was. */
  moved: number;
  movedAt: number;
  /** The socket an HTTP/1 parser reads (the TLS socket under TLS), to answer 408 on. */
  http1?: Socket;
  session?: Http2Session;
  /** Ends an HTTP/1 request on this connection: one listener per connection, not a closure per request. */
  onResponseClose?: () => void;
}

export class ConnectionTimeouts {
  readonly #watched = new Map<Socket, Watched>();
  #sweep: NodeJS.Timeout | undefined;
  /** When the current sweep began: the time every connection of it is judged against. */
  #checkedAt = 0;
  readonly #tick: number;

  constructor(
    private readonly limits: HttpLimits = DEFAULT_HTTP_LIMITS,
    private readonly now: () => number = Date.now,
  ) {
    // Fine enough that a timeout fires within a quarter of itself, never busier than every 50 ms.
    this.#tick = Math.max(50, Math.min(1000, Math.min(limits.requestHeadersTimeoutMs, limits.idleTimeoutMs) / 4));
  }

  /**
   * A connection a listener accepted (the raw TCP socket); watched until `closed` is called for it
   * (the accept step's one close listener calls it: no listener of its own per connection).
   */
  accept(socket: Socket): void {
    if (this.#watched.has(socket)) return;
    this.#watched.set(socket, { active: 0, since: this.now(), bytesAtWait: socket.bytesRead, firstByteAt: undefined, served: false, moved: 0, movedAt: 0 });
    this.#start();
  }

  /** The connection closed. */
  closed(socket: Socket): void {
    this.#watched.delete(socket);
    if (this.#watched.size === 0) this.#stop();
  }

  /**
   * Watches the requests, streams and tunnels of an HTTP server that takes accepted sockets (after its
   * handlers are on). `socketOf`: the accepted socket under a session, for a server whose sessions show
   * only a proxy of a plain socket (h2c: h2c-sniff.ts); over TLS the proxy's `_parent` names it.
   */
  watch(server: HttpServer | Http2Server | Http2SecureServer, socketOf?: (session: Http2Session) => Socket | undefined): void {
    if (server instanceof TlsServer) {
      server.on('secureConnection', (socket: TLSSocket) => {
        const w = this.#of(socket);
        if (w && socket.alpnProtocol !== 'h2') w.http1 = socket;
      });
    } else {
      server.on('connection', (socket: Socket) => {
        const w = this.#watched.get(socket);
        if (w) w.http1 = socket;
      });
    }
    server.on('session', (session: Http2Session) => {
      const raw = socketOf?.(session);
      const w = raw ? this.#watched.get(raw) : session.socket && this.#of(session.socket as Socket);
      if (!w) return;
      w.session = session;
      const socket = raw ?? (session.socket as Socket);
      session.on('stream', (stream: ServerHttp2Stream) => {
        this.#begin(w, socket);
        stream.once('close', () => this.#end(w, raw ?? (session.socket as Socket | undefined)));
      });
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (req.httpVersionMajor !== 1) return; // HTTP/2 streams are counted above
      const w = this.#of(req.socket);
      if (!w) return;
      const socket = req.socket;
      this.#begin(w, socket);
      // 'close' comes once per response; HTTP/1 requests of one connection share the socket.
      res.on('close', (w.onResponseClose ??= () => this.#end(w, socket)));
      if (w.active > MAX_PIPELINED_HTTP1) this.#cutFlood(req.socket);
    });
    for (const event of ['upgrade', 'connect'] as const) {
      // Only where the server hands these over: a listener of ours would make node:http treat them
      // as handled (and leave the connection hanging) where it otherwise serves or closes them.
      if (server.listenerCount(event) === 0) continue;
      server.on(event, (req: IncomingMessage) => {
        // An h2c upgrade is put back as a plain request on the same connection (upgrade-policy.ts): still timed.
        if (event === 'upgrade' && offersH2c(req)) return;
        this.release(req.socket);
      });
    }
  }

  /** Stops watching everything (the listeners are gone). */
  close(): void {
    this.#watched.clear();
    this.#stop();
  }

  /** The raw socket's entry, from it or from the TLS socket over it. */
  #of(socket: Socket): Watched | undefined {
    return this.#watched.get(socket) ?? this.#watched.get((socket as unknown as { _parent?: Socket })._parent as Socket);
  }

  #rawOf(socket: Socket): Socket {
    return this.#watched.has(socket) ? socket : ((socket as unknown as { _parent?: Socket })._parent ?? socket);
  }

  #begin(w: Watched, socket: Socket): void {
    if (w.active++ === 0) {
      const raw = this.#rawOf(socket);
      w.moved = raw.bytesRead + raw.bytesWritten;
      w.movedAt = this.now();
    }
    w.served = true;
  }

  #end(w: Watched, socket: Socket | undefined): void {
    if (--w.active > 0 || !socket) return;
    w.since = this.now();
    w.bytesAtWait = this.#rawOf(socket).bytesRead;
    w.firstByteAt = undefined;
  }

  /** Upgraded, tunnelled or passed through as TCP: the connection is a byte stream now, not timed here. */
  release(socket: Socket): void {
    this.#watched.delete(this.#rawOf(socket));
  }

  #start(): void {
    if (this.#sweep) return;
    this.#sweep = setInterval(() => this.#check(), this.#tick);
    this.#sweep.unref();
  }

  #stop(): void {
    clearInterval(this.#sweep);
    this.#sweep = undefined;
  }

  #check(): void {
    this.#checkedAt = this.now();
    // forEach rather than for…of: the sweep runs every tick for as long as any connection is open,
    // an idle kept-alive one included, and an iterator's entry arrays and results were the largest
    // part of what an idle sidecar allocated (docs/benchmarks.md, ninth round).
    this.#watched.forEach(this.#checkOne, this);
  }

  #checkOne(w: Watched, socket: Socket): void {
    const now = this.#checkedAt;
    const { requestHeadersTimeoutMs: headers, idleTimeoutMs: idle, streamIdleTimeoutMs: streamIdle } = this.limits;
    if (w.active > 0) {
      const moved = socket.bytesRead + socket.bytesWritten;
      if (moved !== w.moved) {
        w.moved = moved;
        w.movedAt = now;
      } else if (streamIdle > 0 && now - w.movedAt >= streamIdle) {
        this.#cutStalled(socket, w);
      }
      return;
    }
    if (!w.served) {
      if (headers > 0 && now - w.since >= headers) this.#expire(socket, w, true);
      return;
    }
    if (w.firstByteAt === undefined && socket.bytesRead > w.bytesAtWait) w.firstByteAt = now;
    if (w.firstByteAt !== undefined) {
      if (headers > 0 && now - w.firstByteAt >= headers) this.#expire(socket, w, true);
    } else if (idle > 0 && now - w.since >= idle) this.#expire(socket, w, false);
  }

  /**
   * Stream idle timeout. The request is in the pipeline's hands, which answers a client that went
   * away (the upstream request is cancelled, the access log says so), so the connection is closed
   * rather than answered here: a reply written beside the pipeline's would race it. HTTP/2 streams
   * are reset with the session.
   */
  #cutStalled(socket: Socket, w: Watched): void {
    this.#watched.delete(socket);
    if (w.session) w.session.destroy();
    socket.destroy();
  }

  /** Too many pipelined requests waiting: closed, every one of them cancelled, as a client gone away. */
  #cutFlood(socket: Socket): void {
    this.#watched.delete(this.#rawOf(socket));
    socket.destroy();
  }

  #expire(socket: Socket, w: Watched, midRequest: boolean): void {
    this.#watched.delete(socket);
    if (w.session) {
      // GOAWAY, then the socket once the session has said it.
      w.session.close();
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    const h1 = w.http1;
    // A request begun (some bytes came) is answered 408; a connection that said nothing is just closed.
    if (midRequest && h1?.writable && socket.bytesRead > 0) {
      h1.end(rawLocalReply(LocalReplies.requestHeadersTimeout));
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    socket.destroy();
  }
}
