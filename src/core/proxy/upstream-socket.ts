// Which connection a request went out on, for Envoy's %UPSTREAM_LOCAL_ADDRESS% and
// %UPSTREAM_REMOTE_ADDRESS% (Istio's default formats print the first): the two ends of that socket.
// An HTTP/1 request goes out through undici's pool, whose dispatch handler never sees the socket;
// undici's `undici:client:sendHeaders` diagnostics channel names it, in the same synchronous call in
// which the handler heard onRequestStart. So the attempt that just started is noted, and the
// channel's message hands it the socket. HTTP/2 streams and upgrades have their socket at hand.
//
// All of it only while a format in force reads those operators (watchUpstreamSockets): otherwise
// nothing is subscribed, undici publishes nothing, and a request pays one boolean test. The ends of a
// socket are read once and kept with it, for every request it carries.

import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { Socket } from 'node:net';

/** The two ends of an upstream connection, `ip:port` (IPv6 in brackets); unknown when not connected. */
export interface UpstreamSocketEnds {
  readonly local: string | undefined;
  readonly remote: string | undefined;
}

/** Told the socket an attempt went out on (upstream-exchange.ts). */
export interface SentOn {
  sentOn(socket: Socket): void;
}

const SEND_HEADERS = 'undici:client:sendHeaders';
const ends = new WeakMap<object, UpstreamSocketEnds>();
const wanting = new Set<object>();
/** The HTTP/1 attempt whose headers undici is about to write (between onRequestStart and the channel's message). */
let starting: SentOn | undefined;

/** True while some proxy of this process logs the upstream connection's addresses. */
export let watchingUpstreamSockets = false;

function onSendHeaders(message: unknown): void {
  const attempt = starting;
  starting = undefined;
  const socket = (message as { socket?: Socket }).socket;
  if (attempt && socket) attempt.sentOn(socket);
}

/** `owner` (one proxy) needs, or no longer needs, the sockets its requests go out on. */
export function watchUpstreamSockets(owner: object, wanted: boolean): void {
  if (wanted) wanting.add(owner);
  else wanting.delete(owner);
  const on = wanting.size > 0;
  if (on === watchingUpstreamSockets) return;
  watchingUpstreamSockets = on;
  if (on) subscribe(SEND_HEADERS, onSendHeaders);
  else {
    unsubscribe(SEND_HEADERS, onSendHeaders);
    starting = undefined;
  }
}

/** An HTTP/1 attempt is starting: undici's next sendHeaders message is about it (only while watching). */
export function startingOn(attempt: SentOn): void {
  starting = attempt;
}

/** A socket address as Envoy logs one, `ip:port` (IPv6 in brackets); undefined without an address. */
export const addressWithPort = (address: string | undefined, port: number | undefined): string | undefined =>
  address === undefined || address === '' ? undefined : address.includes(':') ? `[${address}]:${port ?? 0}` : `${address}:${port ?? 0}`;

/** The socket's two ends, read from the socket once it is connected and kept with it. */
export function socketEnds(socket: Socket): UpstreamSocketEnds {
  let e = ends.get(socket);
  if (e === undefined) {
    e = { local: addressWithPort(socket.localAddress, socket.localPort), remote: addressWithPort(socket.remoteAddress, socket.remotePort) };
    // Not kept before it is connected: its addresses are not known yet.
    if (e.local !== undefined) ends.set(socket, e);
  }
  return e;
}
