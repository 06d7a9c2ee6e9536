// TLS session ticket keys under `--workers`: the primary makes them and rotates them, and every worker
// encrypts and decrypts tickets with the same keys (core/tls/session-tickets.ts), so a client that
// resumes lands on whichever worker node:cluster hands its connection to and still skips the full
// handshake. Keys travel only over the cluster channel, never through the environment or a file.

import type { Worker } from 'node:cluster';
import { DEFAULT_ROTATION_MS, SessionTickets, type TicketKeys } from '../tls/session-tickets.js';

const TAG = 'ticket-keys';

interface KeysMessage {
  readonly meshgate: typeof TAG;
  /** `get`: a worker asks; `set`: the primary's keys (hex). */
  readonly op: 'get' | 'set';
  readonly current?: string;
  readonly previous?: string;
}

function isKeysMessage(m: unknown): m is KeysMessage {
  return typeof m === 'object' && m !== null && (m as { meshgate?: unknown }).meshgate === TAG;
}

function encode(keys: TicketKeys): KeysMessage {
  return { meshgate: TAG, op: 'set', current: keys.current.toString('hex'), ...(keys.previous ? { previous: keys.previous.toString('hex') } : {}) };
}

/** The primary's keys: made at start, rotated every `rotateMs`, sent to each worker that asks and to all on rotation. */
export class PrimaryTicketKeys {
  readonly #tickets = new SessionTickets();
  readonly #workers = new Set<Worker>();

  constructor(rotateMs = DEFAULT_ROTATION_MS) {
    this.#tickets.rotateEvery(rotateMs, (keys) => {
      for (const w of this.#workers) this.#send(w, keys);
    });
  }

  attach(worker: Worker): void {
    this.#workers.add(worker);
    worker.on('message', (m: unknown) => {
      if (isKeysMessage(m) && m.op === 'get') this.#send(worker, this.#tickets.keys());
    });
    worker.once('exit', () => this.#workers.delete(worker));
  }

  close(): void {
    this.#tickets.stop();
  }

  #send(w: Worker, keys: TicketKeys): void {
    if (w.isConnected()) w.send(encode(keys), undefined, () => undefined);
  }
}

/**
 * In a worker: `tickets` follows the primary's keys from now on. Resolves true once the first keys
 * are in, false if the primary has not answered within `timeoutMs` (the worker then keeps keys of
 * its own: its tickets resume only on itself, until the primary's keys arrive).
 */
export function followPrimaryTicketKeys(tickets: SessionTickets, timeoutMs = 5000, proc: NodeJS.Process = process): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    timer.unref();
    proc.on('message', (m: unknown) => {
      if (!isKeysMessage(m) || m.op !== 'set' || typeof m.current !== 'string') return;
      try {
        tickets.setKeys({ current: Buffer.from(m.current, 'hex'), ...(typeof m.previous === 'string' ? { previous: Buffer.from(m.previous, 'hex') } : {}) });
      } catch {
        return; // a malformed message changes nothing
      }
      clearTimeout(timer);
      resolve(true);
    });
    if (!proc.connected || !proc.send) return resolve(false);
    proc.send({ meshgate: TAG, op: 'get' } satisfies KeysMessage, undefined, {}, () => undefined);
  });
}
