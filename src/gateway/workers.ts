// `--workers N`: the gateway as N processes sharing its listening ports (node:cluster hands each new
// connection to one of them), so every core serves traffic. Each worker is a whole gateway with its
// own snapshot from the same source; the primary only supervises: it replaces a worker that dies,
// stops every worker when any process of the gateway is signalled (each worker drains itself; see
// core/runtime/stop-signals.ts for why a repeated signal changes nothing), keeps the ACME HTTP-01
// answers (acme/worker-challenges.ts), because one worker orders certificates while any worker may
// receive the ACME server's validation request,
// keeps the counters of RateLimitPolicy `store: memory` and of DestinationRule connectionPool limits
// for all workers, so a limit is one limit, and hands every worker the same TLS session ticket keys.
// A first worker that cannot start (a port in use) says why and exits with WORKER_COULD_NOT_START:
// the primary then stops the others and exits non-zero, since every replacement would fail the same
// way. A replacement that cannot start counts as a crash: its siblings are serving.

import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { RateLimiterClusterMaster } from 'rate-limiter-flexible';
import { PrimaryBreakers } from '../core/runtime/worker-breakers.js';
import { PrimaryTicketKeys } from '../core/runtime/worker-ticket-keys.js';
import { PrimaryChallenges } from './acme/worker-challenges.js';
import { isStopMessage, stopRequested, type StopCause, type StopMessage } from '../core/runtime/stop-signals.js';

const INDEX_ENV = 'MESHGATE_WORKER_INDEX';
const COUNT_ENV = 'MESHGATE_WORKER_COUNT';

/** The exit code of a worker whose gateway could not start (sysexits' EX_CONFIG). */
const WORKER_COULD_NOT_START = 78;

/** This process's worker index (0 … N-1, stable across replacements), or undefined when not a worker. */
export function workerIndex(): number | undefined {
  const v = process.env[INDEX_ENV];
  return cluster.isWorker && v !== undefined ? Number(v) : undefined;
}

/** How many workers the gateway runs (1 when this process is not a worker). */
export function workerTotal(): number {
  const n = Number(process.env[COUNT_ENV]);
  return cluster.isWorker && Number.isInteger(n) && n > 1 ? n : 1;
}

/**
 * Lets a worker whose gateway could not start (it has logged why) end, and returns its exit code:
 * the channel to the primary would keep the process alive, and nothing else left open may either.
 */
export function endWorkerThatCouldNotStart(): number {
  process.exitCode = WORKER_COULD_NOT_START;
  // Through the cluster worker: a bare process.disconnect() makes node:cluster exit the worker with 0.
  cluster.worker?.disconnect();
  setTimeout(() => process.exit(WORKER_COULD_NOT_START), 2000).unref();
  return WORKER_COULD_NOT_START;
}

/**
 * Runs in the primary until the workers have stopped after a signal. Returns the exit code.
 * A worker that exits on its own (a crash) is replaced, unless it keeps dying right after start.
 */
export function superviseWorkers(count: number, log: Logger): Promise<number> {
  const byIndex = new Map<number, Worker>();
  const startedAt = new Map<number, number>();
  /** Indexes whose worker is a replacement, not one of the first ones. */
  const replaced = new Set<number>();
  let stopping = false;
  let exitCode = 0;
  let quickDeaths = 0;
  const breakers = new PrimaryBreakers();
  const ticketKeys = new PrimaryTicketKeys();
  const challenges = new PrimaryChallenges();

  const fork = (index: number): void => {
    // The count lets each worker take its share of maxRetries (worker-breakers.ts says why).
    const w = cluster.fork({ [INDEX_ENV]: String(index), [COUNT_ENV]: String(count) });
    breakers.attach(w);
    ticketKeys.attach(w);
    challenges.attach(w);
    byIndex.set(index, w);
    startedAt.set(index, Date.now());
    // A worker that is stopping closes its channel while messages may still be on their way to it:
    // that write fails (EPIPE) and is of no consequence, but an unhandled 'error' would end the primary.
    w.on('error', (err: Error) => log.debug({ worker: index, err: err.message }, 'worker channel closed'));
    w.on('message', (m: unknown) => {
      // A worker signalled on its own: the whole gateway stops, as if the primary had been.
      if (isStopMessage(m) && m.meshgate === 'stop-requested') stop(m.signal);
    });
  };

  /**
   * Told over the cluster channel, not by a signal: a worker counts only the signals sent to it, so
   * the primary's word never adds to them (a third signal would end a worker without its drain).
   */
  function stop(signal: StopCause): void {
    if (stopping) return;
    stopping = true;
    log.info({ signal, workers: byIndex.size }, 'stopping workers');
    for (const w of byIndex.values()) {
      if (w.isConnected()) w.send({ meshgate: 'stop', signal } satisfies StopMessage, undefined, () => undefined);
      else w.process.kill(signal);
    }
    if (byIndex.size === 0) settle?.(exitCode);
  }
  let settle: ((code: number) => void) | undefined;

  // Answers the workers' RateLimiterCluster requests over the cluster channel.
  new RateLimiterClusterMaster();
  return new Promise<number>((resolve) => {
    settle = resolve;
    cluster.on('exit', (w, code, signal) => {
      // Whatever slots it held come free, or the limit would shrink with every crash.
      breakers.detach(w);
      challenges.detach(w);
      const index = [...byIndex.entries()].find(([, x]) => x === w)?.[0];
      if (index === undefined) return;
      byIndex.delete(index);
      if (stopping) {
        if (byIndex.size === 0) resolve(exitCode);
        return;
      }
      const giveUp = (message: string, stopSignal: NodeJS.Signals): void => {
        log.error({ worker: index, code, signal }, message);
        stopping = true;
        exitCode = 1;
        for (const other of byIndex.values()) other.process.kill(stopSignal);
        if (byIndex.size === 0) resolve(exitCode);
      };
      // Not drained (SIGINT): the gateway has not started serving as a whole.
      if (code === WORKER_COULD_NOT_START && !replaced.has(index)) return giveUp(`gateway worker ${index} could not start (its error is logged above); stopping the gateway`, 'SIGINT');
      // A worker that crashes right after start (a bug) would be replaced forever.
      quickDeaths = Date.now() - (startedAt.get(index) ?? 0) < 5000 ? quickDeaths + 1 : 0;
      if (quickDeaths >= count * 3) return giveUp('workers keep exiting right after start; giving up', 'SIGTERM');
      log.error({ worker: index, code, signal }, 'gateway worker exited; starting a new one');
      replaced.add(index);
      fork(index);
    });
    stopRequested({ log, onForce: () => byIndex.forEach((w) => w.process.kill('SIGKILL')) }).then(stop, () => undefined);
    for (let i = 0; i < count; i++) fork(i);
    log.info({ workers: count }, 'gateway workers started');
  }).finally(() => ticketKeys.close());
}
