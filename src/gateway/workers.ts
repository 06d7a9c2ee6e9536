// `--workers N`: the gateway as N processes sharing its listening ports (node:cluster hands each new
// connection to one of them), so every core serves traffic. Each worker is a whole gateway with its
// own snapshot from the same source; the primary only supervises: it replaces a worker that dies,
// passes SIGTERM/SIGINT on (each worker drains itself), relays ACME HTTP-01 answers, because one
// worker orders certificates while any worker may receive the ACME server's validation request, and
// keeps the counters of RateLimitPolicy `store: memory` for all workers, so a limit is one limit.

import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { RateLimiterClusterMaster } from 'rate-limiter-flexible';
import { WORKER_COUNT_ENV } from '../core/policy/connection-limits.js';
import type { ChallengeMap } from './acme/acme-order.js';

const INDEX_ENV = 'MESHGATE_WORKER_INDEX';

interface ChallengeMessage {
  readonly meshgate: 'acme-challenge';
  readonly op: 'set' | 'delete' | 'clear';
  readonly token?: string;
  readonly value?: string;
}

function isChallengeMessage(m: unknown): m is ChallengeMessage {
  return typeof m === 'object' && m !== null && (m as { meshgate?: unknown }).meshgate === 'acme-challenge';
}

/** This process's worker index (0 … N-1, stable across replacements), or undefined when not a worker. */
export function workerIndex(): number | undefined {
  const v = process.env[INDEX_ENV];
  return cluster.isWorker && v !== undefined ? Number(v) : undefined;
}

/**
 * The challenge map of a worker: the ordering worker's writes go to every other worker through the
 * primary; every worker's copy follows what it is sent.
 */
export function sharedChallenges(): ChallengeMap {
  const map: ChallengeMap = new Map();
  const local = { set: map.set.bind(map), delete: map.delete.bind(map), clear: map.clear.bind(map) };
  const tell = (m: Omit<ChallengeMessage, 'meshgate'>): void => {
    if (process.connected) process.send?.({ meshgate: 'acme-challenge', ...m });
  };
  map.set = (token: string, value: string) => {
    tell({ op: 'set', token, value });
    return local.set(token, value);
  };
  map.delete = (token: string) => {
    tell({ op: 'delete', token });
    return local.delete(token);
  };
  map.clear = () => {
    tell({ op: 'clear' });
    local.clear();
  };
  process.on('message', (m: unknown) => {
    if (!isChallengeMessage(m)) return;
    if (m.op === 'set' && m.token !== undefined && m.value !== undefined) local.set(m.token, m.value);
    else if (m.op === 'delete' && m.token !== undefined) local.delete(m.token);
    else if (m.op === 'clear') local.clear();
  });
  return map;
}

/**
 * Runs in the primary until the workers have stopped after a signal. Returns the exit code.
 * A worker that exits on its own (a crash) is replaced, unless it keeps dying right after start.
 */
export function superviseWorkers(count: number, log: Logger): Promise<number> {
  const byIndex = new Map<number, Worker>();
  const startedAt = new Map<number, number>();
  let stopping = false;
  let quickDeaths = 0;

  const fork = (index: number): void => {
    // The count lets each worker take its share of the DestinationRule connection limits.
    const w = cluster.fork({ [INDEX_ENV]: String(index), [WORKER_COUNT_ENV]: String(count) });
    byIndex.set(index, w);
    startedAt.set(index, Date.now());
    // A worker that is stopping closes its channel while messages may still be on their way to it:
    // that write fails (EPIPE) and is of no consequence, but an unhandled 'error' would end the primary.
    w.on('error', (err: Error) => log.debug({ worker: index, err: err.message }, 'worker channel closed'));
    w.on('message', (m: unknown) => {
      if (!isChallengeMessage(m)) return;
      for (const other of byIndex.values()) if (other !== w && other.isConnected()) other.send(m, undefined, () => undefined);
    });
  };

  // Answers the workers' RateLimiterCluster requests over the cluster channel.
  new RateLimiterClusterMaster();
  return new Promise((resolve) => {
    cluster.on('exit', (w, code, signal) => {
      const index = [...byIndex.entries()].find(([, x]) => x === w)?.[0];
      if (index === undefined) return;
      byIndex.delete(index);
      if (stopping) {
        if (byIndex.size === 0) resolve(0);
        return;
      }
      // A worker that cannot even start (a port in use, a bad flag) would be replaced forever.
      quickDeaths = Date.now() - (startedAt.get(index) ?? 0) < 5000 ? quickDeaths + 1 : 0;
      if (quickDeaths >= count * 3) {
        log.error({ worker: index, code, signal }, 'workers keep exiting right after start; giving up');
        stopping = true;
        for (const other of byIndex.values()) other.kill('SIGTERM');
        if (byIndex.size === 0) resolve(1);
        return;
      }
      log.error({ worker: index, code, signal }, 'gateway worker exited; starting a new one');
      fork(index);
    });
    const stop = (signal: NodeJS.Signals) => () => {
      if (stopping) return;
      stopping = true;
      log.info({ signal, workers: byIndex.size }, 'stopping workers');
      for (const w of byIndex.values()) w.process.kill(signal);
    };
    process.once('SIGTERM', stop('SIGTERM'));
    process.once('SIGINT', stop('SIGINT'));
    for (let i = 0; i < count; i++) fork(i);
    log.info({ workers: count }, 'gateway workers started');
  });
}
