// A Snapshot is one frozen, complete view of the configuration for one proxy: registry, clusters,
// listeners and route configs. A request reads `holder.current()` once and uses only that object.

import type { Problem } from '../config/problem.js';
import type { Resource } from '../model/resource.js';
import type { Cluster } from '../policy/types.js';
import type { RateLimitTable } from '../policy/rate-limit-table.js';
import type { Registry } from '../registry/types.js';
import type { Listener, RouteConfig } from '../routing/types.js';

export interface Snapshot {
  /** Increases by one with every snapshot a holder accepts. */
  readonly version: number;
  readonly createdAt: Date;
  /** The valid resources it was built from. */
  readonly resources: readonly Resource[];
  readonly registry: Registry;
  /** Every cluster a route refers to, by name (`outbound|port|subset|host`). */
  readonly clusters: ReadonlyMap<string, Cluster>;
  readonly listeners: ReadonlyMap<number, Listener>;
  readonly routeConfigs: ReadonlyMap<string, RouteConfig>;
  /** Which RateLimitPolicy limits apply to each (virtual host, route). */
  readonly rateLimits: RateLimitTable;
  /** Problems found while building it (warnings, and errors of resources left out). */
  readonly problems: readonly Problem[];
}

/** What the proxy is: a gateway compiles the Gateway servers whose selector matches its labels. */
export interface GatewayRole {
  readonly kind: 'gateway';
  readonly labels: Readonly<Record<string, string>>;
  /** The proxy's own namespace (DestinationRule lookup starts there). */
  readonly namespace: string;
}

export type ProxyRole = GatewayRole;
