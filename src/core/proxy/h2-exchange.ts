// One attempt against an upstream that speaks HTTP/2 (service ports declared http2 or grpc), on a
// stream of one of node:http2's sessions (h2-sessions.ts): cleartext with prior knowledge, or over
// the TLS the connector opens (mesh mTLS or DestinationRule origination). undici's HTTP/2 path hands trailers to new-style dispatch
// handlers as an empty object, and gRPC lives on its trailers (grpc-status), so this path uses
// node's own client, which carries them. Same contract as exchange(): backpressure, cancel, retry.

import { constants, type ClientHttp2Stream, type OutgoingHttpHeaders } from 'node:http2';
import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { H2Sessions, type H2Opened } from './h2-sessions.js';
import type { Cancel, ExchangeHooks, ExchangeOutcome, ExchangeRequest } from './upstream-exchange.js';

/** `open` starts the attempt's stream with its headers (UpstreamPools.h2Request). */
export function exchangeH2(open: (headers: OutgoingHttpHeaders) => H2Opened, req: ExchangeRequest, res: ServerResponse, hooks: ExchangeHooks, onCancelable: (c: Cancel) => void): Promise<ExchangeOutcome> {
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
    const opened = open(headers);
    if (!opened.ok) return settle({ kind: 'failed', error: opened.error });
    const stream: ClientHttp2Stream = opened.stream;
    const session = stream.session!;
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
