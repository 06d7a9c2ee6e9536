// Consistent hashing on a ring (consistentHash.ringHash, the default): each endpoint owns a number of
// points proportional to its weight, at least minimumRingSize in all; a request's hash goes to the
// first point at or after it. Removing an endpoint only moves the keys that landed on its points.

import { hash53, randomHash } from './hash.js';
import type { HashKeyFn } from './hash-key.js';
import type { LbTargets } from './lb-endpoints.js';
import { emptyBalancer, usableExclusion } from './lb-endpoints.js';
import type { LoadBalancer, Pick } from './types.js';

export const RING_HASH = 'RING_HASH';
export const DEFAULT_MIN_RING_SIZE = 1024;
/** Envoy allows 8M points; a ring that large costs seconds to build on every reload, so it is capped lower. */
export const MAX_RING_SIZE = 1 << 20;

export interface Ring {
  /** Sorted hash positions. */
  readonly positions: Float64Array;
  /** owners[i] is the endpoint index that owns positions[i]. */
  readonly owners: Int32Array;
}

export function buildRing(keys: readonly string[], weights: readonly number[], minimumRingSize = DEFAULT_MIN_RING_SIZE): Ring {
  const n = keys.length;
  const total = weights.reduce((a, b) => a + b, 0);
  const minRing = Math.min(Math.max(1, Math.floor(minimumRingSize) || DEFAULT_MIN_RING_SIZE), MAX_RING_SIZE);
  // Points per unit of weight, a power of two giving between minRing and 2·minRing points in all. Being
  // quantised, it rarely changes when an endpoint comes or goes, so the others keep their points and
  // only the keys of the endpoint that changed move (Envoy rescales every endpoint instead).
  let perUnit = 2 ** Math.ceil(Math.log2(minRing / total));
  if (perUnit * total > MAX_RING_SIZE) perUnit = 2 ** Math.floor(Math.log2(MAX_RING_SIZE / total));
  const counts = weights.map((w) => Math.max(1, Math.round(perUnit * w)));
  const size = counts.reduce((a, b) => a + b, 0);
  const raw = new Float64Array(size);
  const rawOwners = new Int32Array(size);
  let k = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < counts[i]!; j++) {
      raw[k] = hash53(`${keys[i]}_${j}`);
      rawOwners[k++] = i;
    }
  }
  const order = Array.from({ length: size }, (_, i) => i).sort((a, b) => raw[a]! - raw[b]! || rawOwners[a]! - rawOwners[b]!);
  const positions = new Float64Array(size);
  const owners = new Int32Array(size);
  order.forEach((from, to) => {
    positions[to] = raw[from]!;
    owners[to] = rawOwners[from]!;
  });
  return { positions, owners };
}

/** Index of the first position ≥ hash, wrapping to 0 past the end. */
export function ringIndex(positions: Float64Array, hash: number): number {
  let lo = 0;
  let hi = positions.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (positions[mid]! < hash) lo = mid + 1;
    else hi = mid;
  }
  return lo === positions.length ? 0 : lo;
}

export function ringHash(t: LbTargets, keyOf: HashKeyFn, random: () => number, minimumRingSize?: number): LoadBalancer {
  if (t.endpoints.length === 0) return emptyBalancer(RING_HASH);
  const { positions, owners } = buildRing(t.keys, t.weights, minimumRingSize);
  const { picks, endpoints } = t;
  return {
    algorithm: RING_HASH,
    pick(ctx): Pick | undefined {
      const key = keyOf(ctx);
      let i = ringIndex(positions, key === undefined ? randomHash(random) : typeof key === 'number' ? key : key.hash);
      const exclude = usableExclusion(ctx.exclude, endpoints);
      if (exclude) {
        // Walk on along the ring, as Envoy does for a retry that must avoid earlier hosts.
        for (let steps = 0; steps < positions.length && exclude.has(endpoints[owners[i]!]!); steps++) i = i + 1 === positions.length ? 0 : i + 1;
      }
      const chosen = picks[owners[i]!]!;
      return typeof key === 'object' ? { endpoint: chosen.endpoint, setCookie: key.setCookie } : chosen;
    },
  };
}
