// Istio's metadata exchange for TCP: over mesh mutual TLS whose ALPN is `istio-peer-exchange`, each
// side opens its byte stream with a frame saying who it is, so that a server sidecar's TCP metrics
// name the calling workload, app and version (not only what its certificate's service account says),
// as its HTTP metrics do from x-envoy-peer-metadata. The frame is Istio's: a 4-byte magic number and a
// 4-byte length, big-endian, then the payload, Istio's too: a protobuf Any holding a Struct with the
// node metadata and node id (peer-metadata.ts), so meshgate and Envoy peers read each other's frames.
// Envoy leaves a payload it cannot parse in the stream; meshgate takes any frame off the front, so the
// app never reads one. The client sends its frame as soon as the handshake is done and the server
// answers with its own, so neither waits on the app's protocol.

import { Transform, type TransformCallback } from 'node:stream';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { headerOfExchange } from './peer-metadata.js';

export const PEER_EXCHANGE_ALPN = 'istio-peer-exchange';
const MAGIC = 0x3d230467;
const HEADER = 8;
/** Past this a frame is not one a proxy sends: the connection is not served. */
const MAX_PAYLOAD = 64 * 1024;

/** The frame carrying `payload` (PeerMetadata.exchange). */
export function peerFrame(payload: Buffer): Buffer {
  const header = Buffer.alloc(HEADER);
  header.writeUInt32BE(MAGIC, 0);
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

type Parsed = { readonly state: 'need-more' } | { readonly state: 'none' } | { readonly state: 'frame'; readonly payload: Buffer; readonly rest: Buffer } | { readonly state: 'too-large' };

/** What the first bytes of a stream hold: a whole frame (and what follows it), none, or not enough yet. */
function parse(bytes: Buffer): Parsed {
  if (bytes.length < HEADER) return bytes.length >= 4 && bytes.readUInt32BE(0) !== MAGIC ? { state: 'none' } : { state: 'need-more' };
  if (bytes.readUInt32BE(0) !== MAGIC) return { state: 'none' };
  const size = bytes.readUInt32BE(4);
  if (size > MAX_PAYLOAD) return { state: 'too-large' };
  if (bytes.length < HEADER + size) return { state: 'need-more' };
  return { state: 'frame', payload: bytes.subarray(HEADER, HEADER + size), rest: bytes.subarray(HEADER + size) };
}

export interface PeerFrameRead {
  /** Whether the stream opened with a frame (answered with ours). */
  readonly framed: boolean;
  /** What the frame said, as an x-envoy-peer-metadata value; absent when it said nothing we read. */
  readonly peerMetadata?: string;
  /** The bytes after the frame: the app's. */
  readonly rest: Buffer;
}

/**
 * Reads the peer's frame off the start of `socket` (which must not be flowing yet). A stream that
 * does not start with one is returned whole; an oversized one is undefined (not served). A peer
 * silent for `silentMs` sends no frame first: an Envoy client writes its frame with the app's first
 * bytes, and a server-first protocol's client waits for the greeting, so the app must get the
 * connection (meshgate's clients send theirs at once).
 */
export function readPeerFrame(socket: Socket, silentMs?: number): Promise<PeerFrameRead | undefined> {
  return new Promise((resolve) => {
    let bytes: Buffer = Buffer.alloc(0);
    const silent = silentMs === undefined ? undefined : setTimeout(() => bytes.length === 0 && done({ framed: false, rest: bytes }), silentMs);
    const done = (value: PeerFrameRead | undefined): void => {
      clearTimeout(silent);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.pause();
      resolve(value);
    };
    const onData = (chunk: Buffer): void => {
      bytes = bytes.length === 0 ? chunk : Buffer.concat([bytes, chunk]);
      const p = parse(bytes);
      if (p.state === 'frame') {
        const told = readableHeader(p.payload);
        done({ framed: true, rest: p.rest, ...(told ? { peerMetadata: told } : {}) });
      } else if (p.state === 'none') done({ framed: false, rest: bytes });
      else if (p.state === 'too-large') done(undefined);
    };
    const onEnd = (): void => done({ framed: false, rest: bytes });
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
  });
}

/**
 * The server's side on a mesh TCP connection: the client's frame read (when ALPN says one comes)
 * and answered with `own`; then `next` gets the bytes after it, what it said, and whether a frame
 * may still come (a silent client's), which the app must not get either.
 */
export function exchangeAsServer(socket: TLSSocket, own: Buffer | undefined, silentMs: number, next: (rest: Buffer, peerMetadata: string | undefined, late: boolean) => void): void {
  if (socket.alpnProtocol !== PEER_EXCHANGE_ALPN) return next(Buffer.alloc(0), undefined, false);
  void readPeerFrame(socket, silentMs).then((read) => {
    if (!read) return void socket.destroy();
    if (read.framed && own) socket.write(peerFrame(own));
    next(read.rest, read.peerMetadata, !read.framed && read.rest.length === 0);
  });
}

/** The x-envoy-peer-metadata value a frame's payload says; '' when it cannot be read (the principal alone is then known). */
function readableHeader(payload: Buffer): string {
  try {
    return headerOfExchange(payload);
  } catch {
    return '';
  }
}

/** Passes a stream on with the peer's frame, if it starts with one, taken off its front. */
export class PeerFrameStripper extends Transform {
  #pending: Buffer | undefined = Buffer.alloc(0) as Buffer;

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.#pending === undefined) return done(null, chunk);
    this.#pending = Buffer.concat([this.#pending, chunk]);
    const p = parse(this.#pending);
    if (p.state === 'need-more') return done();
    if (p.state === 'too-large') return done(new Error('peer metadata frame too large'));
    const out = p.state === 'frame' ? p.rest : this.#pending;
    this.#pending = undefined;
    done(null, out);
  }

  override _flush(done: TransformCallback): void {
    // A stream shorter than a frame header was never one: it goes on as it came.
    done(null, this.#pending && this.#pending.length > 0 ? this.#pending : undefined);
  }
}
