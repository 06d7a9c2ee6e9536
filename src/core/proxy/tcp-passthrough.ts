// The act of a connection passed through as bytes, the one way every listener carries TCP once it
// has decided where it goes (and the connection's authorize stage let it): to one fixed address — a
// sidecar's inbound side to its app, captured TCP to its original destination under ALLOW_ANY, a
// CONNECT tunnel to a host the mesh does not know — with passThrough(), or to a routed cluster's
// endpoint (tcp-forward.ts), both through splice(). Each direction ends on its own, as Envoy's
// tcp_proxy half-closes: a client that sends its request and then its FIN (`echo x | nc`, a CONNECT
// client done writing) still gets the whole reply.

import { connect, type Socket } from 'node:net';
import type { Transform } from 'node:stream';
import { TcpConnectionRecord, type TcpRecordOptions } from './tcp-record.js';

export interface PassThroughTarget {
  readonly host: string;
  readonly port: number;
  /** The source address (127.0.0.6 towards a captured pod's app, so the connection is not captured again). */
  readonly localAddress?: string | undefined;
  /** A Unix domain socket instead of host and port (a Sidecar ingress listener's `unix://` endpoint). */
  readonly path?: string;
  /**
   * How long the connection may take to be made (Envoy's connect_timeout: policy/connection-limits.ts,
   * connectTimeoutFor); past it the attempt is abandoned and the connection fails with UF.
   */
  readonly connectTimeoutMs: number;
}

export interface PassThroughHooks {
  /** The destination accepted the connection; called before any byte goes either way (a CONNECT answers 200 here). */
  readonly onConnect?: () => void;
  /** The connection could not be made (refused, unreachable, timed out): the caller answers (a CONNECT's 503); without it the downstream connection is closed. */
  readonly onFailure?: (err: Error) => void;
  /** Istio's TCP metrics and the access-log line of the connection (tcp-record.ts). */
  readonly record?: TcpRecordOptions;
  /** Transforms what the downstream sends (a peer frame taken off its front). */
  readonly fromDownstream?: Transform;
}

/**
 * Connects to `to` and splices `downstream` to it once connected. `initial` holds bytes already read
 * from `downstream` (a peeked ClientHello, sniffed first bytes, a CONNECT's head); they go first.
 */
export function passThrough(downstream: Socket, initial: Buffer, to: PassThroughTarget, hooks: PassThroughHooks = {}): void {
  const record = hooks.record ? new TcpConnectionRecord(downstream, initial.length, hooks.record) : undefined;
  let open = 1; // sockets still to close before the record is written
  const closed = (): void => {
    if (--open === 0) record?.finish();
  };
  if (downstream.destroyed) return closed();
  downstream.allowHalfOpen = true;
  downstream.on('error', () => downstream.destroy());
  downstream.once('close', closed);
  const upstream = to.path !== undefined
    ? connect({ path: to.path, allowHalfOpen: true })
    : connect({ host: to.host, port: to.port, allowHalfOpen: true, noDelay: true, ...(to.localAddress ? { localAddress: to.localAddress } : {}) });
  // Until connected, a socket idle this long is a connect that did not happen in time.
  upstream.setTimeout(to.connectTimeoutMs);
  const address = to.path ?? `${to.host}:${to.port}`;
  let connected = false;
  const abandon = (): void => void upstream.destroy();
  // The client went away while the connection was still being made.
  downstream.once('close', abandon);
  const fail = (err: Error): void => {
    if (connected) return; // splice's own listeners take it from here
    upstream.off('timeout', timedOut);
    upstream.on('error', () => {}); // a late error of an abandoned attempt is not ours to raise
    upstream.destroy();
    if (downstream.destroyed) return;
    if (record) {
      record.flags = 'UF';
      record.upstreamHost = address;
      record.failedWith(err);
    }
    if (hooks.onFailure) hooks.onFailure(err);
    else downstream.destroy();
  };
  const timedOut = (): void => fail(Object.assign(new Error(`connect to ${address} timed out after ${to.connectTimeoutMs} ms`), { code: 'ETIMEDOUT' }));
  upstream.once('timeout', timedOut);
  upstream.once('connect', () => {
    connected = true;
    upstream.setTimeout(0);
    upstream.off('timeout', timedOut);
    downstream.off('close', abandon);
    if (downstream.destroyed) return void upstream.destroy();
    hooks.onConnect?.();
    open++;
    record?.connected(address, upstream);
    upstream.once('close', closed);
    splice(downstream, upstream, initial, undefined, hooks.fromDownstream);
  });
  upstream.once('error', fail);
}

/**
 * Pipes both ways. End of input on one side becomes a FIN on the other (half-close), so either may
 * keep talking after the other is done. A side that closes without finishing both directions
 * (reset, error, local destroy) takes the other down with it. `fromUpstream` and `fromDownstream`
 * transform one direction (a peer frame taken off its front).
 */
export function splice(downstream: Socket, upstream: Socket, initial: Buffer, fromUpstream?: Transform, fromDownstream?: Transform): void {
  upstream.on('error', () => upstream.destroy());
  if (initial.length > 0) upstream.write(initial);
  pipeVia(downstream, fromDownstream, upstream);
  pipeVia(upstream, fromUpstream, downstream);
  const follow = (self: Socket, other: Socket) => (): void => {
    if (other.destroyed) return;
    const clean = self.readableEnded && self.writableFinished;
    // After a clean close the other side has already been ended by the pipe and closes once flushed.
    if (clean) other.end();
    else other.destroy();
  };
  downstream.once('close', follow(downstream, upstream));
  upstream.once('close', follow(upstream, downstream));
}

/** `from` piped into `to`, through `via` when given; a stream `via` cannot pass on (a malformed peer frame) ends `from`. */
function pipeVia(from: Socket, via: Transform | undefined, to: Socket): void {
  if (!via) return void from.pipe(to);
  via.on('error', () => from.destroy());
  from.pipe(via).pipe(to);
}
