// A proxy's HTTPS client of the control plane: opens the configuration stream, acknowledges
// versions, and asks for workload certificates (what IdentityClient's `requestCertificate` calls).
// The control plane's certificate must chain to the mesh root the proxy was given; no other trust
// is used, so a proxy cannot be fed configuration or certificates by anyone else. Every call carries
// the proxy's bearer token, read afresh each time (a projected service-account token rotates).

import { Agent, request, type RequestOptions } from 'node:https';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { LineReader } from './line-reader.js';
import { isRecord } from '../config/load.js';
import {
  ACK_PATH,
  CERTIFICATES_PATH,
  STREAM_PATH,
  describeQuery,
  parseStreamMessage,
  type ProxyDescription,
  type AckRequest,
  type StreamMessage,
} from './control-plane-wire.js';

export interface ControlPlaneClientOptions {
  /** `https://host:port` of the control plane. */
  readonly url: string;
  /** PEM: the mesh root(s) the control plane's certificate must chain to. */
  readonly rootCertPem: string;
  /** The bearer token, or where to get it before each call. */
  readonly token: string | (() => string);
  /** Limit for one ordinary request, and for a stream's first line (default 15 s). */
  readonly requestTimeoutMs?: number;
}

export interface StreamHandlers {
  onMessage(message: StreamMessage): void;
  /** Once, when the stream is over for any reason other than close(). */
  onEnd(reason: Error): void;
}

export interface StreamHandle {
  close(): void;
}

/** One stream line may hold a whole configuration; beyond this something is wrong. */
const MAX_LINE_BYTES = 256 * 1024 * 1024;
/** Silence for this many heartbeat periods means the control plane (or the path to it) is gone. */
const MISSED_HEARTBEATS = 3.5;
const MAX_ERROR_BODY = 64 * 1024;

/** Node's codes for "this certificate does not lead to the roots I trust, or is not for this name". */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

export class ControlPlaneClient {
  readonly #base: URL;
  readonly #token: () => string;
  readonly #agent: Agent;
  readonly #timeoutMs: number;

