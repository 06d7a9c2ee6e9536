// TLS session resumption by tickets, as nginx and Envoy run it: the server encrypts each session
// into a ticket the client keeps, and a client that comes back with it skips the certificate
// signature and the key exchange. The keys are rotated (hourly by default); the key before the
// current one still decrypts, and a ticket it decrypts is renewed under the current key, so a
// rotation costs no client a full handshake. Under `--workers` the primary makes and rotates the
// keys and every worker gets the same ones (core/runtime/worker-ticket-keys.ts), so a ticket issued
// by one worker resumes on any other.
//
// Node keeps one ticket key per SecureContext (`setTicketKeys`). To decrypt with the previous key
// too, the ring answers OpenSSL's ticket key callback, which Node exposes on the native context
// (`enableTicketKeyCallback`, the hook its own tests use to renew tickets); where that hook is
// missing it falls back to `setTicketKeys` with the current key. A server whose context is replaced
// (`setSecureContext`, on a certificate change) must be attached again.
//
// Off (`--tls-session-tickets off`), servers issue no tickets: every connection is a full handshake.

import { randomBytes, randomFillSync } from 'node:crypto';
import { constants } from 'node:crypto';
import type { Server as TlsServer } from 'node:tls';

/** 48 bytes, as `setTicketKeys` takes them: name (16), HMAC secret (16), AES key (16). */
export type TicketKey = Buffer;

export interface TicketKeys {
  readonly current: TicketKey;
  readonly previous?: TicketKey;
}

export const TICKET_KEY_BYTES = 48;

/** How often keys rotate: a stolen key opens at most two hours of recorded sessions. */
export const DEFAULT_ROTATION_MS = 60 * 60 * 1000;

/** OpenSSL's answers from the ticket key callback. */
const NOT_FOUND = 0;
const FOUND = 1;
const FOUND_RENEW = 2;

interface Parsed {
  readonly name: Buffer;
  readonly hmac: Buffer;
  readonly aes: Buffer;
}

/** What Node's native SecureContext offers for the callback (not in its typings). */
interface NativeContext {
  setTicketKeys(keys: Buffer): void;
  enableTicketKeyCallback?: () => void;
  onticketkeycallback?: (name: Buffer, iv: Buffer, encrypt: boolean) => unknown[];
}

export function newTicketKey(): TicketKey {
  return randomBytes(TICKET_KEY_BYTES);
}

function parse(key: TicketKey): Parsed {
  if (key.length !== TICKET_KEY_BYTES) throw new Error(`a session ticket key is ${TICKET_KEY_BYTES} bytes, not ${key.length}`);
  return { name: key.subarray(0, 16), hmac: key.subarray(16, 32), aes: key.subarray(32, 48) };
}

const ZERO = Buffer.alloc(16);

/** IVs are drawn from a pool filled 64 at a time: one call into the random generator per 64 tickets. */
const IV_POOL_BYTES = 64 * 16;

export class SessionTickets {
  readonly enabled: boolean;
  #current: Parsed;
  #previous: Parsed | undefined;
  #keys: TicketKeys;
  /** Servers that got the current key by setTicketKeys (no callback hook): told again on rotation. */
  readonly #fixed = new Set<TlsServer>();
  #timer: NodeJS.Timeout | undefined;
  #ivs = Buffer.alloc(0);
  #ivAt = 0;

  constructor(opts: { readonly enabled?: boolean; readonly keys?: TicketKeys } = {}) {
    this.enabled = opts.enabled ?? true;
    this.#keys = opts.keys ?? { current: newTicketKey() };
    this.#current = parse(this.#keys.current);
    this.#previous = this.#keys.previous ? parse(this.#keys.previous) : undefined;
  }

  keys(): TicketKeys {
    return this.#keys;
  }

  /** Takes keys made elsewhere (the `--workers` primary). */
  setKeys(keys: TicketKeys): void {
    this.#current = parse(keys.current);
    this.#previous = keys.previous ? parse(keys.previous) : undefined;
    this.#keys = keys;
    for (const s of this.#fixed) this.#setFixed(s);
  }

  /** A new current key; the current one becomes the previous. Returns the new pair. */
  rotate(): TicketKeys {
    this.setKeys({ current: newTicketKey(), previous: this.#keys.current });
    return this.#keys;
  }

  /** Rotates every `ms` on its own (a proxy without a primary to do it); `onRotate` hears each pair. */
  rotateEvery(ms = DEFAULT_ROTATION_MS, onRotate?: (keys: TicketKeys) => void): void {
    this.stop();
    this.#timer = setInterval(() => onRotate?.(this.rotate()), ms);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Options for a TLS server's context: `sessionIdContext` ties a session to the server that made it
   * (give each server its own, derived from what it verifies: a ticket from a server without client
   * certificates must not resume on one that requires them), and with tickets off, no tickets.
   */
  contextOptions(sessionIdContext: string): { sessionIdContext: string; secureOptions?: number } {
    return this.enabled ? { sessionIdContext } : { sessionIdContext, secureOptions: constants.SSL_OP_NO_TICKET };
  }

  /** Gives `server`'s current context the ring's keys; again after each `setSecureContext`. */
  attach(server: TlsServer): void {
    if (!this.enabled) return;
    const context = (server as unknown as { _sharedCreds?: { context?: NativeContext } })._sharedCreds?.context;
    if (!context || typeof context.enableTicketKeyCallback !== 'function') {
      this.#fixed.add(server);
      server.once('close', () => this.#fixed.delete(server));
      this.#setFixed(server);
      return;
    }
    context.onticketkeycallback = (name, iv, encrypt) => this.#callback(name, iv, encrypt);
    context.enableTicketKeyCallback();
  }

  #setFixed(server: TlsServer): void {
    server.setTicketKeys(this.#keys.current);
  }

  /**
   * OpenSSL asks for a key to encrypt a new ticket (a fresh IV and the current key's name), or for
   * the key a ticket names. Node aborts the process on an answer of the wrong shape, so every path
   * returns [status, hmac, aes] (plus name and IV when encrypting) with 16-byte buffers.
   */
  #callback(name: Buffer, _iv: Buffer, encrypt: boolean): unknown[] {
    const cur = this.#current;
    if (encrypt) return [FOUND, cur.hmac, cur.aes, cur.name, this.#iv()];
    if (name.equals(cur.name)) return [FOUND, cur.hmac, cur.aes];
    const prev = this.#previous;
    // Decrypted with the previous key: resumed, and the client is sent a ticket under the current one.
    if (prev && name.equals(prev.name)) return [FOUND_RENEW, prev.hmac, prev.aes];
    return [NOT_FOUND, ZERO, ZERO];
  }

  /** A fresh random IV (Node copies it into the ticket, so a view into the pool will do). */
  #iv(): Buffer {
    if (this.#ivAt >= this.#ivs.length) {
      this.#ivs = randomFillSync(Buffer.allocUnsafe(IV_POOL_BYTES));
      this.#ivAt = 0;
    }
    const iv = this.#ivs.subarray(this.#ivAt, this.#ivAt + 16);
    this.#ivAt += 16;
    return iv;
  }
}
