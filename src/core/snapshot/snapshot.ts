// A Snapshot is one frozen, complete view of the configuration for one proxy: registry, clusters,
// listeners and route configs, compiled for its role (a gateway or a sidecar). A request reads
// `holder.current()` once and uses only that object.

import type { OutboundTrafficMode } from '../policy/sidecar-scope.js';
import type { Problem } from '../config/problem.js';
import type { Resource } from '../model/resource.js';
import type { Cluster } from '../policy/types.js';
import type { RateLimitTable } from '../policy/rate-limit-table.js';
import type { Registry } from '../registry/types.js';
import type { Listener, RouteConfig } from '../routing/types.js';
import type { GatewayApiStatus } from '../gateway-api/conditions.js';
import type { MeshTcpTable } from '../routing/mesh-tcp-routes.js';
import type { AllocatedAddresses } from '../registry/auto-allocate.js';
import type { ExtAuthzProviders } from '../policy/ext-authz-providers.js';

export interface Snapshot {
  /** Increases by one with every snapshot a holder accepts. */
  readonly version: number;
  readonly createdAt: Date;
  /** The valid resources it was built from. */
  readonly resources: readonly Resource[];
  readonly registry: Registry;
  /** Every cluster a route refers to, by name (`outbound|port|subset|host`). */
  readonly clusters: ReadonlyMap<string, Cluster>;
  /** Gateway listeners by listen port (the Gateway port when the role maps no ports); empty for a sidecar. */
  readonly listeners: ReadonlyMap<number, Listener>;
  /**
   * Gateway: `http.<port>` and `https.<port>.<portName>.<gw>.<ns>`. Sidecar: one outbound route config
   * per service port, named by the number as Istio names them (`80`, `9080`).
   */
  readonly routeConfigs: ReadonlyMap<string, RouteConfig>;
  /** Sidecar: where a TCP connection to a mesh service port goes (routing/mesh-tcp-routes.ts); absent for gateways. */
  readonly meshTcp?: MeshTcpTable;
  /** Sidecar with `dnsAutoAllocate`: the addresses given to ServiceEntries that declare none, by host. */
  readonly autoAllocated?: AllocatedAddresses;
  /** The role it was compiled for. */
  readonly role: ProxyRole;
  /** Which RateLimitPolicy limits apply to each (virtual host, route). */
  readonly rateLimits: RateLimitTable;
  /** The mesh config's `connectTimeout` in ms (policy/connection-limits.ts: connectTimeoutFor); absent: 10 s. */
  readonly connectTimeoutMs?: number;
  /** The mesh config's external authorizers (CUSTOM policies name them), their clusters resolved; none when absent. */
  readonly extAuthz?: ExtAuthzProviders;
  /**
   * Problems found while building it (warnings, and errors of resources left out), then, for a
   * gateway, the analyzers' findings (a sidecar's control plane analyzes instead). The findings are
   * computed on the first read of this field (the Reloader reads it just after the swap), so that the
   * analyzers are not on the way to serving.
   */
  readonly problems: readonly Problem[];
  /** Gateway API status of the Gateways this gateway serves and the routes attached to them. */
  readonly gatewayApi: GatewayApiStatus;
}

/** What the proxy is: a gateway compiles the Gateway servers whose selector matches its labels. */
export interface GatewayRole {
  readonly kind: 'gateway';
  readonly labels: Readonly<Record<string, string>>;
  /** The proxy's own namespace (DestinationRule lookup starts there). */
  readonly namespace: string;
  /** Where the proxy runs, `region/zone/subzone`: locality-aware load balancing prefers endpoints near it. */
  readonly locality?: string;
  /**
   * The gateway Service's ports, port → targetPort (`--ports`): Istio's port translation. A server
   * port not in it is listened on as-is.
   */
  readonly ports?: ReadonlyMap<number, number>;
  /** Gateway API Gateways to serve (`ns/name`); undefined: every Gateway of meshgate's classes. */
  readonly gatewayNames?: ReadonlySet<string>;
}

/** A sidecar compiles the outbound (mesh) routes its workload sees from its namespace. */
export interface SidecarRole {
  readonly kind: 'sidecar';
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly serviceAccount: string;
  /**
   * `--outbound-traffic-policy`: the mode when neither a Sidecar resource nor the mesh config sets
   * one (policy/outbound-traffic-policy.ts); default ALLOW_ANY.
   */
  readonly outboundTrafficPolicy: OutboundTrafficMode;
  /** Where the workload runs, `region/zone/subzone`, for locality-aware load balancing. */
  readonly locality?: string;
  /**
   * ISTIO_META_DNS_AUTO_ALLOCATE: ServiceEntries without addresses get one (registry/auto-allocate.ts),
   * which the sidecar's DNS answers with and its captured TCP is matched by.
   */
  readonly dnsAutoAllocate?: boolean;
}

export type ProxyRole = GatewayRole | SidecarRole;
