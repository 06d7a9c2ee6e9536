// The health-aware layer above every load-balancing algorithm, following Envoy: endpoints ejected by
// outlier detection are not picked; traffic goes to priority 0 while it is healthy enough and spills
// to the next priorities as its endpoints are ejected (each priority's health is its healthy share
// × 1.4, Envoy's overprovisioning factor); with locality weights (distribute) a locality is chosen
// first, its weight scaled by its own health. A priority below minHealthPercent healthy is in panic
// and uses all of its endpoints. The inner balancers are rebuilt only when the ejected set changes.

import type { Endpoint } from '../registry/types.js';
import type { LocalityGroup, LocalityPlan } from './locality.js';
import type { LoadBalancer, Pick, PickContext } from './types.js';

const OVERPROVISIONING = 140;

export interface EndpointHealth {
  /** Changes whenever the answer of `isEjected` may have changed. */
  readonly version: number;
  isEjected(key: string): boolean;
}

export interface PriorityBalancerOptions {
  readonly endpoints: readonly Endpoint[];
  /** `address:port` per endpoint, the key health is kept under. */
  readonly keys: readonly string[];
  readonly plan: LocalityPlan;
  /** Absent without outlier detection: every endpoint is healthy. */
  readonly health?: EndpointHealth;
  /** Envoy's healthy panic threshold, in percent (Istio: minHealthPercent, default 0 = never). */
  readonly panicThreshold: number;
  readonly algorithm: string;
  readonly random: () => number;
  /** The algorithm over a set of endpoints. */
  build(endpoints: readonly Endpoint[]): LoadBalancer;
}

interface Level {
  /** Percent of traffic (0..100). */
  readonly load: number;
  readonly groups: ReadonlyArray<{ readonly lb: LoadBalancer; readonly weight: number }>;
  readonly totalWeight: number;
}

export function priorityBalancer(o: PriorityBalancerOptions): LoadBalancer {
  let version = -1;
  let levels: readonly Level[] = [];

  const rebuild = (): void => {
    const ejected = (i: number): boolean => o.health?.isEjected(o.keys[i]!) ?? false;
    const stats = o.plan.priorities.map((groups) => {
      const total = groups.reduce((n, g) => n + g.members.length, 0);
      const healthy = groups.reduce((n, g) => n + g.members.filter((i) => !ejected(i)).length, 0);
      return { total, healthy, health: total === 0 ? 0 : Math.min(100, Math.floor((OVERPROVISIONING * healthy) / total)) };
    });
    const loads = priorityLoads(stats, o.panicThreshold);
    levels = o.plan.priorities.map((groups, p) => {
      const panic = loads.panic[p]!;
      const built = groups.map((g) => group(g, panic, ejected));
      return { load: loads.load[p]!, groups: built, totalWeight: built.reduce((n, g) => n + g.weight, 0) };
    });
  };

  const group = (g: LocalityGroup, panic: boolean, ejected: (i: number) => boolean) => {
    const members = panic ? g.members : g.members.filter((i) => !ejected(i));
    let weight = o.plan.weighted ? g.weight : 1;
    // A locality's weight shrinks with its health, as Envoy's locality-weighted balancing does.
    if (o.plan.weighted && !panic) weight = g.members.length === 0 ? 0 : (weight * Math.min(100, (OVERPROVISIONING * members.length) / g.members.length)) / 100;
    return { lb: o.build(members.map((i) => o.endpoints[i]!)), weight: members.length > 0 ? weight : 0 };
  };

  const pickLevel = (): Level | undefined => {
    if (levels.length === 1) return levels[0];
    let r = o.random() * 100;
    let last: Level | undefined;
    for (const l of levels) {
      if (l.load <= 0) continue;
      last = l;
      r -= l.load;
      if (r < 0) return l;
    }
    return last;
  };

  return {
    algorithm: o.algorithm,
    pick(ctx: PickContext): Pick | undefined {
      const v = o.health?.version ?? 0;
      if (v !== version) {
        rebuild();
        version = v;
      }
      const level = pickLevel();
      if (!level) return undefined;
      if (level.groups.length === 1) return level.groups[0]!.lb.pick(ctx);
      if (level.totalWeight <= 0) return undefined;
      let r = o.random() * level.totalWeight;
      for (const g of level.groups) {
        if (g.weight <= 0) continue;
        r -= g.weight;
        if (r < 0) return g.lb.pick(ctx);
      }
      return level.groups.findLast((g) => g.weight > 0)?.lb.pick(ctx);
    },
  };
}

/**
 * Envoy's split of traffic over priorities: each takes up to its health (normalised when the health
 * of all of them adds up to less than 100), the first with any health takes what is left over, and a
 * priority whose healthy share is under the panic threshold ignores health. With nothing healthy
 * anywhere and a threshold above 0, all priorities panic and share by endpoint count.
 */
export function priorityLoads(stats: ReadonlyArray<{ total: number; healthy: number; health: number }>, panicThreshold: number): { load: number[]; panic: boolean[] } {
  const n = stats.length;
  const panic = stats.map((s) => panicThreshold > 0 && (s.total === 0 ? 0 : (100 * s.healthy) / s.total) < panicThreshold);
  const load = new Array<number>(n).fill(0);
  const normalizedTotal = Math.min(100, stats.reduce((sum, s) => sum + s.health, 0));
  if (normalizedTotal === 0) {
    if (panicThreshold > 0) {
      const hosts = stats.reduce((sum, s) => sum + s.total, 0);
      let left = 100;
      let first = -1;
      stats.forEach((s, i) => {
        load[i] = hosts === 0 ? 0 : Math.floor((100 * s.total) / hosts);
        left -= load[i]!;
        if (first < 0 && s.total > 0) first = i;
      });
      if (first >= 0) load[first]! += left;
      return { load, panic: stats.map(() => true) };
    }
    if (n > 0) load[0] = 100;
    return { load, panic };
  }
  let left = 100;
  let first = -1;
  stats.forEach((s, i) => {
    if (first < 0 && s.health > 0) first = i;
    load[i] = Math.min(left, Math.floor((s.health * 100) / normalizedTotal));
    left -= load[i]!;
  });
  if (first >= 0) load[first]! += left;
  return { load, panic };
}
