// When a certificate is due for renewal, and how long to wait after a failed attempt. Pure
// functions of times in milliseconds, so the schedule can be tested without a clock.

/** Renew at two-thirds of the lifetime (cert-manager's default), or `renewBefore` the end when that is set and sensible. */
export function renewalTime(notBefore: number, notAfter: number, renewBeforeMs?: number): number {
  const lifetime = notAfter - notBefore;
  const twoThirds = notBefore + Math.floor((lifetime * 2) / 3);
  if (renewBeforeMs === undefined || renewBeforeMs <= 0) return twoThirds;
  // A renewBefore longer than the lifetime the CA chose would renew in a loop; the default is safer.
  if (renewBeforeMs >= lifetime) return twoThirds;
  return notAfter - renewBeforeMs;
}

export interface BackoffOptions {
  /** Wait after the first failure (default one minute). */
  readonly baseMs: number;
  /** Longest wait (default one hour). */
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 60_000, maxMs: 3_600_000 };

/**
 * Delay before the next attempt after `failures` consecutive failures (1 = first failure): doubling
 * from `baseMs` up to `maxMs`, then drawn from its upper half so that many gateways that failed
 * together (an ACME outage) do not all come back at the same instant.
 */
export function retryDelay(failures: number, random: () => number, opts: BackoffOptions = DEFAULT_BACKOFF): number {
  const exponent = Math.min(Math.max(failures - 1, 0), 30);
  const ceiling = Math.min(opts.maxMs, opts.baseMs * 2 ** exponent);
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.round(ceiling / 2 + (ceiling / 2) * r);
}
