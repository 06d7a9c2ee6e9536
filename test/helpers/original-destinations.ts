// Capture stood in for: the original destination of each connection a test's client app makes, as
// conntrack would tell it. The test records it once its socket is connected (by the socket's local
// port); the sidecar's lookup waits for that record.

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
