// Outlier detection for one cluster, as Envoy runs it with the settings Istio gives it (docs/concepts/resilience.md):
// consecutive 5xx / gateway errors (and, when split, local-origin failures) eject an endpoint at once;
// it returns at the first interval tick after baseEjectionTime × (times ejected), capped at 300 s
// (or baseEjectionTime if longer), and the multiplier decays by one per healthy interval. At most
// maxEjectionPercent of the cluster is ejected, but always at least one endpoint. Time comes from an
// injected clock and is read lazily (no timers), so tests are exact. The state lives outside
// snapshots, one detector per cluster name.

import { parseDuration } from '../config/duration.js';
import type { OutlierDetection } from '../model/istio.js';

export interface OutlierSettings {
  /** Consecutive 5xx (502/503/504 and, unless split, local-origin failures included); 0 = not enforced. */
  readonly consecutive5xx: number;
  /** Consecutive 502/503/504 (and, unless split, local-origin failures); 0 = not enforced. */
  readonly consecutiveGateway: number;
  /** With splitExternalLocalOriginErrors: consecutive connect failures, resets and timeouts; 0 = not enforced. */
  readonly consecutiveLocalOrigin: number;
  readonly splitLocalOrigin: boolean;
  readonly intervalMs: number;
  readonly baseEjectionMs: number;
  /** Envoy's max_ejection_time default (300 s), never below the base. */
  readonly maxEjectionMs: number;
  readonly maxEjectionPercent: number;
  /** Envoy's healthy panic threshold: below this share of healthy endpoints, health is ignored. */
  readonly minHealthPercent: number;
}

const ENVOY_MAX_EJECTION_MS = 300_000;

/** The settings Istio hands Envoy for an outlierDetection block; undefined when there is none. */
export function outlierSettings(o: OutlierDetection | undefined): OutlierSettings | undefined {
  if (!o || typeof o !== 'object') return undefined;
  let consecutive5xx = 5;
  let consecutiveGateway = 0;
  // The deprecated field means gateway errors only (istio/api#617).
  if (positive(o.consecutiveErrors)) {
    consecutiveGateway = o.consecutiveErrors as number;
    consecutive5xx = 0;
  }
  if (isCount(o.consecutive5xxErrors)) consecutive5xx = o.consecutive5xxErrors as number;
  if (isCount(o.consecutiveGatewayErrors)) consecutiveGateway = o.consecutiveGatewayErrors as number;
  const split = o.splitExternalLocalOriginErrors === true;
  const base = durationMs(o.baseEjectionTime) ?? 30_000;
  return Object.freeze({
    consecutive5xx,
    consecutiveGateway,
    consecutiveLocalOrigin: split ? (positive(o.consecutiveLocalOriginFailures) ? (o.consecutiveLocalOriginFailures as number) : 5) : 0,
    splitLocalOrigin: split,
    intervalMs: durationMs(o.interval) ?? 10_000,
    baseEjectionMs: base,
    maxEjectionMs: Math.max(base, ENVOY_MAX_EJECTION_MS),
    // Istio leaves 0 to Envoy's default of 10 %.
    maxEjectionPercent: positive(o.maxEjectionPercent) ? Math.min(100, o.maxEjectionPercent as number) : 10,
    minHealthPercent: isCount(o.minHealthPercent) ? Math.min(100, o.minHealthPercent as number) : 0,
  });
}

/** What one attempt came to: the upstream's status, or a failure that happened on our side of the wire. */
export type AttemptResult = number | 'connect-failure' | 'reset' | 'timeout';

export interface HostOutlierStatus {
  readonly ejected: boolean;
  /** When an ejected endpoint returns (epoch ms of the injected clock). */
  readonly ejectedUntil?: number;
  /** Times ejected since the proxy started. */
  readonly ejections: number;
  readonly consecutive5xx: number;
  readonly consecutiveGatewayErrors: number;
  readonly consecutiveLocalOriginFailures: number;
}

interface HostState {
  c5xx: number;
  cGateway: number;
  cLocal: number;
  /** Set while ejected. */
  returnsAt: number | undefined;
  /** The multiplier of the base ejection time. */
  backoff: number;
  ejections: number;
  lastReturnedAt: number | undefined;
}

export class OutlierDetector {
  readonly #hosts = new Map<string, HostState>();
  readonly #now: () => number;
  /** Interval ticks are counted from here. */
  readonly #origin: number;
  #nextReturn = Infinity;
  #version = 0;

  constructor(now: () => number) {
    this.#now = now;
    this.#origin = now();
  }

  /** Changes whenever an endpoint is ejected or returns: load balancers rebuild on a change. */
  get version(): number {
    this.#returnDue();
    return this.#version;
  }

  isEjected(host: string): boolean {
    this.#returnDue();
    return this.#hosts.get(host)?.returnsAt !== undefined;
  }

