// RANDOM: each pick independent, with probability proportional to the endpoint's weight (cumulative
// weights and a binary search, so the cost does not grow with the number of endpoints).

import type { LoadBalancer } from './types.js';
import type { LbTargets } from './lb-endpoints.js';
import { allowedIndexes, emptyBalancer, usableExclusion } from './lb-endpoints.js';

export const RANDOM = 'RANDOM';

export function randomBalancer(t: LbTargets, random: () => number): LoadBalancer {
  const n = t.endpoints.length;
  if (n === 0) return emptyBalancer(RANDOM);
  const { picks, endpoints, weights } = t;
  const cumulative = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) cumulative[i] = sum += weights[i]!;

  return {
    algorithm: RANDOM,
    pick(ctx) {
      const exclude = usableExclusion(ctx.exclude, endpoints);
      if (exclude) {
        // Retries only: a weighted choice among what is left.
        const allowed = allowedIndexes(endpoints, exclude);
        let total = 0;
        for (const i of allowed) total += weights[i]!;
        let r = random() * total;
        for (const i of allowed) if ((r -= weights[i]!) < 0) return picks[i];
        return picks[allowed[allowed.length - 1]!];
      }
      if (t.equalWeights) return picks[Math.floor(random() * n)];
      const r = random() * sum;
      let lo = 0;
      let hi = n - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (cumulative[mid]! > r) hi = mid;
        else lo = mid + 1;
      }
      return picks[lo];
    },
  };
}
