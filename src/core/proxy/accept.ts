// The accept step of the request pipeline, the one every listener uses (gateway ports, a sidecar's
// inbound, outbound and capture ports): a connection a listener accepted is tracked (so the listener
// can cut it), counted by the drain (so a rolling restart fails none of its requests), and timed from
// accept on (request_headers_timeout, idle_timeout: connection-limits.ts) whatever it turns out to
// be — plaintext HTTP/1 or h2c, TLS before or after its handshake. The HTTP servers a listener hands
// its connections to are prepared here too, with Envoy's header and URL limits (http-limits.ts), so
// that no listener assembles its own. A connection that stops being HTTP (a CONNECT tunnel, an
// upgrade after its 101, TCP or TLS passthrough) is released: a byte stream is no longer timed here.

import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { Http2SecureServer, Http2Server } from 'node:http2';
import type { Socket } from 'node:net';
import type { ConnectionDrain, ServedHandlers } from './drain.js';
import { ConnectionTimeouts } from './connection-limits.js';
import { DEFAULT_HTTP_LIMITS, applyHttp1Limits, http2ServerLimits, type HttpLimits } from './http-limits.js';
import { PlaintextHttp } from './h2c-sniff.js';

export class AcceptStep {
  readonly limits: HttpLimits;
  readonly #drain: ConnectionDrain;
  readonly #timeouts: ConnectionTimeouts;
  readonly #sockets = new Set<Socket>();

  /**
   * The one close listener every accepted socket gets, made once per step: the tracking, the drain
   * and the timeouts each forget the socket from it, where each used to add a closure of its own to
   * every connection (three listeners and closures per handshake).
   */
  readonly #onClose: (this: Socket) => void;

  constructor(ctx: { readonly drain: ConnectionDrain; readonly limits?: HttpLimits | undefined }) {
    this.#drain = ctx.drain;
    this.limits = ctx.limits ?? DEFAULT_HTTP_LIMITS;
    this.#timeouts = new ConnectionTimeouts(this.limits);
    const sockets = this.#sockets;
    const drain = this.#drain;
    const timeouts = this.#timeouts;
    this.#onClose = function (this: Socket) {
      sockets.delete(this);
      drain.closed(this);
      timeouts.closed(this);
    };
  }

  /** A connection the listener accepted (the raw TCP socket): tracked, drained and timed until it closes. */
  accept(socket: Socket): void {
    if (this.#sockets.has(socket)) return;
    this.#sockets.add(socket);
    socket.once('close', this.#onClose);
    socket.on('error', destroyOnError);
    this.#drain.count(socket);
    this.#timeouts.accept(socket);
  }

  /**
   * Not HTTP any more, or not this listener's to time: a tunnel, an upgrade, TCP or TLS passed
   * through, or a connection handed to another listener's accept step (capture). Still tracked.
   */
  release(socket: Socket): void {
    this.#timeouts.release(socket);
  }

  /** Serves HTTP on a server that takes this listener's accepted sockets: limits, drain and timeouts. */
  serve(server: HttpServer | Http2SecureServer, handlers: ServedHandlers): void {
    applyHttp1Limits(server, this.limits);
    this.#drain.serve(server, handlers);
    this.#timeouts.watch(server);
  }

  /** A plaintext port's HTTP/1.1 server and the h2c one beside it (h2c-sniff.ts), both served here. */
  plaintext(handlers: ServedHandlers): { readonly http: HttpServer; readonly plaintext: PlaintextHttp } {
    const http = createHttpServer({ requestTimeout: 0 });
    this.serve(http, handlers);
    const plaintext = new PlaintextHttp(http, this.#drain, handlers);
    this.#timeouts.watch(plaintext.h2c as Http2Server, (session) => plaintext.socketOf(session));
    return { http, plaintext };
  }

  /** node:http2 secure server options with the same limits (to be served with `serve`). */
  http2Options(): ReturnType<typeof http2ServerLimits> {
    return http2ServerLimits(this.limits);
  }

  /** Cuts every connection this listener accepted. */
  destroy(): void {
    for (const s of this.#sockets) s.destroy();
    this.#timeouts.close();
  }
}

/** An accepted socket's error closes it (and the error is not an uncaught one); shared, not a closure per socket. */
function destroyOnError(this: Socket): void {
  this.destroy();
}
