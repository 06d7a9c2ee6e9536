// A bare HTTP/2 client over a plain socket, for frame-level tests: it sends exactly the frames a test
// names (a HEADERS without END_STREAM, a DATA, a RST_STREAM mid-upload, a body shorter than its
// content-length) and lists the frames the server sent back by type and flags. Header blocks are
// HPACK literals without indexing or Huffman coding, which every decoder accepts.

import { connect, type Socket } from 'node:net';

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
