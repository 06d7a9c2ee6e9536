// The default load balancer (UNSPECIFIED, LEAST_CONN, LEAST_REQUEST), as Envoy's least request works:
// with equal weights, two random choices and the one with fewer active requests wins; with unequal
// weights, a weighted choice where each weight is divided by (active requests + 1).

import type { EndpointLoad, LoadBalancer, PickContext } from './types.js';
import type { LbTargets } from './lb-endpoints.js';
import { allowedIndexes, emptyBalancer, usableExclusion } from './lb-endpoints.js';

export const LEAST_REQUEST = 'LEAST_REQUEST';

export function leastRequest(t: LbTargets, deps: { random: () => number; load: EndpointLoad }): LoadBalancer {
  const n = t.endpoints.length;
  if (n === 0) return emptyBalancer(LEAST_REQUEST);
  const { random, load } = deps;
  const { picks, keys, weights, endpoints } = t;
  // Scratch space for the weighted path, reused by every pick (picks never interleave).
  const effective = new Float64Array(n);

  const twoChoices = (indexes: readonly number[] | undefined) => {
    const size = indexes ? indexes.length : n;
    if (size === 1) return picks[indexes ? indexes[0]! : 0];
    let a = Math.floor(random() * size);
    let b = Math.floor(random() * size);
    if (indexes) {
      a = indexes[a]!;
      b = indexes[b]!;
    }
    // Ties keep the first choice, as Envoy does.
    return load.active(keys[b]!) < load.active(keys[a]!) ? picks[b] : picks[a];
  };

  const weighted = (ctx: PickContext) => {
    const exclude = usableExclusion(ctx.exclude, endpoints);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const w = exclude && exclude.has(endpoints[i]!) ? 0 : weights[i]! / (load.active(keys[i]!) + 1);
      effective[i] = w;
      total += w;
    }
    let r = random() * total;
    let last = -1;
    for (let i = 0; i < n; i++) {
      if (effective[i] === 0) continue;
      last = i;
      r -= effective[i]!;
      if (r < 0) return picks[i];
    }
    return last >= 0 ? picks[last] : undefined;
  };

  return {
    algorithm: LEAST_REQUEST,
    pick(ctx) {
      if (!t.equalWeights) return weighted(ctx);
      const exclude = usableExclusion(ctx.exclude, endpoints);
      return twoChoices(exclude ? allowedIndexes(endpoints, exclude) : undefined);
    },
  };
}