  constructor(opts: ControlPlaneClientOptions) {
    this.#base = new URL(opts.url);
    if (this.#base.protocol !== 'https:') throw new TypeError(`ControlPlaneClient: ${opts.url} is not an https:// URL`);
    if (!opts.rootCertPem.includes('-----BEGIN CERTIFICATE-----')) throw new TypeError('ControlPlaneClient: rootCertPem holds no certificate');
    const token = opts.token;
    this.#token = typeof token === 'string' ? () => token : token;
    this.#timeoutMs = opts.requestTimeoutMs ?? 15_000;
    this.#agent = new Agent({ keepAlive: true, ca: opts.rootCertPem, minVersion: 'TLSv1.2' });
  }

  get url(): string {
    return this.#base.origin;
  }

  /**
   * Opens the configuration stream as `proxyId`, described as `description` (what it is sent depends
   * on it). Heartbeats are watched here: silence ends the stream.
   */
  openStream(proxyId: string, handlers: StreamHandlers, description: ProxyDescription = { role: 'sidecar', labels: {} }): StreamHandle {
    let done = false;
    let watchdog: NodeJS.Timeout | undefined;
    let idleMs = this.#timeoutMs;
    let req: ClientRequest | undefined;
    const finish = (reason: Error | undefined): void => {
      if (done) return;
      done = true;
      clearTimeout(watchdog);
      req?.destroy();
      if (reason) handlers.onEnd(reason);
    };
    const arm = (): void => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => finish(new Error(`nothing heard from the control plane at ${this.url} for ${idleMs} ms`)), idleMs);
      watchdog.unref();
    };
    const headers = this.#headers({ accept: 'application/x-ndjson' });
    if (!headers.ok) {
      // Reported after returning, like any other failure of the stream.
      queueMicrotask(() => finish(new Error(headers.message)));
      return { close: () => finish(undefined) };
    }
    const path = `${STREAM_PATH}?proxy=${encodeURIComponent(proxyId)}&${describeQuery(description)}`;
    req = request(new URL(path, this.#base), { method: 'GET', agent: this.#agent, headers: headers.value });
    arm();
    req.on('error', (err) => finish(this.#explain(err)));
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        void errorText(res).then((text) => finish(new Error(`the control plane at ${this.url} refused the stream: ${res.statusCode} ${text}`)));
        return;
      }
      const lines = new LineReader(MAX_LINE_BYTES);
      const onLine = (line: string): void => {
        const message = parseStreamMessage(line);
        if (!message) return;
        if (message.type === 'hello') {
          idleMs = Math.round(message.heartbeatMs * MISSED_HEARTBEATS);
          arm();
        }
        handlers.onMessage(message);
      };
      res.on('data', (chunk: Buffer) => {
        if (done) return;
        arm();
        const tooLong = lines.push(chunk, onLine, () => done);
        if (tooLong) finish(new Error(`the control plane sent ${tooLong.message}`));
      });
      res.on('end', () => finish(new Error(`the control plane at ${this.url} ended the stream`)));
      res.on('error', (err) => finish(this.#explain(err)));
      res.on('close', () => finish(new Error(`the connection to the control plane at ${this.url} closed`)));
    });
    req.end();
    return { close: () => finish(undefined) };
  }

  /** Tells the control plane what became of a version. */
  async ack(ack: AckRequest): Promise<void> {
    await this.#call('POST', ACK_PATH, ack);
  }

  /**
   * The CA's answer to `csrPem`: leaf first, root last. Rejects when refused or unreachable. A bound
   * function, so it can be handed to IdentityClient as it is.
   */
  readonly requestCertificate = async (csrPem: string, ttlSeconds: number): Promise<string[]> => {
    const body = await this.#call('POST', CERTIFICATES_PATH, { csr: csrPem, validitySeconds: ttlSeconds });
    if (!isRecord(body) || !Array.isArray(body.certChain) || !body.certChain.every((c) => typeof c === 'string')) {
      throw new Error(`the control plane at ${this.url} answered the certificate request without a certChain`);
    }
    return body.certChain as string[];
  };

  /** Drops pooled connections; streams still open are the caller's to close. */
  close(): void {
    this.#agent.destroy();
  }

  #call(method: 'GET' | 'POST', path: string, body: unknown): Promise<unknown> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const headers = this.#headers(text === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
    if (!headers.ok) return Promise.reject(new Error(headers.message));
    const options: RequestOptions = { method, agent: this.#agent, headers: headers.value, timeout: this.#timeoutMs };
    return new Promise<unknown>((resolve, reject) => {
      const req = request(new URL(path, this.#base), options, (res) => {
        if (res.statusCode !== 200) {
          void errorText(res).then((t) => reject(new Error(`the control plane at ${this.url} answered ${method} ${path} with ${res.statusCode}: ${t}`)));
          return;
        }
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => reject(this.#explain(err)));
        res.on('end', () => {
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown);
          } catch {
            reject(new Error(`the control plane at ${this.url} answered ${method} ${path} with something that is not JSON`));
          }
        });
      });
      req.on('timeout', () => req.destroy(new Error(`no answer from the control plane at ${this.url} within ${this.#timeoutMs} ms`)));
      req.on('error', (err) => reject(this.#explain(err)));
      req.end(text);
    });
  }

  #headers(extra: Record<string, string>): { ok: true; value: Record<string, string> } | { ok: false; message: string } {
    let token: string;
    try {
      token = this.#token().trim();
    } catch (err) {
      return { ok: false, message: `cannot read the token for the control plane: ${(err as Error).message}` };
    }
    if (token === '') return { ok: false, message: 'the token for the control plane is empty' };
    return { ok: true, value: { ...extra, authorization: `Bearer ${token}` } };
  }

  #explain(err: Error): Error {
    const code = (err as NodeJS.ErrnoException).code;
    if (code && UNTRUSTED.has(code)) {
      return new Error(`the control plane at ${this.url} is not trusted: its certificate does not verify against the mesh root (${code}: ${err.message})`, { cause: err });
    }
    return new Error(`cannot reach the control plane at ${this.url}: ${err.message}`, { cause: err });
  }
}

/** The `error` of a JSON error answer, or the start of whatever came. */
async function errorText(res: IncomingMessage): Promise<string> {
  let text = '';
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      if (text.length < MAX_ERROR_BODY) text += chunk.toString('utf8');
    }
  } catch {
    // what arrived is all there is
  }
  try {
    const v: unknown = JSON.parse(text);
    if (isRecord(v) && typeof v.error === 'string') return v.error;
  } catch {
    // not JSON
  }
  return text.slice(0, 500);
}
