// Builds a gateway snapshot from a folder without serving it: what validate, routes and explain show.

import { loadConfigDir, type LoadResult } from '../core/config/load.js';
import { buildSnapshot, type BuildResult } from '../core/snapshot/build.js';
import { readableConfigDir } from './config-source.js';

/** The build, and what was read (invalid resources too, which explain names). */
/**
 * `ports` (Gateway port → listen port, as `--ports` gives them): listeners are then keyed by the
 * port the gateway listens on, exactly as a running gateway's admin /routes prints them.
 */
export async function offlineSnapshot(dir: string, labels: Record<string, string>, namespace: string, ports?: ReadonlyMap<number, number>): Promise<BuildResult & { loaded: LoadResult }> {
  const loaded = await loadConfigDir(readableConfigDir(dir));
  // A fixed seed keeps tool output reproducible; nothing here picks endpoints.
  return { ...buildSnapshot(loaded, { kind: 'gateway', labels, namespace, ...(ports ? { ports } : {}) }, { random: () => 0.5, load: { active: () => 0 } }), loaded };
}
