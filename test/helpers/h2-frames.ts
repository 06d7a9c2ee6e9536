// A bare HTTP/2 client over a plain socket, for frame-level tests: it sends exactly the frames a test
// names (a HEADERS without END_STREAM, a DATA, a RST_STREAM mid-upload, a body shorter than its
// content-length) and lists the frames the server sent back by type and flags. Header blocks are
// HPACK literals without indexing or Huffman coding, which every decoder accepts.

import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

export const FrameType = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8 } as const;
export const Flag = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;

export interface SeenFrame {
  readonly type: number;
  readonly flags: number;
  readonly stream: number;
  readonly payload: Buffer;
}

export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

function hpackString(s: string): Buffer {
  const b = Buffer.from(s, 'latin1');
  if (b.length >= 127) throw new Error('header too long for this test encoder');
  return Buffer.concat([Buffer.from([b.length]), b]);
}

/** A header block of literal fields (pseudo-headers first, as the caller lists them). */
export function headerBlock(fields: ReadonlyArray<readonly [string, string]>): Buffer {
  return Buffer.concat(fields.flatMap(([n, v]) => [Buffer.from([0x00]), hpackString(n), hpackString(v)]));
}

export function rstStream(stream: number, code: number): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(code);
  return frame(FrameType.RST_STREAM, 0, stream, p);
}

export class RawH2 {
  readonly frames: SeenFrame[] = [];
  #buffer = Buffer.alloc(0);
  #waiters: Array<() => void> = [];
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, d]);
      while (this.#buffer.length >= 9) {
        const len = this.#buffer.readUIntBE(0, 3);
        if (this.#buffer.length < 9 + len) break;
        const f = { type: this.#buffer[3]!, flags: this.#buffer[4]!, stream: this.#buffer.readUInt32BE(5) & 0x7fffffff, payload: this.#buffer.subarray(9, 9 + len) };
        this.#buffer = this.#buffer.subarray(9 + len);
        this.frames.push(f);
        // Acknowledge the server's SETTINGS, as a client must.
        if (f.type === FrameType.SETTINGS && (f.flags & Flag.ACK) === 0) socket.write(frame(FrameType.SETTINGS, Flag.ACK, 0));
      }
      this.#wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
    socket.on('error', () => undefined);
  }

  static open(port: number): Promise<RawH2> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
        socket.write(frame(FrameType.SETTINGS, 0, 0));
        resolve(new RawH2(socket));
      });
      socket.once('error', reject);
    });
  }

  /** The same over TLS with ALPN h2, trusting `ca` and naming `servername` (or no SNI when it is undefined). */
  static openTls(port: number, ca: string, servername: string | undefined): Promise<RawH2> {
    return new Promise((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port, ca, ALPNProtocols: ['h2'], ...(servername === undefined ? {} : { servername }) }, () => {
        socket.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
        socket.write(frame(FrameType.SETTINGS, 0, 0));
        resolve(new RawH2(socket));
      });
      socket.once('error', reject);
    });
  }

  send(...frames: Buffer[]): void {
    for (const f of frames) this.socket.write(f);
  }

  /** Frames of one stream. */
  on(stream: number): SeenFrame[] {
    return this.frames.filter((f) => f.stream === stream);
  }

  /** Resolves once `check` holds for what arrived (or the connection closed). */
  async until(check: () => boolean, ms = 20_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!check()) {
      if (this.closed) return;
      if (Date.now() > deadline) throw new Error('timed out waiting for frames');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  close(): void {
    this.socket.destroy();
  }
}

/** HPACK's Huffman code of the digits: `0`–`2` in 5 bits (0–2), `3`–`9` in 6 bits (0x19–0x1f). */
function huffmanDigits(bytes: Buffer): string {
  let bits = '';
  for (const b of bytes) bits += b.toString(2).padStart(8, '0');
  let out = '';
  for (let i = 0; i + 5 <= bits.length; ) {
    const five = parseInt(bits.slice(i, i + 5), 2);
    if (five <= 2) {
      out += String(five);
      i += 5;
      continue;
    }
    const six = i + 6 <= bits.length ? parseInt(bits.slice(i, i + 6), 2) : -1;
    if (six < 0x19 || six > 0x1f) break; // the EOS padding (all ones)
    out += String(six - 0x19 + 3);
    i += 6;
  }
  return out;
}

/**
 * The `:status` of a response's HEADERS as nghttp2 writes it on a fresh connection: a static-table
 * index (200, 204, 206, 304, 400, 404, 500) or a literal on the `:status` name (index 8), plain or
 * Huffman-coded. A status repeated on the same connection comes from the dynamic table: not decoded.
 */
export function responseStatus(f: SeenFrame): number {
  const p = f.payload;
  const indexed: Record<number, number> = { 0x88: 200, 0x89: 204, 0x8a: 206, 0x8b: 304, 0x8c: 400, 0x8d: 404, 0x8e: 500 };
  if (indexed[p[0]!] !== undefined) return indexed[p[0]!]!;
  if (p[0] !== 0x48 && p[0] !== 0x08 && p[0] !== 0x18) throw new Error(`status not decoded (first byte ${p[0]})`);
  const length = p[1]! & 0x7f;
  const value = p.subarray(2, 2 + length);
  return Number((p[1]! & 0x80) !== 0 ? huffmanDigits(value) : value.toString('latin1'));
}
