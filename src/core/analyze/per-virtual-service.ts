// Findings about one VirtualService kept across runs. Most analyzers judge each VirtualService
// against the rest of the configuration (the registry, DestinationRules, Gateways), never against
// the other VirtualServices; while nothing but VirtualServices changed since the last run, a
// VirtualService that is the very same object gives the very same findings. At 10,000 services an
// edit of one route then checks that route's VirtualService and probes the others, instead of
// looking up every destination of every route again.

import type { Problem } from '../config/problem.js';
import type { Resource } from '../model/resource.js';
import { sameItems } from '../registry/kube-services.js';
import type { Registry } from '../registry/types.js';
import type { AnalysisOptions } from './context.js';

/**
 * What a per-VirtualService finding may depend on besides its VirtualService: every other resource
 * (as objects, in order), the registry built from them and the options. The same object while all of
 * these are the same.
 */
export interface World {
  readonly others: readonly Resource[];
  readonly registry: Registry;
  readonly domain: string;
  readonly gatewayLabels: readonly unknown[];
  readonly credentialExists: AnalysisOptions['credentialExists'];
}

/** The last world seen: one slot, as one process analyzes one configuration over time. */
let last: World | undefined;

export function worldOf(resources: readonly Resource[], registry: Registry, domain: string, options: AnalysisOptions): World {
  const now: World = {
    others: resources.filter((r) => r.kind !== 'VirtualService'),
    registry,
    domain,
    gatewayLabels: options.gatewayLabels ?? [],
    credentialExists: options.credentialExists,
  };
  const same =
    last !== undefined &&
    last.registry === now.registry &&
    last.domain === now.domain &&
    last.credentialExists === now.credentialExists &&
    sameItems(last.gatewayLabels, now.gatewayLabels) &&
    sameItems(last.others, now.others);
  if (!same) last = now;
  return last!;
}

/** By analyzer, then by VirtualService object (weak: the findings go with the resource). */
const kept = new Map<string, WeakMap<Resource, { readonly world: World; readonly findings: readonly Problem[] }>>();

/** `check()`'s findings about `vs` for analyzer `name`, from the last run if `world` is the same. */
export function perVirtualService(name: string, vs: Resource, world: World, check: () => Problem[]): readonly Problem[] {
  let byResource = kept.get(name);
  if (!byResource) kept.set(name, (byResource = new WeakMap()));
  const known = byResource.get(vs);
  if (known && known.world === world) return known.findings;
  const findings = check();
  byResource.set(vs, { world, findings });
  return findings;
}