  /**
   * Counts one attempt's result against `host`; `cluster` lists every endpoint of the cluster now
   * (maxEjectionPercent is a share of them). Returns true when this report ejected the host.
   */
  report(host: string, result: AttemptResult, s: OutlierSettings, cluster: readonly string[]): boolean {
    this.#returnDue();
    let h = this.#hosts.get(host);
    if (!h) {
      h = { c5xx: 0, cGateway: 0, cLocal: 0, returnsAt: undefined, backoff: 0, ejections: 0, lastReturnedAt: undefined };
      this.#hosts.set(host, h);
    }
    if (h.returnsAt !== undefined) return false; // answers still arriving from before the ejection
    let status: number;
    if (typeof result === 'number') {
      status = result;
      h.cLocal = 0;
    } else if (s.splitLocalOrigin) {
      h.cLocal++;
      if (s.consecutiveLocalOrigin > 0 && h.cLocal >= s.consecutiveLocalOrigin) {
        h.cLocal = 0;
        return this.#eject(host, h, s, cluster);
      }
      return false;
    } else {
      // Unsplit, Envoy files local-origin failures as the status it would have answered with.
      status = result === 'timeout' ? 504 : 503;
    }
    if (status < 500 || status > 599) {
      h.c5xx = 0;
      h.cGateway = 0;
      return false;
    }
    let eject = false;
    if (status >= 502 && status <= 504) {
      h.cGateway++;
      if (s.consecutiveGateway > 0 && h.cGateway >= s.consecutiveGateway) {
        h.cGateway = 0;
        eject = true;
      }
    } else {
      h.cGateway = 0;
    }
    h.c5xx++;
    if (s.consecutive5xx > 0 && h.c5xx >= s.consecutive5xx) {
      h.c5xx = 0;
      eject = true;
    }
    return eject && this.#eject(host, h, s, cluster);
  }

  status(host: string): HostOutlierStatus {
    this.#returnDue();
    const h = this.#hosts.get(host);
    if (!h) return { ejected: false, ejections: 0, consecutive5xx: 0, consecutiveGatewayErrors: 0, consecutiveLocalOriginFailures: 0 };
    return {
      ejected: h.returnsAt !== undefined,
      ...(h.returnsAt !== undefined ? { ejectedUntil: h.returnsAt } : {}),
      ejections: h.ejections,
      consecutive5xx: h.c5xx,
      consecutiveGatewayErrors: h.cGateway,
      consecutiveLocalOriginFailures: h.cLocal,
    };
  }

  #eject(host: string, h: HostState, s: OutlierSettings, cluster: readonly string[]): boolean {
    let ejected = 0;
    for (const k of cluster) if (k !== host && this.#hosts.get(k)?.returnsAt !== undefined) ejected++;
    const total = Math.max(cluster.length, 1);
    // Envoy always lets one endpoint go, whatever the percentage says.
    if (ejected > 0 && (100 * (ejected + 1)) / total > s.maxEjectionPercent) return false;
    const now = this.#now();
    h.backoff = Math.max(0, h.backoff - this.#healthyTicks(h.lastReturnedAt, now, s.intervalMs));
    if (h.backoff * s.baseEjectionMs < s.maxEjectionMs + s.baseEjectionMs) h.backoff++;
    const duration = Math.min(s.baseEjectionMs * h.backoff, s.maxEjectionMs);
    h.returnsAt = this.#tickAtOrAfter(now + duration, s.intervalMs);
    h.ejections++;
    this.#nextReturn = Math.min(this.#nextReturn, h.returnsAt);
    this.#version++;
    return true;
  }

  /** Ejected endpoints whose time is up return (Envoy checks this on each interval tick). */
  #returnDue(): void {
    const now = this.#now();
    if (now < this.#nextReturn) return;
    let next = Infinity;
    for (const h of this.#hosts.values()) {
      if (h.returnsAt === undefined) continue;
      if (h.returnsAt <= now) {
        h.lastReturnedAt = h.returnsAt;
        h.returnsAt = undefined;
        h.c5xx = h.cGateway = h.cLocal = 0;
        this.#version++;
      } else {
        next = Math.min(next, h.returnsAt);
      }
    }
    this.#nextReturn = next;
  }

  #tickAtOrAfter(t: number, interval: number): number {
    if (!(interval > 0)) return t;
    return this.#origin + Math.ceil((t - this.#origin) / interval) * interval;
  }

  /** Interval ticks up to `now` at which the endpoint had been back for a whole interval. */
  #healthyTicks(returnedAt: number | undefined, now: number, interval: number): number {
    if (returnedAt === undefined || !(interval > 0)) return 0;
    const first = Math.ceil((returnedAt + interval - this.#origin) / interval);
    const last = Math.floor((now - this.#origin) / interval);
    return Math.max(0, last - first + 1);
  }
}

function isCount(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}

function positive(v: unknown): boolean {
  return isCount(v) && (v as number) > 0;
}

function durationMs(v: unknown): number | undefined {
  const ms = typeof v === 'string' ? parseDuration(v) : undefined;
  return ms !== undefined && ms > 0 ? ms : undefined;
}
