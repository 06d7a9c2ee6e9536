// The ConfigSource contract: something that emits the whole current resource set whenever it
// changes (a folder, the Kubernetes API, a control plane). Consumers rebuild from whole sets.

import type { LoadResult } from '../config/load.js';
import type { Problem } from '../config/problem.js';
import type { Resource } from '../model/resource.js';

/** What became of one update: applied, or refused as a whole with the errors that refused it. */
export type ConfigOutcome = { readonly accepted: true } | { readonly accepted: false; readonly problems: readonly Problem[] };

export interface ConfigUpdate extends LoadResult {
  /** Set when the source itself failed (folder gone, API unreachable); the last snapshot keeps serving. */
  readonly error?: Error;
  /**
   * Set by a source that reports back what its consumer did with the set (a control plane wants to
   * know which proxies run which version). Its presence also changes the rule: a set that builds
   * with errors is refused as a whole instead of being applied in part, because the sender already
   * validated it and an error here means the two sides disagree.
   */
  readonly acknowledge?: (outcome: ConfigOutcome) => void;
  /**
   * Set when the source knows what changed since its previous update (a control plane's delta):
   * the resources added or changed, and the keys (`Kind/namespace/name`) of those removed. Every
   * resource not named here is the very same object as in the previous update, so a consumer can
   * rebuild only what depends on these. `resources` is still the whole set.
   */
  readonly changed?: { readonly updated: readonly Resource[]; readonly removed: readonly string[] };
}

export interface ConfigSource {
  readonly description: string;
  /** Resolves after the first update has been delivered. */
  start(onUpdate: (update: ConfigUpdate) => void): Promise<void>;
  close(): Promise<void>;
  destroy(): void;
}
