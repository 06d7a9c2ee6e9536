// Holds the snapshot that serves. Swapping is one assignment, so a request that already read the
// old snapshot finishes on it while new requests see the new one.

import type { Snapshot } from './snapshot.js';

export class SnapshotHolder {
  #current: Snapshot | undefined;
  #version = 0;
  readonly #listeners = new Set<(s: Snapshot) => void>();

  current(): Snapshot | undefined {
    return this.#current;
  }

  /** The version the next accepted snapshot should carry. */
  nextVersion(): number {
    return this.#version + 1;
  }

  swap(next: Snapshot): void {
    this.#version = next.version;
    this.#current = next;
    for (const l of this.#listeners) l(next);
  }

  onSwap(listener: (s: Snapshot) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
