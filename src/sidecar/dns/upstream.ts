// Forwarding a DNS query the mesh does not answer to the pod's nameservers, as Istio's agent does:
// one nameserver after the other, in resolv.conf order, until one answers; the query goes out as the
// app sent it (UDP as UDP, TCP as TCP: a client retrying a truncated answer over TCP gets the full one
// from upstream) and the answer comes back unchanged. Each UDP query has its own socket, so its
// source port is random and only the nameserver it was sent to can answer it.

import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect } from 'node:net';
import { isIP } from 'node:net';
import { FrameReader, frame } from './tcp-frames.js';

export interface Nameserver {
  readonly address: string;
  readonly port: number;
}

/** How long one nameserver has to answer before the next is asked (Istio's agent waits 5 s in all). */
export const UPSTREAM_TIMEOUT_MS = 2500;

export class Upstream {
  constructor(
    private readonly nameservers: readonly Nameserver[],
    private readonly timeoutMs: number = UPSTREAM_TIMEOUT_MS,
  ) {}

  /** The first answer a nameserver gives to `query` (its wire bytes); rejects when none answers. */
  async forward(query: Buffer, transport: 'udp' | 'tcp'): Promise<Buffer> {
    let last: Error = new Error('no nameserver is configured');
    for (const ns of this.nameservers) {
      try {
        return await (transport === 'udp' ? this.#udp(query, ns) : this.#tcp(query, ns));
      } catch (err) {
        last = err as Error;
      }
    }
    throw last;
  }

  #udp(query: Buffer, ns: Nameserver): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const socket: UdpSocket = createSocket(isIP(ns.address) === 6 ? 'udp6' : 'udp4');
      const id = query.readUInt16BE(0);
      const done = settle(ns, this.timeoutMs, () => socket.close(), resolve, reject);
      socket.on('error', (err) => done(err));
      socket.on('message', (msg, from) => {
        // Anything but an answer to this query from this nameserver is ignored.
        if (msg.length < 12 || msg.readUInt16BE(0) !== id || from.port !== ns.port || from.address !== ns.address) return;
        done(undefined, msg);
      });
      socket.send(query, ns.port, ns.address, (err) => err && done(err));
    });
  }

  #tcp(query: Buffer, ns: Nameserver): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: ns.address, port: ns.port });
      const reader = new FrameReader();
      const done = settle(ns, this.timeoutMs, () => socket.destroy(), resolve, reject);
      socket.on('connect', () => socket.write(frame(query)));
      socket.on('data', (chunk: Buffer) => {
        const answer = reader.push(chunk)[0];
        if (answer) done(undefined, answer);
      });
      socket.on('error', (err) => done(err));
      socket.on('end', () => done(new Error(`${ns.address}:${ns.port} closed the connection without an answer`)));
    });
  }
}

/** One query's end: its answer, an error, or the timeout, whichever comes first; the socket goes then. */
function settle(ns: Nameserver, timeoutMs: number, release: () => void, resolve: (b: Buffer) => void, reject: (e: Error) => void): (err: Error | undefined, answer?: Buffer) => void {
  let settled = false;
  const done = (err: Error | undefined, answer?: Buffer): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    release();
    if (err) reject(err);
    else resolve(answer!);
  };
  const timer = setTimeout(() => done(new Error(`${ns.address}:${ns.port} did not answer within ${timeoutMs} ms`)), timeoutMs);
  return done;
}
