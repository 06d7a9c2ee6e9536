// One attempt of an upgrade request (WebSocket, or any `Upgrade:` protocol) against one endpoint, on
// a connection of its own: the request goes up with its Upgrade headers; a 101 is passed down and
// from then on the raw bytes are piped both ways for as long as either side keeps the connection;
// any other answer is passed down (or retried) like an ordinary response. Same contract as
// exchange(): the outcome says whether the client got an answer, and the attempt can be called off
// until the connection is upgraded.

import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { watchingUpstreamSockets } from './upstream-socket.js';
import type { Cancel, ExchangeHooks, ExchangeOutcome, ExchangeRequest } from './upstream-exchange.js';

/** The downstream side of an upgrade request, as the server's `upgrade` event handed it over. */
export interface UpgradeTunnel {
  readonly socket: Socket;
  /** Bytes the client sent after the request head. */
  readonly head: Buffer;
  /** The protocol the client asked for (the Upgrade header). */
  readonly protocol: string;
  /** Set once the 101 went down: the connection now belongs to the tunnel. */
  upgraded: boolean;
  /** Tunnelled bytes from and to the client, for the access log. */
  received: number;
  sent: number;
}

/** Opens the connection to the endpoint; `onFailure` learns why it failed before it was usable. */
export type TunnelConnect = (onFailure: (err: Error) => void) => { ok: true; socket: Socket } | { ok: false; error: Error };

export function exchangeUpgrade(
  open: TunnelConnect,
  req: ExchangeRequest,
  res: ServerResponse,
  hooks: ExchangeHooks,
  onCancelable: (c: Cancel) => void,
  tunnel: UpgradeTunnel,
): Promise<ExchangeOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    let answering = false;
    const settle = (o: ExchangeOutcome): void => {
      if (settled) return;
      settled = true;
      resolve(o);
    };
    let failure: Error | undefined;
    const opened = open((err) => (failure = err));
    if (!opened.ok) return settle({ kind: 'failed', error: opened.error });
    const upstream = opened.socket;
    const up = httpRequest({
      method: req.method,
      path: req.path,
      headers: { ...withoutFraming(req.headers), connection: 'Upgrade', upgrade: tunnel.protocol },
      createConnection: () => upstream,
    });
    onCancelable({
      cancel(reason) {
        // Once upgraded, the tunnel lives as long as its two ends do: no timeout ends it.
        if (!tunnel.upgraded) up.destroy(reason);
      },
    });
    up.on('error', (err) => {
      upstream.destroy();
      settle(answering ? { kind: 'responded', complete: false, error: err } : { kind: 'failed', error: failure ?? err });
    });
    // The connection the answer came on, for a log format that reads its ends (upstream-socket.ts).
    const answered = (): void => {
      if (watchingUpstreamSockets) hooks.sentOn?.(upstream);
    };
    up.on('upgrade', (answer: IncomingMessage, upSocket: Socket, upHead: Buffer) => {
      answered();
      const headers = hooks.responseHeaders(answer.headers);
      headers.connection = 'Upgrade';
      headers.upgrade = answer.headers.upgrade ?? tunnel.protocol;
      tunnel.upgraded = true;
      answering = true;
      res.writeHead(101, headers);
      res.end();
      pipeTunnel(tunnel, upSocket, upHead, () => settle({ kind: 'responded', complete: true }));
    });
    up.on('response', (answer: IncomingMessage) => {
      answered();
      const status = answer.statusCode ?? 502;
      if (hooks.retryOnStatus(status, answer.headers)) {
        const retry = (): void => {
          upstream.destroy();
          settle({ kind: 'retry-status', status });
        };
        answer.resume();
        answer.once('end', retry);
        answer.once('error', retry);
        return;
      }
      answering = true;
      res.writeHead(status, hooks.responseHeaders(answer.headers));
      const onDrain = (): void => void answer.resume();
      res.on('drain', onDrain);
      answer.on('data', (chunk: Buffer) => {
        if (!res.write(chunk)) answer.pause();
      });
      answer.once('end', () => {
        res.off('drain', onDrain);
        res.end();
        upstream.destroy();
        settle({ kind: 'responded', complete: true });
      });
      answer.once('error', (err) => settle({ kind: 'responded', complete: false, error: err }));
      answer.once('aborted', () => settle({ kind: 'responded', complete: false }));
    });
    up.end();
  });
}

/** Both ways until either side closes; `done` once both are gone. */
function pipeTunnel(tunnel: UpgradeTunnel, upstream: Socket, upstreamHead: Buffer, done: () => void): void {
  const client = tunnel.socket;
  upstream.on('error', () => upstream.destroy());
  upstream.on('data', (d: Buffer) => (tunnel.sent += d.length));
  client.on('data', (d: Buffer) => (tunnel.received += d.length));
  client.once('close', () => upstream.destroy());
  upstream.once('close', () => {
    client.destroy();
    done();
  });
  if (upstreamHead.length > 0) {
    tunnel.sent += upstreamHead.length;
    client.write(upstreamHead);
  }
  if (tunnel.head.length > 0) {
    tunnel.received += tunnel.head.length;
    upstream.write(tunnel.head);
  }
  upstream.pipe(client);
  client.pipe(upstream);
}

/**
 * The upgrade request goes up without a body: what the client wrote after its head is tunnel data,
 * sent only once the upstream has answered 101 (as Envoy's codec takes it). A `content-length` kept
 * from the client would have the upstream wait for a body that never comes, holding both
 * connections until the stream idle timeout. (`transfer-encoding` is hop-by-hop: already gone.)
 */
function withoutFraming(headers: ExchangeRequest['headers']): ExchangeRequest['headers'] {
  if (headers['content-length'] === undefined) return headers;
  const { 'content-length': _length, ...rest } = headers;
  return rest;
}
