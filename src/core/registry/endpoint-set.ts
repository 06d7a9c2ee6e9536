// Collects endpoints by address while a service's sources are read, so an address listed by several
// EndpointSlices (or Endpoints subsets, one per port set) becomes one endpoint with all its ports.
// One address whose sources disagree on a port's target is several endpoints (host-network pods,
// or several local processes on one loopback address), never one with a port silently lost.

import type { Labels } from '../model/istio.js';
import type { Endpoint } from './types.js';

export interface EndpointInput {
  readonly address: string;
  readonly ports: ReadonlyMap<number, number>;
  readonly labels: Labels;
  readonly locality: string;
  readonly weight?: number;
  readonly serviceAccount?: string;
  readonly namespace: string;
  readonly meshTls: boolean;
  readonly ready: boolean;
  readonly hostname?: string;
}

export class EndpointSet {
  readonly #byAddress = new Map<string, Array<{ input: EndpointInput; ports: Map<number, number> }>>();
  #size = 0;

  add(input: EndpointInput): void {
    const same = this.#byAddress.get(input.address) ?? [];
    this.#byAddress.set(input.address, same);
    const known = same.find((e) => [...input.ports].every(([service, target]) => (e.ports.get(service) ?? target) === target));
    if (!known) {
      same.push({ input, ports: new Map(input.ports) });
      this.#size++;
      return;
    }
    // The first source describes the endpoint; later ones may only add ports it did not list.
    for (const [service, target] of input.ports) if (!known.ports.has(service)) known.ports.set(service, target);
  }

  get size(): number {
    return this.#size;
  }

  /**
   * Endpoints whose ports read the same (in the same order) share one map: a service's endpoints
   * usually all have the same ports, and a map each was a tenth of the registry's memory.
   */
  toList(): Endpoint[] {
    const shared = new Map<string, ReadonlyMap<number, number>>();
    return [...this.#byAddress.values()].flat().map(({ input, ports }) => {
      const key = [...ports].join(';');
      let same = shared.get(key);
      if (!same) shared.set(key, (same = ports));
      return makeEndpoint({ ...input, ports: same });
    });
  }
}

export function makeEndpoint(input: EndpointInput): Endpoint {
  const weight = input.weight !== undefined && Number.isFinite(input.weight) && input.weight > 0 ? Math.floor(input.weight) || 1 : 1;
  return Object.freeze({
    address: input.address,
    ports: input.ports,
    labels: input.labels,
    locality: input.locality,
    weight,
    ...(input.serviceAccount ? { serviceAccount: input.serviceAccount } : {}),
    namespace: input.namespace,
    meshTls: input.meshTls,
    ready: input.ready,
    ...(input.hostname ? { hostname: input.hostname } : {}),
  });
}
