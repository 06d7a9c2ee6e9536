// Maglev consistent hashing (consistentHash.maglev): a lookup table of prime size where each endpoint
// fills slots in its own permutation order, in turns proportional to its weight. Lookups are one
// modulo; removing an endpoint disturbs few other slots.

import { hash53, randomHash } from './hash.js';
import type { HashKeyFn } from './hash-key.js';
import type { LbTargets } from './lb-endpoints.js';
import { emptyBalancer, usableExclusion } from './lb-endpoints.js';
import type { LoadBalancer, Pick } from './types.js';

export const MAGLEV = 'MAGLEV';
export const DEFAULT_TABLE_SIZE = 65537;
const MAX_TABLE_SIZE = 5000011;

/** Slot → endpoint index. */
export function buildMaglevTable(keys: readonly string[], weights: readonly number[], tableSize = DEFAULT_TABLE_SIZE): Int32Array {
  // A table size that is not prime would leave some permutations unable to reach every slot.
  const m = Number.isInteger(tableSize) && tableSize > 1 && tableSize <= MAX_TABLE_SIZE && isPrime(tableSize) ? tableSize : DEFAULT_TABLE_SIZE;
  const n = keys.length;
  const offset = keys.map((k) => hash53(k, 0) % m);
  const skip = keys.map((k) => (hash53(k, 0x5bd1e995) % (m - 1)) + 1);
  const next = new Float64Array(n);
  const maxWeight = Math.max(...weights);
  const target = new Float64Array(n);
  const table = new Int32Array(m).fill(-1);
  let filled = 0;
  for (let round = 1; filled < m; round++) {
    for (let i = 0; i < n && filled < m; i++) {
      // An endpoint with the largest weight takes a slot every round; one with a third of it, every third round.
      if (round * weights[i]! < target[i]!) continue;
      target[i] += maxWeight;
      let slot = (offset[i]! + next[i]! * skip[i]!) % m;
      while (table[slot] !== -1) {
        next[i]++;
        slot = (offset[i]! + next[i]! * skip[i]!) % m;
      }
      table[slot] = i;
      next[i]++;
      filled++;
    }
  }
  return table;
}

export function maglev(t: LbTargets, keyOf: HashKeyFn, random: () => number, tableSize?: number): LoadBalancer {
  if (t.endpoints.length === 0) return emptyBalancer(MAGLEV);
  const table = buildMaglevTable(t.keys, t.weights, tableSize);
  const m = table.length;
  const { picks, endpoints } = t;
  return {
    algorithm: MAGLEV,
    pick(ctx): Pick | undefined {
      const key = keyOf(ctx);
      let slot = (key === undefined ? randomHash(random) : typeof key === 'number' ? key : key.hash) % m;
      const exclude = usableExclusion(ctx.exclude, endpoints);
      if (exclude) {
        for (let steps = 0; steps < m && exclude.has(endpoints[table[slot]!]!); steps++) slot = slot + 1 === m ? 0 : slot + 1;
      }
      const chosen = picks[table[slot]!]!;
      return typeof key === 'object' ? { endpoint: chosen.endpoint, setCookie: key.setCookie } : chosen;
    },
  };
}

function isPrime(x: number): boolean {
  if (x < 2) return false;
  if (x % 2 === 0) return x === 2;
  for (let d = 3; d * d <= x; d += 2) if (x % d === 0) return false;
  return true;
}
