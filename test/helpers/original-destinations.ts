// Capture stood in for: the original destination of each connection a test's client app makes, as
// conntrack would tell it. The test records it once its socket is connected (by the socket's local
// port); the sidecar's lookup waits for that record.

import { connect, type Socket } from 'node:net';
import type { Destination, OriginalDestinationLookup } from '../../src/core/capture/original-destination.js';

export class RecordedDestinations implements OriginalDestinationLookup {
  readonly #known = new Map<number, Destination>();
  readonly #waiting = new Map<number, (d: Destination) => void>();
  record(localPort: number, d: Destination): void {
    this.#known.set(localPort, d);
    this.#waiting.get(localPort)?.(d);
  }
  lookup(peer: Destination): Promise<Destination | undefined> {
    const hit = this.#known.get(peer.port);
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve) => this.#waiting.set(peer.port, resolve));
  }
}

/**
 * A client app's TCP connection to `address:port`, captured by the sidecar whose outbound port is
 * `outboundPort`: everything the far end sends until the connection closes ('' when it is refused).
 * `first`: bytes the app sends as soon as it is connected (a ClientHello, say).
 */
export function readCaptured(outboundPort: number, destinations: RecordedDestinations, address: string, port: number, first?: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connectCaptured(outboundPort, destinations, address, port);
    let data = '';
    if (first) s.once('connect', () => s.write(first));
    s.on('data', (d: Buffer) => (data += d.toString()));
    s.once('close', () => resolve(data));
    s.once('error', reject);
  });
}

/** A client app's TCP connection to `address:port`, captured by the sidecar whose outbound port is `outboundPort`. */
export function connectCaptured(outboundPort: number, destinations: RecordedDestinations, address: string, port: number): Socket {
  const s = connect(outboundPort, '127.0.0.1');
  s.once('connect', () => destinations.record(s.localPort!, { address, port }));
  return s;
}

/** A captured connection of the app to `address:port` that sends `text` then its FIN: what came back before the close. */
export function exchangeCaptured(outboundPort: number, destinations: RecordedDestinations, address: string, port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connectCaptured(outboundPort, destinations, address, port);
    let data = '';
    s.once('connect', () => s.end(text));
    s.on('data', (d: Buffer) => (data += d.toString()));
    s.once('close', () => resolve(data));
    s.once('error', reject);
  });
}
