// HTTP/1.1 and HTTP/2 with prior knowledge (h2c) on the same plaintext port, as Envoy's HTTP listeners
// serve them: the first bytes of a connection are read (not consumed) and compared with the HTTP/2
// connection preface `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`. A connection that opens with it goes to an
// HTTP/2 server, any other to the listener's HTTP/1 server; both hand their requests to the same
// handler (and the same drain), so an h2c request is routed, limited and logged like any other.
// This is what lets `curl --http2-prior-knowledge` and plaintext gRPC clients reach a plaintext port.
// node:http2 shows an h2c request (and its session) only a proxy of the TCP socket, so what a
// listener knows per connection (the accept step's timeouts, a captured connection's original
// destination) is found through `socketOf`, which names the accepted socket for either protocol.

import type { IncomingMessage, Server as HttpServer } from 'node:http';
import { createServer as createH2cServer, type Http2Server, type Http2Session } from 'node:http2';
import type { Socket } from 'node:net';
import type { ConnectionDrain, ServedHandlers } from './drain.js';

export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** How long a connection may stay silent before it is handed to HTTP/1 (and its header timeout). */
const SNIFF_TIMEOUT_MS = 10_000;

/** 'h2' once the preface is complete, 'http1' as soon as a byte differs, undefined while undecided. */
export function sniffPreface(data: Buffer): 'h2' | 'http1' | undefined {
  const n = Math.min(data.length, H2_PREFACE.length);
  if (data.compare(H2_PREFACE, 0, n, 0, n) !== 0) return 'http1';
  return data.length >= H2_PREFACE.length ? 'h2' : undefined;
}

export class PlaintextHttp {
  readonly h2c: Http2Server;
  readonly #http1: HttpServer;
  /** The accepted socket under each h2c session. */
  readonly #sockets = new WeakMap<Http2Session, Socket>();
  /** The socket being handed to the h2c server: its session is made (and announced) synchronously. */
  #handing: Socket | undefined;

  /**
   * `http1` is the listener's HTTP/1 server; h2c requests go to the same handlers through the same
   * drain. All of them: an h2c CONNECT reaches only a 'connect' listener (which the drain hands to
   * the request pipeline), and without one node:http2 answers it 405 itself, before any policy.
   */
  constructor(http1: HttpServer, drain: ConnectionDrain, handlers: ServedHandlers) {
    this.#http1 = http1;
    this.h2c = createH2cServer();
    // First of the 'session' listeners, so that the others can already ask socketOf.
    this.h2c.on('session', (session: Http2Session) => {
      if (this.#handing) this.#sockets.set(session, this.#handing);
    });
    drain.serve(this.h2c, handlers);
    // A client's protocol error ends its own session; it is nothing for this process to report.
    this.h2c.on('sessionError', () => undefined);
  }

  /** Serves a plaintext connection (its first bytes, if any were read already, unshifted back). */
  accept(socket: Socket): void {
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (to: 'h2' | 'http1'): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
      if (chunks.length > 0) socket.unshift(Buffer.concat(chunks));
      if (socket.destroyed) return;
      if (to === 'http1') return void this.#http1.emit('connection', socket);
      this.#handing = socket;
      try {
        this.h2c.emit('connection', socket);
      } finally {
        this.#handing = undefined;
      }
    };
    const onReadable = (): void => {
      let chunk: Buffer | null;
      while (!done && (chunk = socket.read() as Buffer | null) !== null) {
        chunks.push(chunk);
        const verdict = sniffPreface(chunks.length === 1 ? chunk : Buffer.concat(chunks));
        if (verdict) finish(verdict);
      }
    };
    const onEnd = (): void => finish('http1');
    const timer = setTimeout(() => finish('http1'), SNIFF_TIMEOUT_MS);
    timer.unref();
    socket.on('readable', onReadable);
    socket.on('end', onEnd);
  }

  /** The accepted socket a session (h2c) or a request (h2c or HTTP/1) runs on; undefined for a session of another server. */
  socketOf(of: Http2Session | IncomingMessage): Socket | undefined {
    const session = 'httpVersionMajor' in of ? (of as unknown as { stream?: { session?: Http2Session } }).stream?.session : of;
    return session ? this.#sockets.get(session) : (of as IncomingMessage).socket;
  }

  close(): void {
    this.h2c.close();
  }
}
