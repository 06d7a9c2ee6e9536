// The ConfigSource contract: something that emits the whole current resource set whenever it
// changes (a folder, the Kubernetes API, a control plane). Consumers rebuild from whole sets.

import type { LoadResult } from '../config/load.js';

export interface ConfigUpdate extends LoadResult {
  /** Set when the source itself failed (folder gone, API unreachable); the last snapshot keeps serving. */
  readonly error?: Error;
}

export interface ConfigSource {
  readonly description: string;
  /** Resolves after the first update has been delivered. */
  start(onUpdate: (update: ConfigUpdate) => void): Promise<void>;
  close(): Promise<void>;
  destroy(): void;
}
