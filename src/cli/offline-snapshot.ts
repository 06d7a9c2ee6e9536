// Builds a gateway (or, with `sidecar`, a sidecar) snapshot from a folder without serving it: what
// validate, routes and explain show.

import { loadConfigDir, type LoadResult } from '../core/config/load.js';
import { buildSnapshot, type BuildResult } from '../core/snapshot/build.js';
import type { ProxyRole } from '../core/snapshot/snapshot.js';
import { gatewayLabels, parseLabels } from './options.js';
import { readableConfigDir } from './config-source.js';

/** The build, and what was read (invalid resources too, which explain names). */
/**
 * `ports` (Gateway port → listen port, as `--ports` gives them): listeners are then keyed by the
 * port the gateway listens on, exactly as a running gateway's admin /routes prints them.
 */
export async function offlineSnapshot(dir: string, labels: Record<string, string>, namespace: string, ports?: ReadonlyMap<number, number>): Promise<BuildResult & { loaded: LoadResult }> {
  return offlineBuild(dir, { kind: 'gateway', labels, namespace, ...(ports ? { ports } : {}) });
}

/** `--sidecar`: the proxy of a workload in `--namespace` (default `default`) with `--labels`, as its outbound side routes. */
export function offlineRole(o: { sidecar?: boolean | undefined; labels?: string | undefined; namespace?: string | undefined; ports?: ReadonlyMap<number, number> | undefined }): ProxyRole {
  if (o.sidecar) return { kind: 'sidecar', namespace: o.namespace ?? 'default', labels: o.labels ? parseLabels(o.labels) : {}, serviceAccount: 'default', outboundTrafficPolicy: 'ALLOW_ANY' };
  return { kind: 'gateway', labels: gatewayLabels(o.labels), namespace: o.namespace ?? 'istio-system', ...(o.ports ? { ports: o.ports } : {}) };
}

export async function offlineBuild(dir: string, role: ProxyRole): Promise<BuildResult & { loaded: LoadResult }> {
  const loaded = await loadConfigDir(readableConfigDir(dir));
  // A fixed seed keeps tool output reproducible; nothing here picks endpoints.
  return { ...buildSnapshot(loaded, role, { random: () => 0.5, load: { active: () => 0 } }), loaded };
}
