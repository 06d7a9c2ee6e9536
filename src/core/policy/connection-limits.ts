// connectionLimits(): a DestinationRule's connectionPool block → the numbers one cluster runs with.
// Istio replaces Envoy's circuit-breaker defaults (1024 connections, 1024 pending, 1024 requests,
// 3 retries) with MaxUint32, and reads 0 as "use the default" (docs/concepts/resilience.md).
// Envoy counts a cluster's limits across all its worker threads. A gateway's `--workers` are
// processes that share no memory, and asking one place for every request would cost a round trip
// each, so each worker enforces its share instead: ceil(limit / workers), at least 1. The total the
// backend sees never exceeds the configured limit, except that a limit below the worker count
// becomes 1 per worker (a worker admitting nothing would fail all its traffic).

import cluster from 'node:cluster';
import { parseDuration } from '../config/duration.js';
import type { ConnectionPoolSettings } from '../model/istio.js';

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

/** Set by the gateway's primary for each worker it forks: how many workers share the limits. */
export const WORKER_COUNT_ENV = 'MESHGATE_WORKER_COUNT';

/** The number of processes this one shares its cluster limits with (1 outside `--workers`). */
export function workerCount(): number {
  const n = Number(process.env[WORKER_COUNT_ENV]);
  return cluster.isWorker && Number.isInteger(n) && n > 1 ? n : 1;
}

/**
 * The limits one process enforces. `workers`: how many processes share the configured totals; each
 * gets ceil(limit / workers) of the connection, pending, request and retry limits.
 */
export function connectionLimits(pool: ConnectionPoolSettings | undefined, workers = workerCount()): ConnectionLimits {
  if (!pool || typeof pool !== 'object') return DEFAULT_LIMITS;
  const tcp = pool.tcp ?? {};
  const http = pool.http ?? {};
  const connectTimeout = durationMs(tcp.connectTimeout);
  const idle = durationMs(http.idleTimeout);
  // Unset limits stay unset (2³²−1), so the fast paths for default limits still apply.
  const share = (v: unknown): number => {
    const n = count(v, MAX_UINT32);
    return n === MAX_UINT32 ? n : Math.max(1, Math.ceil(n / workers));
  };
  return Object.freeze({
    maxConnections: share(tcp.maxConnections),
    maxPendingRequests: share(http.http1MaxPendingRequests),
    maxRequests: share(http.http2MaxRequests),
    maxRetries: share(http.maxRetries),
    maxRequestsPerConnection: count(http.maxRequestsPerConnection, 0),
    connectTimeoutMs: connectTimeout !== undefined && connectTimeout > 0 ? connectTimeout : DEFAULT_CONNECT_TIMEOUT_MS,
    ...(idle !== undefined && idle > 0 ? { idleTimeoutMs: idle } : {}),
  });
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
