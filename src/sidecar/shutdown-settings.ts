// How an injected sidecar learns its shutdown from the pod, the way Istio's agent does: injection
// writes the pod's ProxyConfig (the `proxy.istio.io/config` annotation over the mesh config's
// `defaultConfig`) into the env var PROXY_CONFIG as JSON, and each `proxyMetadata` entry as an env var
// of its own. What the sidecar reads of them:
//   PROXY_CONFIG.terminationDrainDuration  the drain period on SIGTERM (Istio's default 5s);
//   EXIT_ON_ZERO_ACTIVE_CONNECTIONS=true   on SIGTERM, drain at least MINIMUM_DRAIN_DURATION (default
//                                          5s), then stop once no connection is active, not after a
//                                          fixed period;
// `--drain-seconds` on the command line wins over PROXY_CONFIG. A value that cannot be read is a
// problem the sidecar logs, and the default holds.

import { parseDuration } from '../core/config/duration.js';

export const PROXY_CONFIG_ENV = 'PROXY_CONFIG';
export const EXIT_ON_ZERO_ENV = 'EXIT_ON_ZERO_ACTIVE_CONNECTIONS';
export const MINIMUM_DRAIN_ENV = 'MINIMUM_DRAIN_DURATION';
/** Istio's MINIMUM_DRAIN_DURATION default. */
export const DEFAULT_MINIMUM_DRAIN_SECONDS = 5;

export interface ShutdownEnv {
  /** PROXY_CONFIG's terminationDrainDuration in seconds, when it names one. */
  readonly terminationDrainSeconds?: number;
  readonly exitOnZeroActiveConnections: boolean;
  readonly minimumDrainSeconds: number;
  readonly problems: readonly string[];
}

export function readShutdownEnv(env: Readonly<Record<string, string | undefined>>): ShutdownEnv {
  const problems: string[] = [];
  const seconds = (text: unknown, what: string): number | undefined => {
    const ms = typeof text === 'string' ? parseDuration(text) : undefined;
    if (ms === undefined || ms < 0) {
      problems.push(`${what}: '${String(text)}' is not a duration (e.g. 5s, 1m30s)`);
      return undefined;
    }
    return ms / 1000;
  };
  let terminationDrainSeconds: number | undefined;
  const text = env[PROXY_CONFIG_ENV];
  if (text !== undefined && text.trim() !== '') {
    let config: unknown;
    try {
      config = JSON.parse(text);
    } catch (err) {
      problems.push(`${PROXY_CONFIG_ENV} is not JSON: ${(err as Error).message}`);
    }
    const drain = (config as Record<string, unknown> | null | undefined)?.['terminationDrainDuration'];
    if (drain !== undefined) terminationDrainSeconds = seconds(drain, `${PROXY_CONFIG_ENV} terminationDrainDuration`);
  }
  const exit = env[EXIT_ON_ZERO_ENV];
  const exitOnZeroActiveConnections = exit !== undefined && ['true', '1', 't', 'TRUE', 'True'].includes(exit.trim());
  const min = env[MINIMUM_DRAIN_ENV];
  const minimumDrainSeconds = (min !== undefined && min.trim() !== '' ? seconds(min.trim(), MINIMUM_DRAIN_ENV) : undefined) ?? DEFAULT_MINIMUM_DRAIN_SECONDS;
  return { ...(terminationDrainSeconds !== undefined ? { terminationDrainSeconds } : {}), exitOnZeroActiveConnections, minimumDrainSeconds, problems };
}
