// The shutdown flags the proxy commands share (`--drain-seconds`, `--drain-deadline-seconds`), and the
// last guard of the deadline: whatever part of the process has not closed by then does not keep it up.

import type { Logger } from 'pino';
import { DEFAULT_DRAIN_DEADLINE_SECONDS } from '../core/proxy/drain.js';
import { UsageError } from './main.js';

export const DRAIN_FLAGS = {
  'drain-seconds': { type: 'string' },
  'drain-deadline-seconds': { type: 'string' },
} as const;

export const DRAIN_HELP = `  --drain-seconds N     on SIGTERM or SIGINT: fail readiness at once, keep serving N seconds
                        with Connection: close (HTTP/1) and GOAWAY (HTTP/2), then close
                        (default 5); a repeated signal changes nothing, a third stops at once
  --drain-deadline-seconds N
                        exit at the latest N seconds after SIGTERM: requests still in flight and
                        long-lived connections (WebSocket, TCP passthrough, gRPC streams) are cut
                        then (default ${DEFAULT_DRAIN_DEADLINE_SECONDS}; keep it below the pod's terminationGracePeriodSeconds)`;

export interface DrainSettings {
  readonly drainSeconds: number;
  readonly drainDeadlineSeconds: number;
}

/**
 * `podDrainSeconds`: the drain period the pod's ProxyConfig names (terminationDrainDuration), used
 * when --drain-seconds is not given; the deadline's default then grows to it rather than refuse to
 * start a pod's sidecar over a setting the pod's owner made elsewhere.
 */
export function parseDrainFlags(values: { 'drain-seconds'?: string; 'drain-deadline-seconds'?: string }, podDrainSeconds?: number): DrainSettings {
  const seconds = (flag: 'drain-seconds' | 'drain-deadline-seconds', fallback: number): number => {
    const text = values[flag];
    const n = text === undefined ? fallback : Number(text);
    if (!Number.isFinite(n) || n < 0) throw new UsageError(`--${flag}: '${text}' is not a number of seconds`);
    return n;
  };
  const fromPod = values['drain-seconds'] === undefined && podDrainSeconds !== undefined;
  const drainSeconds = seconds('drain-seconds', fromPod ? podDrainSeconds : 5);
  const drainDeadlineSeconds = seconds('drain-deadline-seconds', fromPod ? Math.max(DEFAULT_DRAIN_DEADLINE_SECONDS, drainSeconds) : DEFAULT_DRAIN_DEADLINE_SECONDS);
  if (drainDeadlineSeconds < drainSeconds) {
    const which = values['drain-deadline-seconds'] === undefined ? ' (its default)' : '';
    throw new UsageError(`--drain-seconds ${drainSeconds} is longer than --drain-deadline-seconds ${drainDeadlineSeconds}${which}: raise the deadline too, and the pod's terminationGracePeriodSeconds`);
  }
  return { drainSeconds, drainDeadlineSeconds };
}

/**
 * Once a stop has begun: the proxy cuts its connections at the deadline, and this makes sure that a
 * part still closing a moment later (an ACME order, a Redis QUIT with no answer) does not hold the
 * process past it either.
 */
export function exitAfterDeadline(deadlineSeconds: number, log: Logger): void {
  setTimeout(() => {
    log.error({ deadlineSeconds }, 'shutdown not finished after the drain deadline; exiting');
    process.exit(1);
  }, (deadlineSeconds + 1) * 1000).unref();
}

/**
 * What a stop does from the moment it is asked for: a proxy still starting has nothing to drain and
 * ends at once (a control plane that cannot be reached would otherwise keep a stopping proxy in its
 * startup for ever); one that serves has the deadline armed, and its drain runs.
 */
export function armStop(stop: Promise<unknown>, serving: () => boolean, deadlineSeconds: number, log: Logger): void {
  void stop.then(() => {
    if (!serving()) {
      log.info('stopped before it was serving: nothing to drain');
      process.exit(0);
    }
    exitAfterDeadline(deadlineSeconds, log);
  });
}
