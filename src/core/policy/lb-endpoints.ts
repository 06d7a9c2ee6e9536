// What every load balancer precomputes from its endpoints: the ready ones only, their `address:port`
// keys for the live load counters, their weights, and a ready-made Pick per endpoint so that the
// per-request path allocates nothing. Also the retry exclusion rule shared by all algorithms.

import type { Endpoint, ServicePort } from '../registry/types.js';
import { endpointPort } from '../registry/types.js';
import type { LoadBalancer, Pick } from './types.js';

export interface LbTargets {
  readonly endpoints: readonly Endpoint[];
  readonly picks: readonly Pick[];
  /** `address:port`, the key of EndpointLoad. */
  readonly keys: readonly string[];
  readonly weights: readonly number[];
  readonly totalWeight: number;
  readonly equalWeights: boolean;
}

export function lbTargets(endpoints: readonly Endpoint[], port: ServicePort): LbTargets {
  const ready = endpoints.filter((e) => e.ready);
  const weights = ready.map((e) => (Number.isFinite(e.weight) && e.weight > 0 ? e.weight : 1));
  return {
    endpoints: ready,
    picks: ready.map((endpoint) => Object.freeze({ endpoint })),
    keys: ready.map((e) => endpointKey(e, port)),
    weights,
    totalWeight: weights.reduce((a, b) => a + b, 0),
    equalWeights: weights.every((w) => w === weights[0]),
  };
}

/** `address:port` (IPv6 in brackets, as UpstreamPools.key): the key of live per-endpoint state. */
export function endpointKey(e: Endpoint, port: ServicePort): string {
  const p = endpointPort(e, port);
  return e.address.includes(':') ? `[${e.address}]:${p}` : `${e.address}:${p}`;
}

/**
 * The endpoints a retry should avoid, or undefined when there is nothing to avoid — including when
 * every endpoint was already tried: then any endpoint is better than none.
 */
export function usableExclusion(exclude: ReadonlySet<Endpoint> | undefined, endpoints: readonly Endpoint[]): ReadonlySet<Endpoint> | undefined {
  if (!exclude || exclude.size === 0) return undefined;
  for (const e of endpoints) if (!exclude.has(e)) return exclude;
  return undefined;
}

/** Indexes of the endpoints not excluded; only built on retries. */
export function allowedIndexes(endpoints: readonly Endpoint[], exclude: ReadonlySet<Endpoint>): number[] {
  const out: number[] = [];
  for (let i = 0; i < endpoints.length; i++) if (!exclude.has(endpoints[i]!)) out.push(i);
  return out;
}

export function emptyBalancer(algorithm: string): LoadBalancer {
  return { algorithm, pick: () => undefined };
}
