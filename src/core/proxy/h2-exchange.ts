// One attempt against an upstream that speaks HTTP/2 (service ports declared http2 or grpc), on
// node:http2 sessions: cleartext with prior knowledge, or over the TLS the connector opens (mesh mTLS
// or DestinationRule origination). undici's HTTP/2 path hands trailers to new-style dispatch
// handlers as an empty object, and gRPC lives on its trailers (grpc-status), so this path uses
// node's own client, which carries them. Same contract as exchange(): backpressure, cancel, retry.

import { connect, constants, type ClientHttp2Session } from 'node:http2';
import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Cancel, ExchangeHooks, ExchangeOutcome, ExchangeRequest } from './upstream-exchange.js';

/**
 * Opens the TLS connection for a new session; `onFailure` receives the reason it failed before the
 * handshake completed. Returns an error instead when no connection can even be attempted.
 */
export type H2TlsConnect = (onFailure: (err: Error) => void) => { ok: true; socket: TLSSocket } | { ok: false; error: Error };

/** One multiplexed session per endpoint (and TLS profile), replaced when it closes or fails. */
export class H2Sessions {
  readonly #sessions = new Map<string, ClientHttp2Session>();
  /** Why a session failed (ECONNREFUSED, a TLS error …): its streams only say they were cancelled. */
  static readonly failures = new WeakMap<ClientHttp2Session, Error>();

  /** `endpoint` is `address:port`; `key` tells sessions apart (the endpoint, plus its TLS profile). */
  get(key: string, endpoint: string, tls?: H2TlsConnect): { ok: true; session: ClientHttp2Session } | { ok: false; error: Error } {
    const known = this.#sessions.get(key);
    if (known && !known.closed && !known.destroyed) return { ok: true, session: known };
    let session: ClientHttp2Session;
    if (tls) {
      let failure: Error | undefined;
      const opened = tls((err) => {
        failure = err;
        if (session) H2Sessions.failures.set(session, err);
      });
      if (!opened.ok) return opened;
      // The endpoint address stands in for the authority; each request sends its own :authority.
      session = connect(`https://${endpoint}`, { createConnection: () => opened.socket });
      if (failure) H2Sessions.failures.set(session, failure);
    } else {
      session = connect(`http://${endpoint}`);
    }
    const forget = (): void => {
      if (this.#sessions.get(key) === session) this.#sessions.delete(key);
    };
    session.on('error', (err: Error) => {
      // The connector's translated reason (a TLS failure) wins over the raw socket error.
      if (!H2Sessions.failures.has(session)) H2Sessions.failures.set(session, err);
      forget();
    });
    session.on('close', forget);
    session.on('goaway', forget);
    session.unref();
    this.#sessions.set(key, session);
    return { ok: true, session };
  }

  close(): void {
    for (const s of this.#sessions.values()) s.close();
    this.#sessions.clear();
  }
}

export function exchangeH2(session: ClientHttp2Session, req: ExchangeRequest, res: ServerResponse, hooks: ExchangeHooks, onCancelable: (c: Cancel) => void): Promise<ExchangeOutcome> {
  return new Promise((resolve) => {
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (k !== 'host') headers[k] = v;
    headers[':method'] = req.method;
    headers[':path'] = req.path;
    headers[':authority'] = String(req.headers.host ?? '');
    let settled = false;
    let forwarding = false;
    let retryStatus = 0;
    let trailers: Record<string, string> | undefined;
    const settle = (o: ExchangeOutcome): void => {
      if (settled) return;
      settled = true;
      res.off('drain', onDrain);
      resolve(o);
    };
    let stream: ReturnType<ClientHttp2Session['request']>;
    try {
      stream = session.request(headers);
    } catch (error) {
      return settle({ kind: 'failed', error: error as Error });
    }
    const onDrain = (): void => void stream.resume();
    onCancelable({ cancel: () => stream.close(constants.NGHTTP2_CANCEL) });
    stream.on('response', (h) => {
      const status = Number(h[':status']);
      if (status < 200) return;
      const upstream: Record<string, string | string[] | undefined> = {};
      for (const [k, v] of Object.entries(h)) if (k.charCodeAt(0) !== 58) upstream[k] = v as string | string[];
      if (hooks.retryOnStatus(status, upstream)) {
        retryStatus = status;
        stream.resume();
        return;
      }
      forwarding = true;
      res.writeHead(status, hooks.responseHeaders(upstream));
      res.on('drain', onDrain);
    });
    stream.on('data', (chunk: Buffer) => {
      if (forwarding && !res.write(chunk)) stream.pause();
    });
    stream.on('trailers', (t) => {
      trailers = {};
      for (const [k, v] of Object.entries(t)) if (k.charCodeAt(0) !== 58 && v !== undefined) trailers[k] = String(v);
    });
    stream.on('end', () => {
      if (!forwarding) return settle(retryStatus ? { kind: 'retry-status', status: retryStatus } : { kind: 'failed', error: new Error('upstream stream ended without a response') });
      if (trailers && Object.keys(trailers).length > 0) res.addTrailers(trailers);
      res.end();
      settle({ kind: 'responded', complete: true });
    });
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (forwarding) return settle({ kind: 'responded', complete: false, error: err });
      // A session that never connected fails its streams: report the connect error itself.
      settle({ kind: 'failed', error: H2Sessions.failures.get(session) ?? err });
    });
    stream.on('close', () => {
      const failure = H2Sessions.failures.get(session);
      if (!settled && failure && !forwarding) return settle({ kind: 'failed', error: failure });
      if (!settled) settle(forwarding ? { kind: 'responded', complete: false } : { kind: 'failed', error: Object.assign(new Error('upstream reset the stream'), { code: 'ECONNRESET' }) });
    });
    if (req.body === undefined) stream.end();
    else if (Buffer.isBuffer(req.body)) stream.end(req.body);
    else if ('pipe' in req.body) req.body.pipe(stream);
    else Readable.from(req.body).pipe(stream);
  });
}
