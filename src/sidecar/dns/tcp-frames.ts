// DNS over TCP carries each message after a two-byte length (RFC 1035 4.2.2, RFC 7766): the framing
// the DNS proxy reads queries with and writes answers with, and its upstream reads answers with.
// A message is split across reads or several share one read; both are handled here.

/** The largest message a length prefix can announce. */
const MAX_MESSAGE = 0xffff;

export class FrameReader {
  #pending: Buffer = Buffer.alloc(0);

  /** The complete messages `chunk` finishes, in order; a partial one waits for the next chunk. */
  push(chunk: Buffer): Buffer[] {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const out: Buffer[] = [];
    while (this.#pending.length >= 2) {
      const length = this.#pending.readUInt16BE(0);
      if (this.#pending.length < 2 + length) break;
      out.push(this.#pending.subarray(2, 2 + length));
      this.#pending = this.#pending.subarray(2 + length);
    }
    return out;
  }

  /** Bytes of a message not complete yet. */
  get buffered(): number {
    return this.#pending.length;
  }
}

export function frame(message: Buffer): Buffer {
  if (message.length > MAX_MESSAGE) throw new RangeError(`a DNS message of ${message.length} bytes cannot be sent over TCP`);
  const prefix = Buffer.alloc(2);
  prefix.writeUInt16BE(message.length);
  return Buffer.concat([prefix, message]);
}
