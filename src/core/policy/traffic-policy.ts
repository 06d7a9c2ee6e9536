// The traffic policy one cluster (service port × subset) runs with, after Istio's replacement rules
// (docs/concepts/resilience.md): a matching portLevelSettings entry replaces a policy wholesale for that port, and
// each block the subset sets replaces the destination's block — whole blocks, never field by field.

import type { ClientTlsSettings, ConnectionPoolSettings, LoadBalancerSettings, OutlierDetection, TrafficPolicy } from '../model/istio.js';
import type { MergedDestinationRule } from './destination-rules.js';
import type { EffectiveTrafficPolicy } from './types.js';

interface Blocks {
  loadBalancer?: LoadBalancerSettings;
  connectionPool?: ConnectionPoolSettings;
  outlierDetection?: OutlierDetection;
  tls?: ClientTlsSettings;
}

const BLOCKS = ['loadBalancer', 'connectionPool', 'outlierDetection', 'tls'] as const;

export function effectivePolicy(dr: MergedDestinationRule | undefined, subset: string, portNumber: number): EffectiveTrafficPolicy {
  if (!dr) return {};
  const destination = forPort(dr.trafficPolicy, portNumber);
  const subsetSpec = subset === '' ? undefined : dr.subsets.find((s) => s.name === subset);
  const subsetPolicy = subsetSpec?.trafficPolicy;
  const subsetSource = subsetSpec ? dr.subsetSources.get(subsetSpec.name) : undefined;

  if (!subsetPolicy) return result(destination?.blocks, dr.trafficPolicySource);
  const fromSubset = forPort(subsetPolicy, portNumber)!;
  if (!destination) return result(fromSubset.blocks, subsetSource);

  // A subset's own port-level entry stands for its whole policy on that port, unset blocks included.
  const out: Blocks = { ...destination.blocks };
  for (const b of BLOCKS) {
    if (fromSubset.blocks[b] !== undefined || fromSubset.portLevel) assign(out, b, fromSubset.blocks[b]);
  }
  const source = BLOCKS.some((b) => fromSubset.blocks[b] !== undefined) ? subsetSource : dr.trafficPolicySource;
  return result(out, source);
}

/** The policy for one port: the matching portLevelSettings entry alone, or else the top level. */
function forPort(policy: TrafficPolicy | undefined, port: number): { blocks: Blocks; portLevel: boolean } | undefined {
  if (!policy) return undefined;
  const levels = Array.isArray(policy.portLevelSettings) ? policy.portLevelSettings : [];
  const entry = levels.find((p) => p?.port?.number === port);
  const source = entry ?? policy;
  const blocks: Blocks = {};
  for (const b of BLOCKS) assign(blocks, b, source[b]);
  return { blocks, portLevel: entry !== undefined };
}

function assign<K extends keyof Blocks>(target: Blocks, key: K, value: Blocks[K]): void {
  // YAML's `tls: ~` means the same as leaving the block out.
  if (value === undefined || value === null) delete target[key];
  else target[key] = value;
}

function result(blocks: Blocks | undefined, source: string | undefined): EffectiveTrafficPolicy {
  if (!blocks) return {};
  const out: EffectiveTrafficPolicy = { ...blocks };
  return source !== undefined ? { ...out, source } : out;
}
