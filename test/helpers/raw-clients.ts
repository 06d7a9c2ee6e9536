// Clients that show exactly what a proxy does to their connection, for the drain tests: an HTTP/1
// keep-alive connection on a bare socket (did the server end it with a FIN or a reset, and when), and
// an HTTP/2 client that only says hello and never leaves (which GOAWAY frames it got).

import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** How the server ended a connection: a clean FIN, or a reset (an error on our side). */
export type Ending = 'fin' | 'reset';

/** One HTTP/1.1 keep-alive connection; requests go one at a time. */
export class Http1Connection {
  /** Resolves when the connection is gone, with how the server ended it. */
  readonly ended: Promise<Ending>;
  #buffer = Buffer.alloc(0);
  #waiting: { resolve(r: RawResponse): void; reject(e: Error): void } | undefined;
  #ending: Ending | undefined;

  private constructor(readonly socket: Socket) {
    let settle: (e: Ending) => void = () => undefined;
    this.ended = new Promise((r) => (settle = r));
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#parse();
    });
    socket.on('end', () => {
      this.#ending ??= 'fin';
      socket.end();
    });
    socket.on('error', () => (this.#ending ??= 'reset'));
    socket.on('close', () => {
      const how = this.#ending ?? 'fin';
      settle(how);
      this.#waiting?.reject(new Error(`connection closed (${how}) before the response was complete`));
      this.#waiting = undefined;
    });
  }

  static open(port: number, tls?: ConnectionOptions): Promise<Http1Connection> {
    return new Promise((resolve, reject) => {
      const socket = tls ? tlsConnect({ host: '127.0.0.1', port, ALPNProtocols: ['http/1.1'], ...tls }) : netConnect({ host: '127.0.0.1', port });
      socket.once(tls ? 'secureConnect' : 'connect', () => {
        socket.off('error', reject);
        resolve(new Http1Connection(socket));
      });
      socket.once('error', reject);
    });
  }

  get open(): boolean {
    return !this.socket.destroyed && this.#ending === undefined;
  }

  get(host: string, path: string): Promise<RawResponse> {
    if (this.#waiting) throw new Error('one request at a time');
    return new Promise((resolve, reject) => {
      if (!this.open) return reject(new Error('connection already closed'));
      this.#waiting = { resolve, reject };
      this.socket.write(`GET ${path} HTTP/1.1\r\nhost: ${host}\r\n\r\n`);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  #parse(): void {
    const end = this.#buffer.indexOf('\r\n\r\n');
    if (end < 0 || !this.#waiting) return;
    const [statusLine, ...lines] = this.#buffer.subarray(0, end).toString('latin1').split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    let rest = this.#buffer.subarray(end + 4);
    let body: Buffer;
    if (headers['transfer-encoding'] === 'chunked') {
      const parts: Buffer[] = [];
      for (;;) {
        const lineEnd = rest.indexOf('\r\n');
        if (lineEnd < 0) return;
        const size = parseInt(rest.subarray(0, lineEnd).toString(), 16);
        if (rest.length < lineEnd + 2 + size + 2) return;
        if (size === 0) {
          rest = rest.subarray(lineEnd + 4);
          break;
        }
        parts.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size));
        rest = rest.subarray(lineEnd + 2 + size + 2);
      }
      body = Buffer.concat(parts);
    } else {
      const length = Number(headers['content-length'] ?? 0);
      if (rest.length < length) return;
      body = rest.subarray(0, length);
      rest = rest.subarray(length);
    }
    this.#buffer = rest;
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting.resolve({ status: Number(statusLine!.split(' ')[1]), headers, body: body.toString() });
  }
}

export interface GoawayFrame {
  readonly lastStreamId: number;
  readonly errorCode: number;
}

const FRAME_SETTINGS = 0x4;
const FRAME_PING = 0x6;
const FRAME_GOAWAY = 0x7;
const FLAG_ACK = 0x1;

function frame(type: number, flags: number, payload = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head.writeUInt8(type, 3);
  head.writeUInt8(flags, 4);
  return Buffer.concat([head, payload]);
}

/**
 * An HTTP/2 client that opens a session and then sits there: it acknowledges SETTINGS and PING and
 * records every GOAWAY, but never closes the connection itself, whatever the server says.
 */
export class IdleH2Client {
  readonly goaways: GoawayFrame[] = [];
  /** Resolves when the server has closed the connection. */
  readonly closed: Promise<void>;
  /** Resolves when the server's SETTINGS arrived: the session exists on the server too. */
  readonly greeted: Promise<void>;
  #buffer = Buffer.alloc(0);
  #onGoaway: (() => void)[] = [];

  private constructor(readonly socket: Socket) {
    this.closed = new Promise((r) => socket.once('close', () => r()));
    let greet: () => void = () => undefined;
    this.greeted = new Promise((r) => (greet = r));
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      while (this.#buffer.length >= 9) {
        const length = this.#buffer.readUIntBE(0, 3);
        if (this.#buffer.length < 9 + length) break;
        const type = this.#buffer.readUInt8(3);
        const flags = this.#buffer.readUInt8(4);
        const payload = this.#buffer.subarray(9, 9 + length);
        this.#buffer = this.#buffer.subarray(9 + length);
        if (type === FRAME_SETTINGS && !(flags & FLAG_ACK)) {
          socket.write(frame(FRAME_SETTINGS, FLAG_ACK));
          greet();
        }
        if (type === FRAME_PING && !(flags & FLAG_ACK)) socket.write(frame(FRAME_PING, FLAG_ACK, payload));
        if (type === FRAME_GOAWAY) {
          this.goaways.push({ lastStreamId: payload.readUInt32BE(0) & 0x7fffffff, errorCode: payload.readUInt32BE(4) });
          for (const f of this.#onGoaway.splice(0)) f();
        }
      }
    });
  }

  static async open(port: number, tls: ConnectionOptions): Promise<IdleH2Client> {
    const client = await new Promise<IdleH2Client>((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port, ALPNProtocols: ['h2'], ...tls }, () => {
        socket.off('error', reject);
        if (socket.alpnProtocol !== 'h2') return reject(new Error(`server chose ${socket.alpnProtocol}, not h2`));
        socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(FRAME_SETTINGS, 0)]));
        resolve(new IdleH2Client(socket));
      });
      socket.once('error', reject);
    });
    await client.greeted;
    return client;
  }

  /** Resolves once `count` GOAWAY frames have arrived (or the connection closed first). */
  async goawaysReceived(count: number): Promise<readonly GoawayFrame[]> {
    while (this.goaways.length < count && !this.socket.destroyed) {
      await Promise.race([new Promise<void>((r) => this.#onGoaway.push(r)), this.closed]);
    }
    return this.goaways;
  }
}
