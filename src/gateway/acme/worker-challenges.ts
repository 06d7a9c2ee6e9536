// HTTP-01 answers under `--workers N` (file mode): one worker orders, but node:cluster hands the ACME
// server's validation request to any worker. The primary keeps the answers: the ordering worker's
// publish resolves once the primary has stored it (so before the ACME server hears the challenge is
// ready), the primary passes it on to every other worker's copy, and a worker that finds no answer
// in its copy (the message still on its way, or a worker started after the publish) asks the
// primary before it answers 404. The answers of a worker that exits go with it: its orders died too.

import type { Worker } from 'node:cluster';
import { plausibleToken, type ChallengeBoard } from './challenge-board.js';

type Op = 'publish' | 'withdraw' | 'ask' | 'set' | 'delete' | 'done';

interface ChallengeMessage {
  readonly meshgate: 'acme-challenge';
  readonly op: Op;
  /** Pairs a worker's question with the primary's reply. */
  readonly id?: number;
  readonly token?: string;
  readonly value?: string;
}

function isChallengeMessage(m: unknown): m is ChallengeMessage {
  return typeof m === 'object' && m !== null && (m as { meshgate?: unknown }).meshgate === 'acme-challenge';
}

/** A worker's board: its own copy, kept by the primary's messages, and the primary asked on a miss. */
export function workerChallenges(): ChallengeBoard {
  const copy = new Map<string, string>();
  const waiting = new Map<number, (reply: ChallengeMessage | undefined) => void>();
  let lastId = 0;
  let closed = false;
  const ask = (m: Omit<ChallengeMessage, 'meshgate' | 'id'>): Promise<ChallengeMessage | undefined> =>
    new Promise((resolve) => {
      // No primary (the gateway is stopping), or closed (its reply would go unheard): nothing else
      // could answer either.
      if (closed || !process.connected || !process.send) return resolve(undefined);
      const id = ++lastId;
      waiting.set(id, resolve);
      process.send({ meshgate: 'acme-challenge', ...m, id } satisfies ChallengeMessage, undefined, {}, (err) => {
        if (err && waiting.delete(id)) resolve(undefined);
      });
    });
  const onMessage = (m: unknown): void => {
    if (!isChallengeMessage(m)) return;
    if (m.op === 'set' && m.token !== undefined && m.value !== undefined) copy.set(m.token, m.value);
    else if (m.op === 'delete' && m.token !== undefined) copy.delete(m.token);
    else if (m.op === 'done' && m.id !== undefined) {
      const resolve = waiting.get(m.id);
      waiting.delete(m.id);
      resolve?.(m);
    }
  };
  process.on('message', onMessage);
  return {
    publish: async (token, keyAuthorization) => {
      copy.set(token, keyAuthorization);
      await ask({ op: 'publish', token, value: keyAuthorization });
    },
    withdraw: async (token) => {
      copy.delete(token);
      await ask({ op: 'withdraw', token });
    },
    answer: (token) => copy.get(token) ?? (plausibleToken(token) ? ask({ op: 'ask', token }).then((r) => r?.value) : undefined),
    close: () => {
      closed = true;
      process.off('message', onMessage);
      for (const resolve of waiting.values()) resolve(undefined);
      waiting.clear();
    },
  };
}

/** The primary's side: the answers of every worker's orders, and who published each. */
export class PrimaryChallenges {
  readonly #answers = new Map<string, { value: string; by: Worker }>();
  readonly #workers = new Set<Worker>();

  attach(w: Worker): void {
    this.#workers.add(w);
    w.on('message', (m: unknown) => {
      if (!isChallengeMessage(m) || m.token === undefined) return;
      if (m.op === 'publish' && m.value !== undefined) {
        this.#answers.set(m.token, { value: m.value, by: w });
        this.#tellOthers(w, { meshgate: 'acme-challenge', op: 'set', token: m.token, value: m.value });
      } else if (m.op === 'withdraw') {
        this.#answers.delete(m.token);
        this.#tellOthers(w, { meshgate: 'acme-challenge', op: 'delete', token: m.token });
      } else if (m.op !== 'ask') {
        return;
      }
      const value = this.#answers.get(m.token)?.value;
      send(w, { meshgate: 'acme-challenge', op: 'done', id: m.id, token: m.token, ...(value !== undefined ? { value } : {}) });
    });
  }

  /** A worker exited: the orders it had in flight are over. */
  detach(w: Worker): void {
    this.#workers.delete(w);
    for (const [token, a] of this.#answers) {
      if (a.by !== w) continue;
      this.#answers.delete(token);
      this.#tellOthers(w, { meshgate: 'acme-challenge', op: 'delete', token });
    }
  }

  #tellOthers(from: Worker, m: ChallengeMessage): void {
    for (const other of this.#workers) if (other !== from) send(other, m);
  }
}

function send(w: Worker, m: ChallengeMessage): void {
  // A worker that is stopping may have closed its channel: nothing to tell it any more.
  if (w.isConnected()) w.send(m, undefined, () => undefined);
}
