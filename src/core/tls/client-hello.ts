// Reads the SNI and ALPN of a TLS ClientHello without terminating TLS, so a listener can choose a
// Gateway server (or a passthrough route) before anything is decided about the connection. The
// parser is strict about lengths and never throws: every input is either complete, incomplete,
// not TLS at all, or malformed. The peeker only reads; the bytes it saw are handed back so the caller
// can `unshift` them (or send them upstream) untouched.

import type { Socket } from 'node:net';

export type ClientHelloState = 'need-more' | 'not-tls' | 'ok' | 'invalid';

export interface ClientHelloInfo {
  readonly state: ClientHelloState;
  /** host_name from server_name, lower-case; absent when the client sent none. */
  readonly sni?: string;
  /** Protocol names offered in application_layer_protocol_negotiation, in the client's order. */
  readonly alpn?: string[];
}

/** Largest ClientHello handshake message we accept (the body, as its 24-bit length says). */
export const MAX_CLIENT_HELLO = 16 * 1024;
/** A record may carry at most 2^14 bytes of plaintext (RFC 8446 §5.1). */
const MAX_RECORD = 16 * 1024;
/** Record headers tolerated while gathering one hello: generous for fragmented hellos, yet bounded. */
const MAX_RECORDS = 32;

const RECORD_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 0x01;
const EXT_SERVER_NAME = 0x0000;
const EXT_ALPN = 0x0010;
const SNI_HOST_NAME = 0x00;

const NEED_MORE: ClientHelloInfo = Object.freeze({ state: 'need-more' });
const NOT_TLS: ClientHelloInfo = Object.freeze({ state: 'not-tls' });
const INVALID: ClientHelloInfo = Object.freeze({ state: 'invalid' });

/**
 * Parses the TLS record(s) at the start of `buf` that carry a ClientHello. The handshake message may
 * be split over several handshake records; bytes after the message are ignored (TLS 1.3 early data
 * may follow it).
 */
export function parseClientHello(buf: Buffer): ClientHelloInfo {
  if (buf.length === 0) return NEED_MORE;
  if (buf[0] !== RECORD_HANDSHAKE) return NOT_TLS;
  // Record version major is 3 for SSL 3.0 through TLS 1.3; anything else is not a TLS record.
  if (buf.length >= 2 && buf[1] !== 0x03) return NOT_TLS;

  // Gather the handshake bytes from consecutive records until the whole message is there.
  const fragments: Buffer[] = [];
  let gathered = 0;
  let wanted = -1; // handshake header + body length, once known
  let offset = 0;
  let records = 0;
  while (wanted < 0 || gathered < wanted) {
    if (buf.length - offset < 5) return NEED_MORE;
    if (records >= MAX_RECORDS) return INVALID;
    const type = buf[offset]!;
    const major = buf[offset + 1]!;
    const length = buf.readUInt16BE(offset + 3);
    if (type !== RECORD_HANDSHAKE || major !== 0x03) return records === 0 ? NOT_TLS : INVALID;
    // Zero-length handshake fragments are forbidden (RFC 8446 §5.1) and would let a peer stall us.
    if (length === 0 || length > MAX_RECORD) return INVALID;
    records++;
    const start = offset + 5;
    const available = Math.min(length, buf.length - start);
    fragments.push(buf.subarray(start, start + available));
    gathered += available;
    if (wanted < 0 && gathered >= 4) {
      const head = fragments.length === 1 ? fragments[0]! : Buffer.concat(fragments, gathered);
      if (head[0] !== HANDSHAKE_CLIENT_HELLO) return INVALID;
      const bodyLength = (head[1]! << 16) | (head[2]! << 8) | head[3]!;
      if (bodyLength > MAX_CLIENT_HELLO) return INVALID;
      wanted = 4 + bodyLength;
    }
    if (available < length) {
      // This record is still arriving; it may already hold the whole message.
      if (wanted >= 0 && gathered >= wanted) break;
      return NEED_MORE;
    }
    offset = start + length;
  }
  const message = fragments.length === 1 ? fragments[0]! : Buffer.concat(fragments, gathered);
  return parseClientHelloBody(message.subarray(4, wanted));
}

