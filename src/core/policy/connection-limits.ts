// connectionLimits(): a DestinationRule's connectionPool block → the numbers one cluster runs with.
// Istio replaces Envoy's circuit-breaker defaults (1024 connections, 1024 pending, 1024 requests,
// 3 retries) with MaxUint32, and reads 0 as "use the default" (docs/concepts/resilience.md).
// Envoy counts a cluster's limits across all its worker threads; a gateway's `--workers` do the same
// through counters the primary keeps (core/runtime/worker-breakers.ts), so these are the totals.
// The connect timeout is the rule's `tcp.connectTimeout`, else the mesh config's `connectTimeout`
// (10 s unless set), as Istio fills every cluster's connect_timeout; connectTimeoutFor() is the one
// answer for every connection the proxy opens, the PassthroughCluster and the sidecar's app included.

import { parseDuration } from '../config/duration.js';
import type { ConnectionPoolSettings } from '../model/istio.js';
import type { Snapshot } from '../snapshot/snapshot.js';
import type { Cluster } from './types.js';

export const MAX_UINT32 = 4_294_967_295;

/** Istio's meshConfig.connectTimeout default. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

export interface ConnectionLimits {
  /** tcp.maxConnections: connections to all endpoints of the cluster together. */
  readonly maxConnections: number;
  /** http.http1MaxPendingRequests: requests waiting for a connection. */
  readonly maxPendingRequests: number;
  /** http.http2MaxRequests: requests in flight to the cluster (any protocol, as Envoy's max_requests). */
  readonly maxRequests: number;
  /** http.maxRetries: retries in flight to the cluster. */
  readonly maxRetries: number;
  /** http.maxRequestsPerConnection: 0 = unlimited, 1 = no keep-alive. */
  readonly maxRequestsPerConnection: number;
  readonly connectTimeoutMs: number;
  /** http.idleTimeout: how long an idle upstream connection is kept; undefined = the pools' default. */
  readonly idleTimeoutMs?: number;
}

export const DEFAULT_LIMITS: ConnectionLimits = Object.freeze({
  maxConnections: MAX_UINT32,
  maxPendingRequests: MAX_UINT32,
  maxRequests: MAX_UINT32,
  maxRetries: MAX_UINT32,
  maxRequestsPerConnection: 0,
  connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
});

/**
 * The limits of one cluster, for the proxy as a whole; `meshConnectTimeoutMs` is the mesh config's
 * connectTimeout, which a rule without its own keeps.
 */
export function connectionLimits(pool: ConnectionPoolSettings | undefined, meshConnectTimeoutMs = DEFAULT_CONNECT_TIMEOUT_MS): ConnectionLimits {
  if (!pool || typeof pool !== 'object') return limitsWithConnectTimeout(meshConnectTimeoutMs);
  const tcp = pool.tcp ?? {};
  const http = pool.http ?? {};
  const connectTimeout = durationMs(tcp.connectTimeout);
  const idle = durationMs(http.idleTimeout);
  // Unset limits stay unset (2³²−1), so the fast paths for default limits still apply.
  const limit = (v: unknown): number => count(v, MAX_UINT32);
  return Object.freeze({
    maxConnections: limit(tcp.maxConnections),
    maxPendingRequests: limit(http.http1MaxPendingRequests),
    maxRequests: limit(http.http2MaxRequests),
    maxRetries: limit(http.maxRetries),
    maxRequestsPerConnection: count(http.maxRequestsPerConnection, 0),
    connectTimeoutMs: connectTimeout !== undefined && connectTimeout > 0 ? connectTimeout : meshConnectTimeoutMs,
    ...(idle !== undefined && idle > 0 ? { idleTimeoutMs: idle } : {}),
  });
}

const withTimeout = new Map<number, ConnectionLimits>([[DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_LIMITS]]);

/**
 * The default limits with another connect timeout: what a connection no rule describes gets (the
 * PassthroughCluster, a sidecar's own app) under a mesh config that sets connectTimeout. One object
 * per value, so pools keyed by limits see the same settings as the same.
 */
export function limitsWithConnectTimeout(ms: number): ConnectionLimits {
  let l = withTimeout.get(ms);
  if (!l) withTimeout.set(ms, (l = Object.freeze({ ...DEFAULT_LIMITS, connectTimeoutMs: ms })));
  return l;
}

/** The mesh config's `connectTimeout` (a duration such as `10s`): 10 s when unset, zero or unreadable. */
export function meshConnectTimeoutMs(mesh: Readonly<Record<string, unknown>> | undefined): number {
  const ms = durationMs(mesh?.['connectTimeout']);
  return ms !== undefined && ms > 0 ? ms : DEFAULT_CONNECT_TIMEOUT_MS;
}

/**
 * How long a connection the proxy opens may take to be made: its cluster's (the DestinationRule's,
 * else the mesh's), else, for a destination no cluster describes, the mesh config's connectTimeout.
 */
export function connectTimeoutFor(snapshot: Snapshot | undefined, cluster?: Cluster): number {
  return cluster?.traffic?.limits.connectTimeoutMs ?? snapshot?.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
}

/** True when some counted limit is finite: only then must `--workers` count it in one place. */
export function hasFiniteLimits(l: ConnectionLimits): boolean {
  return l.maxConnections < MAX_UINT32 || l.maxPendingRequests < MAX_UINT32 || l.maxRequests < MAX_UINT32 || l.maxRetries < MAX_UINT32;
}

/** True when nothing differs from the defaults, so pools and gates can take their fast paths. */
export function isDefaultLimits(l: ConnectionLimits): boolean {
  return (
    l.maxConnections === MAX_UINT32 &&
    l.maxPendingRequests === MAX_UINT32 &&
    l.maxRequests === MAX_UINT32 &&
    l.maxRetries === MAX_UINT32 &&
    l.maxRequestsPerConnection === 0 &&
    l.connectTimeoutMs === DEFAULT_CONNECT_TIMEOUT_MS &&
    l.idleTimeoutMs === undefined
  );
}

function count(v: unknown, fallback: number): number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? Math.min(v, MAX_UINT32) : fallback;
}

function durationMs(v: unknown): number | undefined {
  return typeof v === 'string' ? parseDuration(v) : undefined;
}
