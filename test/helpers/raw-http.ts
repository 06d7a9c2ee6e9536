// Clients that send exactly the bytes or headers a test chooses, for the parse and accept stages:
// HTTP/1 over a bare (or TLS) socket, read until the server closes, and HTTP/2 requests with any
// headers and pseudo-headers node:http2 lets through.

import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { connect as h2Connect, type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2';

export interface RawAnswer {
  /** Everything the server sent, latin1. */
  readonly text: string;
  /** The status of the first response (0 when none came). */
  readonly status: number;
  /** Every status line's code, in order (pipelined or smuggled answers show up here). */
  readonly statuses: number[];
}

export function parseAnswer(text: string): RawAnswer {
  const statuses = [...text.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]));
  return { text, status: statuses[0] ?? 0, statuses };
}

/** TLS to a listener: the CA to trust, the SNI, and a client certificate for mutual TLS. */
export interface TlsClient {
  readonly ca: string;
  readonly servername: string;
  readonly cert?: string;
  readonly key?: string;
  /** ALPN offered (default http/1.1, or h2 for HTTP/2 sessions). */
  readonly alpn?: string[];
}

export interface RawOptions {
  /** TLS with this CA and SNI. */
  readonly tls?: TlsClient;
  /** Written after the first chunk, once connected (a second request, a body). */
  readonly more?: Buffer | string;
}

/** Opens a connection (TLS when asked), resolving once it can be written. */
export function openSocket(port: number, tls?: TlsClient): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = tls ? tlsConnect(tlsOptions(port, tls, ['http/1.1'])) : netConnect(port, '127.0.0.1');
    s.once(tls ? 'secureConnect' : 'connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Resolves with everything read once the server has closed the connection. */
export function readUntilClosed(s: Socket): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', () => undefined);
    s.once('close', () => resolve(parseAnswer(Buffer.concat(chunks).toString('latin1'))));
  });
}

/** Writes `request` and resolves with the answer's head (up to the blank line), leaving the socket open for what follows (an upgrade). */
export function answerHead(s: Socket, request: string): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const onData = (b: Buffer): void => {
      text += b.toString('latin1');
      if (!text.includes('\r\n\r\n')) return;
      s.off('data', onData);
      resolve(text.slice(0, text.indexOf('\r\n\r\n')));
    };
    s.on('data', onData);
    s.once('close', () => resolve(text || '(closed)'));
    s.write(request);
  });
}

/** Sends `bytes` and reads until the server closes (requests should say `connection: close`). */
export async function rawExchange(port: number, bytes: Buffer | string, opts: RawOptions = {}): Promise<RawAnswer> {
  const s = await openSocket(port, opts.tls);
  const answer = readUntilClosed(s);
  s.write(bytes);
  if (opts.more !== undefined) s.write(opts.more);
  return answer;
}

export interface H2Answer {
  readonly status: number;
  readonly body: string;
}

function tlsOptions(port: number, tls: TlsClient, alpn: string[]): ConnectionOptions {
  return {
    host: '127.0.0.1',
    port,
    ca: tls.ca,
    servername: tls.servername,
    ALPNProtocols: tls.alpn ?? alpn,
    ...(tls.cert ? { cert: tls.cert, key: tls.key } : {}),
    // Mesh certificates name a SPIFFE identity, not a host.
    ...(tls.cert ? { checkServerIdentity: () => undefined } : {}),
  };
}

export function h2Session(port: number, tls: TlsClient): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    // Loopback whatever the authority says; the authority only names the certificate's host.
    const session = h2Connect(`https://${tls.servername}:${port}`, {
      createConnection: () => tlsConnect(tlsOptions(port, tls, ['h2'])),
    });
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

/** One HTTP/2 request on `session`; a reset stream resolves with status 0. */
export function h2Request(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: string): Promise<H2Answer> {
  return new Promise((resolve) => {
    let status = 0;
    let text = '';
    let stream;
    try {
      stream = session.request(headers, { endStream: body === undefined });
    } catch {
      return resolve({ status: 0, body: '' });
    }
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => (text += d));
    stream.on('error', () => undefined);
    stream.on('close', () => resolve({ status, body: text }));
    if (body !== undefined) stream.end(body);
  });
}

/** Writes `text` and resolves with what comes back, once as much has arrived (or `until` is seen). */
export function echoed(socket: Socket, text: string, until?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (d: Buffer) => {
      got += d.toString();
      if (until ? got.includes(until) : got.length >= text.length) {
        socket.off('data', onData);
        resolve(got);
      }
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error(`closed after '${got}'`)));
    socket.write(text);
  });
}
