// What one kind of proxy (one role, namespace and set of labels: proxy-scope.ts's scopeKey) is sent,
// shared by every connected proxy of that kind: the entries of its subset, their version, the whole
// `config` line (built once, when a proxy needs it), and on each push the `delta` line from the
// previous version. Replicas of one workload cost the control plane one view, not one each.

import type { Entry, PublishedSet } from './config-set.js';
import { Digest } from './config-set.js';
import type { ProxyMeta, ScopeIndex } from './proxy-scope.js';
import { resourceKey } from '../core/sources/control-plane-wire.js';

export interface ViewDelta {
  /** The version a proxy must have for `line` to apply. */
  readonly base: string;
  readonly version: string;
  /** The stream's `delta` line, newline included. */
  readonly line: string;
  readonly updated: number;
  readonly removed: number;
}

export class ScopedView {
  #entries = new Map<string, Entry>();
  #digest = new Digest();
  #version = '';
  #fullLine: string | undefined;

  constructor(
    readonly key: string,
    readonly meta: ProxyMeta,
  ) {}

  get version(): string {
    return this.#version;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Recomputes the subset against a new set: the delta from the previous one, or undefined when this proxy's subset did not change. */
  update(index: ScopeIndex, set: PublishedSet): ViewDelta | undefined {
    const next = new Map<string, Entry>();
    for (const r of index.scope(this.meta)) {
      const e = set.entries.get(resourceKey(r));
      if (e) next.set(e.key, e);
    }
    const digest = this.#digest.copy();
    const updated: Entry[] = [];
    const removed: string[] = [];
    for (const [key, e] of next) {
      const old = this.#entries.get(key);
      if (old && sameDigest(old.digest, e.digest)) continue;
      if (old) digest.remove(old.digest);
      digest.add(e.digest);
      updated.push(e);
    }
    for (const [key, old] of this.#entries) {
      if (next.has(key)) continue;
      digest.remove(old.digest);
      removed.push(key);
    }
    const base = this.#version;
    this.#entries = next;
    this.#digest = digest;
    this.#version = digest.hex();
    if (updated.length === 0 && removed.length === 0 && base !== '') return undefined;
    this.#fullLine = undefined;
    const line = `{"type":"delta","version":"${this.#version}","base":"${base}","updated":[${updated.map((e) => e.json).join(',')}],"removed":${JSON.stringify(removed)}}\n`;
    return { base, version: this.#version, line, updated: updated.length, removed: removed.length };
  }

  /** The whole subset as one `config` line, in the configuration's own order. */
  fullLine(): string {
    if (this.#fullLine === undefined) {
      const sorted = [...this.#entries.values()].sort((a, b) => a.resource.origin.order - b.resource.origin.order);
      this.#fullLine = `{"type":"config","version":"${this.#version}","resources":[${sorted.map((e) => e.json).join(',')}]}\n`;
    }
    return this.#fullLine;
  }
}

function sameDigest(a: Uint32Array, b: Uint32Array): boolean {
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2] && a[3] === b[3];
}
