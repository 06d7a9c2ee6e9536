// ROUND_ROBIN: a plain rotation when weights are equal, and smooth weighted round robin otherwise
// (each endpoint gains its weight every turn, the richest is chosen and pays the total), which spreads
// a heavy endpoint's turns evenly instead of in bursts.

import type { LoadBalancer } from './types.js';
import type { LbTargets } from './lb-endpoints.js';
import { emptyBalancer, usableExclusion } from './lb-endpoints.js';

export const ROUND_ROBIN = 'ROUND_ROBIN';

export function roundRobin(t: LbTargets, random: () => number): LoadBalancer {
  const n = t.endpoints.length;
  if (n === 0) return emptyBalancer(ROUND_ROBIN);
  const { picks, endpoints, weights } = t;

  if (t.equalWeights) {
    // A random start keeps every snapshot rebuild from sending its first request to the same endpoint.
    let next = Math.floor(random() * n) % n;
    return {
      algorithm: ROUND_ROBIN,
      pick(ctx) {
        const exclude = usableExclusion(ctx.exclude, endpoints);
        for (let tries = 0; tries < n; tries++) {
          const i = next;
          next = next + 1 === n ? 0 : next + 1;
          if (!exclude || !exclude.has(endpoints[i]!)) return picks[i];
        }
        return picks[next];
      },
    };
  }

  const current = new Float64Array(n);
  return {
    algorithm: ROUND_ROBIN,
    pick(ctx) {
      const exclude = usableExclusion(ctx.exclude, endpoints);
      let best = -1;
      let total = 0;
      for (let i = 0; i < n; i++) {
        if (exclude && exclude.has(endpoints[i]!)) continue;
        current[i] += weights[i]!;
        total += weights[i]!;
        if (best < 0 || current[i]! > current[best]!) best = i;
      }
      current[best] -= total;
      return picks[best];
    },
  };
}
