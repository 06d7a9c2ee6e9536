// The set the control plane hands out: what its source loaded, validated here so that proxies only
// ever receive resources that passed, with the last good version of anything that broke (the same
// rule a proxy on a folder follows). Each resource is encoded for the wire once and given a digest
// of that encoding; a resource object the source hands over again unchanged is not encoded again.
// Versions (of the whole set, and of each proxy's subset, see scoped-view.ts) are the XOR of their
// resources' digests: they depend only on content, whichever process computes them, and follow a
// change in time proportional to the change.

import { createHash } from 'node:crypto';
import type { LoadResult } from '../core/config/load.js';
import type { Problem } from '../core/config/problem.js';
import { validateAll } from '../core/config/validate.js';
import { resourceRef, type Resource } from '../core/model/resource.js';
import { keepLastGood } from '../core/snapshot/last-good.js';
import { encodeResource, resourceKey } from '../core/sources/control-plane-wire.js';
import { podForProxies } from './pod-for-proxies.js';

export type Validate = (resources: readonly Resource[]) => { valid: Resource[]; problems: Problem[] };

/** One resource ready for the wire. */
export interface Entry {
  readonly key: string;
  readonly resource: Resource;
  /** Its wire form (WireResource as JSON). */
  readonly json: string;
  /** 128 bits of the SHA-256 of `json`, as four words, so that sets can XOR them. */
  readonly digest: Uint32Array;
}

export interface PublishedSet {
  readonly version: string;
  readonly resources: readonly Resource[];
  readonly entries: ReadonlyMap<string, Entry>;
  /**
   * What the control plane found wrong with its input (those resources were left out or kept at
   * their last good version); the cross-resource findings are added by the distributor, off the push.
   */
  readonly problems: readonly Problem[];
}

/** Encodings of resources already seen, by object: a source that reuses unchanged objects saves the work. */
const encoded = new WeakMap<Resource, Entry>();

export function publishableSet(loaded: LoadResult, previous: readonly Resource[] | undefined, validate: Validate = validateAll): PublishedSet {
  const { valid, problems: validation } = validate(loaded.resources);
  const validSet = new Set(valid);
  const invalid = loaded.resources.filter((r) => !validSet.has(r));
  const reconciled = keepLastGood(previous, valid, invalid, loaded.problems);
  const problems: Problem[] = [...reconciled.loadProblems, ...validation, ...reconciled.problems];
  const resources: Resource[] = [];
  const entries = new Map<string, Entry>();
  const version = new Digest();
  for (const r of reconciled.resources) {
    let entry = encoded.get(r);
    if (!entry) {
      try {
        entry = entryOf(r);
      } catch (err) {
        // A document JSON cannot carry (a YAML alias that refers to itself) stays here.
        problems.push({ severity: 'error', file: r.origin.file, line: r.origin.line, resource: resourceRef(r), field: '', message: `cannot be sent to proxies (${(err as Error).message}); left out` });
        continue;
      }
      encoded.set(r, entry);
    }
    if (entries.has(entry.key)) continue; // validation already refused the second of two same-named objects
    entries.set(entry.key, entry);
    resources.push(r);
    version.add(entry.digest);
  }
  return { version: version.hex(), resources, entries, problems };
}

function entryOf(r: Resource): Entry {
  const json = JSON.stringify(encodeResource(r.kind === 'Pod' ? { ...r, raw: podForProxies(r.raw) } : r));
  const hash = createHash('sha256').update(json).digest();
  const digest = new Uint32Array([hash.readUInt32BE(0), hash.readUInt32BE(4), hash.readUInt32BE(8), hash.readUInt32BE(12)]);
  return { key: resourceKey(r), resource: r, json, digest };
}

/** An order-independent digest of a set of entries: add and remove are the same XOR. */
export class Digest {
  readonly #words = new Uint32Array(4);
  #count = 0;

  add(d: Uint32Array): void {
    this.#toggle(d);
    this.#count++;
  }

  remove(d: Uint32Array): void {
    this.#toggle(d);
    this.#count--;
  }

  copy(): Digest {
    const c = new Digest();
    c.#words.set(this.#words);
    c.#count = this.#count;
    return c;
  }

  /** 16 hex digits of the XOR, and the count, so that an empty set and a cancelled pair differ. */
  hex(): string {
    const w = this.#words;
    const mixed = createHash('sha256').update(`${w[0]}.${w[1]}.${w[2]}.${w[3]}.${this.#count}`).digest('hex');
    return mixed.slice(0, 16);
  }

  #toggle(d: Uint32Array): void {
    for (let i = 0; i < 4; i++) this.#words[i] = (this.#words[i]! ^ d[i]!) >>> 0;
  }
}
