// Re-serves one ConfigSource to many proxies. Each subscriber gets a long-lived NDJSON response: a
// `hello` (with the heartbeat period, so the proxy knows when silence means a dead control plane),
// the current set at once, then every new version. Bursts of source updates become one version at
// most `debounceMs` after the first. A proxy that reads slowly is never sent a queue of versions:
// while its socket is backed up only the newest set waits for it.

import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { formatProblem, type Problem } from '../core/config/problem.js';
import type { ConfigSource, ConfigUpdate } from '../core/sources/source.js';
import type { StreamMessage } from '../core/sources/control-plane-wire.js';
import { publishableSet, type PublishedSet, type Validate } from './config-set.js';
import type { ProxyRegistry, ProxySession } from './proxy-registry.js';
import { EndpointFailures, sendEndpointFailure } from '../core/proxy/respond.js';

export interface ConfigDistributorOptions {
  readonly source: ConfigSource;
  readonly registry: ProxyRegistry;
  readonly log: Logger;
  /** How long after the first change of a burst a new version goes out (default 100 ms). */
  readonly debounceMs?: number;
  /** How often every stream gets a heartbeat line (default 5 s). */
  readonly heartbeatMs?: number;
  /** What decides which resources may be sent (default validateAll); a seam for version-skew tests. */
  readonly validate?: Validate;
}

interface Stream {
  readonly session: ProxySession;
  readonly res: ServerResponse;
  blocked: boolean;
  /** The newest set not yet written because the socket was backed up. */
  pending: PublishedSet | undefined;
}

const HEARTBEAT_LINE = `${JSON.stringify({ type: 'heartbeat' } satisfies StreamMessage)}\n`;

export class ConfigDistributor {
  readonly #opts: ConfigDistributorOptions;
  readonly #log: Logger;
  readonly #debounceMs: number;
  readonly #heartbeatMs: number;
  readonly #streams = new Map<string, Stream>();
  #current: PublishedSet | undefined;
  #latest: ConfigUpdate | undefined;
  #timer: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #reported = new Set<string>();
  #closed = false;

  constructor(opts: ConfigDistributorOptions) {
    this.#opts = opts;
    this.#log = opts.log;
    this.#debounceMs = opts.debounceMs ?? 100;
    this.#heartbeatMs = opts.heartbeatMs ?? 5000;
  }

  /** Resolves once the source's first set has been validated and is ready to hand out. */
  async start(): Promise<void> {
    await this.#opts.source.start((u) => this.#updated(u));
    this.#heartbeat = setInterval(() => this.#beat(), this.#heartbeatMs);
    this.#heartbeat.unref();
  }

  get current(): PublishedSet | undefined {
    return this.#current;
  }

  /** Opens `res` as the stream of `session`; `replaced` is the same proxy's previous stream, now ended. */
  open(session: ProxySession, res: ServerResponse, replaced: ProxySession | undefined): void {
    if (this.#closed) {
      this.#opts.registry.disconnect(session);
      sendEndpointFailure(res, EndpointFailures.shuttingDown, 'json', { connection: 'close' });
      return;
    }
    if (replaced) this.#streams.get(replaced.id)?.res.end();
    const stream: Stream = { session, res, blocked: false, pending: undefined };
    this.#streams.set(session.id, stream);
    // `connection: close`: the stream's connection ends with it rather than idling in a keep-alive pool.
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', connection: 'close' });
    res.socket?.setNoDelay(true);
    res.on('close', () => {
      if (this.#streams.get(session.id) === stream) this.#streams.delete(session.id);
      this.#opts.registry.disconnect(session);
      if (!this.#closed) this.#log.info({ proxy: session.id, identity: session.identity }, 'proxy stream closed');
    });
    const hello: StreamMessage = { type: 'hello', proxy: session.id, identity: session.identity, heartbeatMs: this.#heartbeatMs };
    this.#write(stream, `${JSON.stringify(hello)}\n`);
    this.#log.info({ proxy: session.id, identity: session.identity, address: session.address, version: this.#current?.version }, 'proxy subscribed');
    if (this.#current) this.#send(stream, this.#current);
  }

  /** Ends every stream (proxies keep what they have and resubscribe elsewhere or later) and stops the source. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    clearInterval(this.#heartbeat);
    for (const s of this.#streams.values()) s.res.end();
    await this.#opts.source.close();
  }

  destroy(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    clearInterval(this.#heartbeat);
    for (const s of this.#streams.values()) s.res.destroy();
    this.#opts.source.destroy();
  }

  #updated(update: ConfigUpdate): void {
    if (this.#closed) return;
    if (update.error) {
      this.#log.error({ err: update.error, source: this.#opts.source.description }, 'configuration source failed; proxies keep the last set');
      return;
    }
    this.#latest = update;
    // The first set goes out at once: nothing is ready until it exists.
    if (!this.#current) return this.#publish();
    this.#timer ??= setTimeout(() => this.#publish(), this.#debounceMs);
  }

  #publish(): void {
    this.#timer = undefined;
    const update = this.#latest;
    this.#latest = undefined;
    if (!update || this.#closed) return;
    let next: PublishedSet;
    try {
      next = publishableSet(update, this.#current?.resources, this.#opts.validate);
    } catch (err) {
      // Validation never throws for bad input; this is a bug, and the set already out stays out.
      this.#log.error({ err }, 'preparing the configuration failed; proxies keep the last set');
      return;
    }
    this.#report(next.problems);
    if (next.version === this.#current?.version) return;
    this.#current = next;
    this.#log.info({ version: next.version, resources: next.resources.length, proxies: this.#streams.size }, 'configuration version published');
    for (const s of this.#streams.values()) this.#send(s, next);
  }

  #send(stream: Stream, set: PublishedSet): void {
    if (stream.blocked) {
      stream.pending = set;
      return;
    }
    this.#write(stream, set.line);
    this.#opts.registry.sent(stream.session, set.version);
  }

  #write(stream: Stream, line: string): void {
    if (stream.res.writableEnded || stream.res.destroyed) return;
    if (stream.res.write(line)) return;
    stream.blocked = true;
    stream.res.once('drain', () => {
      stream.blocked = false;
      const pending = stream.pending;
      stream.pending = undefined;
      if (pending) this.#send(stream, pending);
    });
  }

  #beat(): void {
    for (const s of this.#streams.values()) if (!s.blocked) this.#write(s, HEARTBEAT_LINE);
  }

  /** Each distinct problem of the control plane's input once, until it goes away and comes back. */
  #report(problems: readonly Problem[]): void {
    const now = new Set<string>();
    for (const p of problems) {
      const line = formatProblem(p);
      now.add(line);
      if (this.#reported.has(line)) continue;
      if (p.severity === 'error') this.#log.error({ problem: p }, line);
      else this.#log.warn({ problem: p }, line);
    }
    this.#reported = now;
  }
}
