// How a long-running command learns that it should stop, whoever sent the signal and to how many
// processes. One user action often reaches a process more than once: Ctrl-C and `kill -- -PGID` signal
// the whole process group (the primary and every worker), systemd's KillMode=control-group and
// `tini -g` do the same, and `npm start` passes its own SIGINT on to node as well. So:
//  - the first SIGTERM or SIGINT starts the stop (the drain, for the proxies) and it runs once;
//  - a second one is said in the log and changes nothing, so a duplicate never cuts a drain short;
//  - a third one stops the process at once (exit 128 + the signal's number), the escape hatch for a
//    person who really means "now".
// The handlers stay installed for the life of the process: without a handler, Node's default action
// for a repeated signal would end the process in the middle of its drain (the bug behind a gateway
// that refused connections when its process group was signalled).
//
// Gateway workers (node:cluster) also stop when the primary tells them to over the cluster channel
// (that message is not counted as a signal), and a worker that is signalled on its own asks the
// primary to stop the whole gateway, so whichever processes get the signal, the drain is one drain.
// docs/operations/drain.md describes what a stop does, step by step.

import cluster from 'node:cluster';

export type StopCause = 'SIGTERM' | 'SIGINT';

/** What the primary and its workers say to each other about stopping. */
export interface StopMessage {
  readonly meshgate: 'stop' | 'stop-requested';
  readonly signal: StopCause;
}

export function isStopMessage(m: unknown): m is StopMessage {
  if (typeof m !== 'object' || m === null) return false;
  const kind = (m as { meshgate?: unknown }).meshgate;
  return kind === 'stop' || kind === 'stop-requested';
}

/** Signals after which the process no longer waits for its drain. */
const SIGNALS_TO_FORCE = 3;

const EXIT_CODE: Record<StopCause, number> = { SIGINT: 130, SIGTERM: 143 };

/** Where the stop is said: a pino logger, or the demo's console. */
export interface StopLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export interface StopOptions {
  readonly log: StopLog;
  /** Called on the signal that forces the stop, before the process exits (e.g. kill the workers). */
  readonly onForce?: () => void;
}

/**
 * Resolves with the first SIGTERM or SIGINT (or the primary's stop message, in a gateway worker),
 * and keeps counting the signals after it as the header says.
 */
export function stopRequested(opts: StopOptions): Promise<StopCause> {
  const { log } = opts;
  let received = 0;
  return new Promise((resolve) => {
    let stopping = false;
    const begin = (cause: StopCause): void => {
      if (stopping) return;
      stopping = true;
      resolve(cause);
    };
    const onSignal = (signal: StopCause): void => {
      received++;
      if (received === 1) {
        // A worker signalled by itself: the primary stops every worker, this one included.
        if (cluster.isWorker && process.connected) process.send?.({ meshgate: 'stop-requested', signal } satisfies StopMessage, undefined, {}, () => undefined);
        begin(signal);
      } else if (received < SIGNALS_TO_FORCE) {
        log.info({ signal }, `already stopping; ${SIGNALS_TO_FORCE - received} more signal(s) stop at once`);
      } else {
        log.warn({ signal }, 'stopping at once: not waiting for the drain');
        opts.onForce?.();
        process.exit(EXIT_CODE[signal]);
      }
    };
    process.on('SIGTERM', () => onSignal('SIGTERM'));
    process.on('SIGINT', () => onSignal('SIGINT'));
    if (cluster.isWorker) {
      process.on('message', (m: unknown) => {
        if (isStopMessage(m) && m.meshgate === 'stop') begin(m.signal);
      });
    }
  });
}