/** A bounds-checked reader: every read past the end flips `ok` to false and yields zeros. */
class Reader {
  ok = true;
  constructor(
    private readonly buf: Buffer,
    private pos = 0,
    private readonly end = buf.length,
  ) {}

  get remaining(): number {
    return this.end - this.pos;
  }

  u8(): number {
    if (this.remaining < 1) return this.fail();
    return this.buf[this.pos++]!;
  }

  u16(): number {
    if (this.remaining < 2) return this.fail();
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  skip(n: number): void {
    if (this.remaining < n) this.fail();
    else this.pos += n;
  }

  /** A sub-reader over the next `n` bytes (consumed from this one). */
  sub(n: number): Reader {
    if (this.remaining < n) {
      this.fail();
      return new Reader(this.buf, this.pos, this.pos);
    }
    const r = new Reader(this.buf, this.pos, this.pos + n);
    this.pos += n;
    return r;
  }

  bytes(n: number): Buffer {
    if (this.remaining < n) {
      this.fail();
      return Buffer.alloc(0);
    }
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  private fail(): 0 {
    this.ok = false;
    this.pos = this.end;
    return 0;
  }
}

function parseClientHelloBody(body: Buffer): ClientHelloInfo {
  const r = new Reader(body);
  r.skip(2); // legacy_version
  r.skip(32); // random
  const sessionId = r.u8();
  if (sessionId > 32) return INVALID;
  r.skip(sessionId);
  const suites = r.u16();
  if (suites < 2 || suites % 2 !== 0) return INVALID;
  r.skip(suites);
  const compressions = r.u8();
  if (compressions < 1) return INVALID;
  r.skip(compressions);
  if (!r.ok) return INVALID;
  // Extensions are optional in a pre-TLS 1.2 hello: nothing after the compression methods.
  if (r.remaining === 0) return { state: 'ok' };
  const extLength = r.u16();
  if (!r.ok || extLength !== r.remaining) return INVALID;

  let sni: string | undefined;
  let alpn: string[] | undefined;
  const seen = new Set<number>();
  while (r.remaining > 0) {
    const type = r.u16();
    const length = r.u16();
    const ext = r.sub(length);
    if (!r.ok) return INVALID;
    // A repeated extension is a protocol error (RFC 8446 §4.2) and a classic way to confuse parsers.
    if (seen.has(type)) return INVALID;
    seen.add(type);
    if (type === EXT_SERVER_NAME) {
      const name = parseServerName(ext);
      if (name === null) return INVALID;
      if (name !== undefined) sni = name;
    } else if (type === EXT_ALPN) {
      const list = parseAlpn(ext);
      if (!list) return INVALID;
      alpn = list;
    }
  }
  return { state: 'ok', ...(sni !== undefined ? { sni } : {}), ...(alpn ? { alpn } : {}) };
}

/** RFC 6066 §3: one host_name at most; `undefined` for an empty extension, `null` when malformed. */
function parseServerName(ext: Reader): string | undefined | null {
  // A server echoes an empty server_name; a client may not, but tolerate it as "no SNI".
  if (ext.remaining === 0) return undefined;
  const listLength = ext.u16();
  if (!ext.ok || listLength !== ext.remaining || listLength === 0) return null;
  let host: string | undefined;
  while (ext.remaining > 0) {
    const type = ext.u8();
    const length = ext.u16();
    const name = ext.bytes(length);
    if (!ext.ok) return null;
    if (type !== SNI_HOST_NAME) continue; // unknown name types are skipped, as RFC 6066 allows
    if (host !== undefined) return null;
    host = hostName(name) ?? undefined;
    if (host === undefined) return null;
  }
  return host;
}

/**
 * A DNS name as ASCII letters, digits, `-`, `_` and dots, at most 255 bytes, lower-cased. Anything
 * else (NUL, spaces, bytes over 0x7f, a trailing dot) marks the hello as malformed rather than
 * reaching logs or route keys.
 */
function hostName(b: Buffer): string | null {
  if (b.length === 0 || b.length > 255) return null;
  for (const c of b) {
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e || c === 0x5f;
    if (!ok) return null;
  }
  if (b[0] === 0x2e || b[b.length - 1] === 0x2e) return null;
  return b.toString('latin1').toLowerCase();
}

/** RFC 7301 §3.1: a non-empty list of non-empty protocol names. */
function parseAlpn(ext: Reader): string[] | null {
  const listLength = ext.u16();
  if (!ext.ok || listLength !== ext.remaining || listLength === 0) return null;
  const out: string[] = [];
  while (ext.remaining > 0) {
    const length = ext.u8();
    if (length === 0) return null;
    const name = ext.bytes(length);
    if (!ext.ok) return null;
    out.push(name.toString('latin1'));
  }
  return out;
}

// ------------------------------------------------------------------ reading from a socket

export interface PeekedHello {
  /** Every byte read from the socket, in order; the caller owns them (unshift or forward them). */
  readonly data: Buffer;
  readonly hello: ClientHelloInfo;
  /** Why reading stopped before the hello was complete (`hello.state` is then `need-more`). */
  readonly stopped?: 'timeout' | 'closed' | 'error';
}

/** Bytes we are willing to hold while waiting: one maximal hello spread over the allowed records. */
const MAX_PEEK = MAX_CLIENT_HELLO + 4 + 5 * MAX_RECORDS;

/**
 * Reads from `socket` until its first bytes are a complete ClientHello, or clearly not TLS, or
 * malformed; or until the timeout, the peer's end, or an error. Never rejects.
 *
 * Nothing read is kept back: `data` holds all of it, to `unshift` or send on. The socket is left
 * not flowing, with nothing more read from it, but NOT explicitly paused: whoever takes it next
 * (`pipe`, a 'data' listener such as node:http's, or `resume()`) starts the flow without having to
 * know it was peeked. (An explicit `pause()` would leave node:http waiting forever.)
 */
export function peekClientHello(socket: Socket, timeoutMs = 5000): Promise<PeekedHello> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    let timer: NodeJS.Timeout | undefined;

    const joined = (): Buffer => (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    const finish = (hello: ClientHelloInfo, stopped?: PeekedHello['stopped']): void => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      // Dropping the last 'readable' listener returns the stream to "no consumer yet": it buffers up
      // to its high-water mark and flows as soon as someone reads.
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
      socket.off('close', onClose);
      socket.off('error', onError);
      resolve({ data: joined(), hello, ...(stopped ? { stopped } : {}) });
    };
    const onReadable = (): void => {
      let chunk: Buffer | string | null;
      while (!done && (chunk = socket.read() as Buffer | string | null) !== null) {
        const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        chunks.push(b);
        size += b.length;
        const hello = parseClientHello(joined());
        if (hello.state !== 'need-more') finish(hello);
        // The parser's own limits make this unreachable in practice; it bounds memory regardless.
        else if (size > MAX_PEEK) finish(INVALID);
      }
    };
    const onEnd = (): void => finish(parseClientHello(joined()), 'closed');
    const onClose = (): void => finish(parseClientHello(joined()), 'closed');
    const onError = (): void => finish(parseClientHello(joined()), 'error');

    if (socket.destroyed || socket.readableEnded) {
      finish(NEED_MORE, 'closed');
      return;
    }
    timer = setTimeout(() => finish(parseClientHello(joined()), 'timeout'), timeoutMs);
    timer.unref?.();
    socket.on('end', onEnd);
    socket.on('close', onClose);
    socket.on('error', onError);
    socket.on('readable', onReadable);
  });
}
