// The start of a request body, read before the request is forwarded and kept for the upstream: an
// external authorizer that asks for the body (includeRequestBodyInCheck, ext-authz.ts) gets the first
// bytes while the request waits, as Envoy's ext_authz filter buffers them. The request's one reader
// (an async iterator, which must not be abandoned: leaving a `for await` early destroys the stream)
// is kept here, and guardedBody (stream-state.ts) yields what was read ahead before reading on, so the
// upstream gets the body whole and in order, its length and completeness checked as ever.

import type { IncomingMessage, ServerResponse } from 'node:http';

interface ReadAhead {
  readonly reader: AsyncIterator<Buffer>;
  readonly held: Buffer[];
  size: number;
  ended: boolean;
  failure?: unknown;
  /** bodyFromStart took the body on: the upstream side reads the rest. */
  handedOver: boolean;
}

const readAheads = new WeakMap<IncomingMessage, ReadAhead>();

/** What has been read of a body: at least `limit` bytes of it, or all of it. */
export interface BodyStart {
  /** Every byte read so far (may run past the limit by part of the last chunk). */
  readonly bytes: Buffer;
  /** The body ended within what was read. */
  readonly complete: boolean;
}

/**
 * Reads `req`'s body until `limit` bytes are held or it ends; undefined when the client broke it
 * off (the request is then gone). Several callers may ask in turn: each reads on from the last.
 */
export async function readBodyStart(req: IncomingMessage, res: ServerResponse, limit: number): Promise<BodyStart | undefined> {
  let ahead = readAheads.get(req);
  if (!ahead) {
    const created: ReadAhead = { reader: (req as AsyncIterable<Buffer>)[Symbol.asyncIterator](), held: [], size: 0, ended: false, handedOver: false };
    readAheads.set(req, (ahead = created));
    // Answered without forwarding (a denial, a 413): the rest of the body is read and dropped, as
    // node:http dumps a body nobody read. Node does not once reading began, and an HTTP/1 connection
    // would wait for the unread bytes before its next request.
    res.once('finish', () => {
      if (!created.handedOver) void discardRest(created);
    });
  }
  while (!ahead.ended && ahead.failure === undefined && ahead.size < limit) {
    try {
      const r = await ahead.reader.next();
      if (r.done) ahead.ended = true;
      else {
        ahead.held.push(r.value);
        ahead.size += r.value.length;
      }
    } catch (err) {
      ahead.failure = err ?? new Error('request body failed');
    }
  }
  if (ahead.failure !== undefined) return undefined;
  return { bytes: ahead.held.length === 1 ? ahead.held[0]! : Buffer.concat(ahead.held), complete: ahead.ended };
}

/**
 * The body from its first byte: what was read ahead, then the rest from the same reader; `req`
 * itself when nothing was. A read that failed ahead fails here, where the upstream side sees it.
 */
export function bodyFromStart(req: IncomingMessage): AsyncIterable<Buffer> {
  const ahead = readAheads.get(req);
  if (!ahead) return req as AsyncIterable<Buffer>;
  ahead.handedOver = true;
  return replayed(ahead);
}

async function discardRest(ahead: ReadAhead): Promise<void> {
  ahead.held.length = 0;
  try {
    while (!ahead.ended && ahead.failure === undefined) {
      const r = await ahead.reader.next();
      if (r.done) ahead.ended = true;
    }
  } catch {
    // The client went away: nothing left to read.
  }
}

async function* replayed(ahead: ReadAhead): AsyncGenerator<Buffer> {
  let finished = false;
  try {
    // Handed over once: the upstream side is the only reader from here on.
    const held = ahead.held.splice(0);
    yield* held;
    if (ahead.failure !== undefined) throw ahead.failure;
    while (!ahead.ended) {
      const r = await ahead.reader.next();
      if (r.done) break;
      yield r.value;
    }
    finished = true;
  } finally {
    // Stopped early (an attempt cancelled): the reader is let go as a `for await` over the request would.
    if (!finished && !ahead.ended) void ahead.reader.return?.();
  }
}
