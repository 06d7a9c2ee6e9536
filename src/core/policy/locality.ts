// Locality-aware load balancing as Istio sets it up for Envoy: it arranges a cluster's endpoints in
// priorities (failover: same subzone → same zone → same region → failover target regions → the rest;
// or failoverPriority: the longest run of matching labels) or gives each locality a weight
// (distribute). Failover needs outlierDetection, without which nothing would ever fail over;
// distribute applies on its own. `enabled: false` turns all of it off. The proxy's own place (its
// locality and labels) is what endpoints are compared with.

import type { Labels, LocalityLbSetting } from '../model/istio.js';
import type { Endpoint } from '../registry/types.js';
import { REGION_LABEL, SUBZONE_LABEL, ZONE_LABEL } from '../registry/labels.js';

/** Where the proxy itself runs. */
export interface ProxyPlacement {
  /** `region/zone/subzone`, any part may be empty. */
  readonly locality: string;
  readonly labels: Labels;
}

export const NOWHERE: ProxyPlacement = Object.freeze({ locality: '', labels: Object.freeze({}) });

/** Endpoints of one locality (or of one whole priority when localities carry no weights). */
export interface LocalityGroup {
  readonly locality: string;
  /** Indexes into the cluster's endpoints. */
  readonly members: readonly number[];
  readonly weight: number;
}

export interface LocalityPlan {
  /** Priority 0 first; each priority lists its groups. */
  readonly priorities: ReadonlyArray<readonly LocalityGroup[]>;
  /** Groups carry locality weights (distribute): Envoy picks a locality first, then an endpoint. */
  readonly weighted: boolean;
}

export function localityPlan(endpoints: readonly Endpoint[], setting: LocalityLbSetting | undefined, hasOutlierDetection: boolean, proxy: ProxyPlacement): LocalityPlan {
  const all = endpoints.map((_, i) => i);
  const single: LocalityPlan = { priorities: [[{ locality: '*', members: all, weight: 1 }]], weighted: false };
  if (setting?.enabled === false) return single;
  const distribute = Array.isArray(setting?.distribute) ? setting.distribute : [];
  if (distribute.length > 0) return distributed(endpoints, distribute, proxy) ?? single;
  if (!hasOutlierDetection) return single;
  const labels = Array.isArray(setting?.failoverPriority) ? setting.failoverPriority.filter((l): l is string => typeof l === 'string') : [];
  const priorityOf =
    labels.length > 0 ? byLabels(labels, proxy) : byLocality(parseLocality(proxy.locality), Array.isArray(setting?.failover) ? setting.failover : []);
  const byPriority = new Map<number, number[]>();
  endpoints.forEach((e, i) => {
    const p = priorityOf(e);
    const list = byPriority.get(p);
    if (list) list.push(i);
    else byPriority.set(p, [i]);
  });
  // Envoy wants priorities 0..N without gaps.
  const priorities = [...byPriority.entries()].sort((a, b) => a[0] - b[0]).map(([p, members]) => [{ locality: `priority ${p}`, members, weight: 1 }]);
  return { priorities: priorities.length > 0 ? priorities : single.priorities, weighted: false };
}

interface Locality {
  readonly region: string;
  readonly zone: string;
  readonly subzone: string;
}

export function parseLocality(text: string): Locality {
  const [region = '', zone = '', subzone = ''] = text.split('/');
  return { region, zone, subzone };
}

/** Istio's LocalityMatch: `region[/zone[/subzone]]` with `*` for any part; missing parts match anything. */
export function localityMatches(l: Locality, pattern: string): boolean {
  const p = parseLocality(pattern);
  return (
    (p.region === '*' || p.region === l.region) &&
    (p.zone === '*' || p.zone === '' || p.zone === l.zone) &&
    (p.subzone === '*' || p.subzone === '' || p.subzone === l.subzone)
  );
}

function byLocality(proxy: Locality, failover: LocalityLbSetting['failover'] & object): (e: Endpoint) => number {
  const target = failover.find((f) => f?.from === proxy.region)?.to;
  const hasRule = failover.some((f) => f?.from === proxy.region);
  return (e) => {
    const l = parseLocality(e.locality);
    if (l.region !== proxy.region) {
      // Another region: the failover target (or any region when no rule names ours) before the rest.
      return hasRule && l.region !== target ? 4 : 3;
    }
    if (l.zone !== proxy.zone) return 2;
    return l.subzone === proxy.subzone ? 0 : 1;
  };
}

/** failoverPriority: an endpoint's priority is how many labels are left after the longest matching run. */
function byLabels(entries: readonly string[], proxy: ProxyPlacement): (e: Endpoint) => number {
  const proxyLabels = withTopology(proxy.labels, proxy.locality);
  const wanted = entries.map((entry) => {
    const eq = entry.indexOf('=');
    // `label=value` compares endpoints with that value instead of the proxy's own.
    return eq >= 0 ? { key: entry.slice(0, eq), value: entry.slice(eq + 1) } : { key: entry, value: proxyLabels[entry] };
  });
  return (e) => {
    const labels = withTopology(e.labels, e.locality);
    for (let i = 0; i < wanted.length; i++) {
      const w = wanted[i]!;
      if (w.value === undefined || labels[w.key] !== w.value) return wanted.length - i;
    }
    return 0;
  };
}

/** Labels plus the topology labels a locality implies, as Istio adds them to proxies and endpoints. */
function withTopology(labels: Labels, locality: string): Labels {
  const l = parseLocality(locality);
  return {
    ...(l.region ? { [REGION_LABEL]: l.region } : {}),
    ...(l.zone ? { [ZONE_LABEL]: l.zone } : {}),
    ...(l.subzone ? { [SUBZONE_LABEL]: l.subzone } : {}),
    ...labels,
  };
}

/**
 * distribute: the first rule whose `from` matches the proxy gives each `to` pattern its share, split
 * over the localities it matches by their endpoints' weights; localities no pattern matches get no
 * traffic. Undefined when no rule is for this proxy.
 */
function distributed(endpoints: readonly Endpoint[], rules: NonNullable<LocalityLbSetting['distribute']>, proxy: ProxyPlacement): LocalityPlan | undefined {
  const here = parseLocality(proxy.locality);
  const rule = rules.find((r) => typeof r?.from === 'string' && localityMatches(here, r.from));
  if (!rule?.to) return undefined;
  const byLocality = new Map<string, { members: number[]; weight: number }>();
  endpoints.forEach((e, i) => {
    const g = byLocality.get(e.locality) ?? { members: [], weight: 0 };
    g.members.push(i);
    g.weight += Number.isFinite(e.weight) && e.weight > 0 ? e.weight : 1;
    byLocality.set(e.locality, g);
  });
  const groups: LocalityGroup[] = [];
  const taken = new Set<string>();
  for (const [pattern, share] of Object.entries(rule.to)) {
    if (typeof share !== 'number' || share <= 0) continue;
    const matched = [...byLocality.entries()].filter(([loc]) => !taken.has(loc) && localityMatches(parseLocality(loc), pattern));
    const total = matched.reduce((sum, [, g]) => sum + g.weight, 0);
    for (const [loc, g] of matched) {
      taken.add(loc);
      groups.push({ locality: loc, members: g.members, weight: Math.ceil((g.weight * share) / total) });
    }
  }
  return { priorities: [groups], weighted: true };
}
