// Builds a gateway snapshot from a folder without serving it: what validate, routes and explain show.

import { loadConfigDir, type LoadResult } from '../core/config/load.js';
import { buildSnapshot, type BuildResult } from '../core/snapshot/build.js';
import { readableConfigDir } from './config-source.js';

/** The build, and what was read (invalid resources too, which explain names). */
export async function offlineSnapshot(dir: string, labels: Record<string, string>, namespace: string): Promise<BuildResult & { loaded: LoadResult }> {
  const loaded = await loadConfigDir(readableConfigDir(dir));
  // A fixed seed keeps tool output reproducible; nothing here picks endpoints.
  return { ...buildSnapshot(loaded, { kind: 'gateway', labels, namespace }, { random: () => 0.5, load: { active: () => 0 } }), loaded };
}
