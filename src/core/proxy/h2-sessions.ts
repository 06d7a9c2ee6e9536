// HTTP/2 sessions to upstream endpoints whose service port speaks http2 or grpc: one multiplexed
// session per endpoint (and TLS profile, and connection settings), replaced when it closes or fails.
// The DestinationRule's connectionPool applies to them as it does to HTTP/1 pools: the connection
// is opened within connectTimeout (by whoever supplies the socket), a session that has carried
// maxRequestsPerConnection streams takes no more and closes once they are done, and a session left
// without streams for idleTimeout is closed.

import { connect, type ClientHttp2Session, type ClientHttp2Stream, type ClientSessionRequestOptions, type Http2Session, type OutgoingHttpHeaders } from 'node:http2';
import type { Socket } from 'node:net';

/**
 * Opens the connection for a new session (plain or TLS, within the connect timeout); `onFailure`
 * receives the reason it failed before it was usable. Returns an error instead when no connection
 * can even be attempted (TLS material missing).
 */
export type H2Connect = (onFailure: (err: Error) => void) => { ok: true; socket: Socket } | { ok: false; error: Error };

export interface H2SessionSettings {
  /** Streams one session carries before it is retired; 0 = unlimited. */
  readonly maxRequestsPerConnection: number;
  /** How long a session with no stream open stays connected. */
  readonly idleTimeoutMs: number;
}

interface Entry {
  readonly session: ClientHttp2Session;
  open: number;
  served: number;
  /** Used up (maxRequestsPerConnection): closes once its last stream is done. */
  retired: boolean;
  idle: NodeJS.Timeout | undefined;
}

export type H2Opened = { ok: true; stream: ClientHttp2Stream } | { ok: false; error: Error };

export class H2Sessions {
  readonly #entries = new Map<string, Entry>();
  /** Why a session failed (ECONNREFUSED, a TLS error …): its streams only say they were cancelled. */
  static readonly failures = new WeakMap<Http2Session, Error>();

  /**
   * A new stream to `endpoint` (`address:port`) on the session `key` names (the endpoint plus what
   * else tells its sessions apart), opening the session first when there is none.
   */
  request(key: string, endpoint: string, open: H2Connect, settings: H2SessionSettings, headers: OutgoingHttpHeaders, options?: ClientSessionRequestOptions): H2Opened {
    let entry = this.#entries.get(key);
    if (!entry || entry.session.closed || entry.session.destroyed) {
      const created = this.#open(key, endpoint, open);
      if (!created.ok) return created;
      entry = created.entry;
    }
    const e = entry;
    let stream: ClientHttp2Stream;
    try {
      stream = e.session.request(headers, options);
    } catch (error) {
      return { ok: false, error: error as Error };
    }
    clearTimeout(e.idle);
    e.open++;
    e.served++;
    if (settings.maxRequestsPerConnection > 0 && e.served >= settings.maxRequestsPerConnection) {
      // Used up: new requests get a new session. Closing now would send GOAWAY before this stream
      // has started (and so refuse it): the session goes once its streams are done.
      this.#forget(key, e);
      e.retired = true;
    }
    stream.once('close', () => {
      if (--e.open > 0 || e.session.closed || e.session.destroyed) return;
      if (e.retired) return void e.session.close();
      e.idle = setTimeout(() => e.session.close(), settings.idleTimeoutMs);
      e.idle.unref();
    });
    return { ok: true, stream };
  }

  #open(key: string, endpoint: string, open: H2Connect): { ok: true; entry: Entry } | { ok: false; error: Error } {
    let failure: Error | undefined;
    let session: ClientHttp2Session | undefined;
    const opened = open((err) => {
      failure = err;
      if (session) H2Sessions.failures.set(session, err);
    });
    if (!opened.ok) return opened;
    // The endpoint address stands in for the authority; each request sends its own :authority.
    const scheme = 'encrypted' in opened.socket ? 'https' : 'http';
    session = connect(`${scheme}://${endpoint}`, { createConnection: () => opened.socket });
    if (failure) H2Sessions.failures.set(session, failure);
    const s = session;
    const entry: Entry = { session: s, open: 0, served: 0, retired: false, idle: undefined };
    s.on('error', (err: Error) => {
      // The connector's translated reason (a TLS failure) wins over the raw socket error.
      if (!H2Sessions.failures.has(s)) H2Sessions.failures.set(s, err);
      this.#forget(key, entry);
    });
    s.on('close', () => {
      clearTimeout(entry.idle);
      this.#forget(key, entry);
    });
    s.on('goaway', () => this.#forget(key, entry));
    s.unref();
    this.#entries.set(key, entry);
    return { ok: true, entry };
  }

  #forget(key: string, entry: Entry): void {
    if (this.#entries.get(key) === entry) this.#entries.delete(key);
  }

  close(): void {
    for (const e of this.#entries.values()) {
      clearTimeout(e.idle);
      e.session.close();
    }
    this.#entries.clear();
  }
}
