// Keep-alive connection pools to upstream endpoints, one undici Pool per endpoint and TLS profile
// (plaintext, Istio mTLS, or TLS origination: connections of one never serve another), shared by
// every snapshot so that a configuration reload never drops or re-opens connections. A cluster whose
// connectionPool changes the connection settings (connections per endpoint, connect and idle
// timeouts, requests per connection) gets pools of its own. It also counts the requests in flight
// per endpoint, which the least-request load balancer reads.

import type { ClientSessionRequestOptions, OutgoingHttpHeaders } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { createRequire } from 'node:module';
import type { Pool as UndiciPool } from 'undici';
import { H2Sessions, type H2Connect, type H2Opened } from './h2-sessions.js';
import type { EndpointLoad } from '../policy/types.js';
import { DEFAULT_LIMITS, isDefaultLimits, type ConnectionLimits } from '../policy/connection-limits.js';
import { UpstreamConnector } from '../tls/upstream-connector.js';
import type { UpstreamTlsProfile } from '../tls/upstream-tls.js';
import type { SecretReader } from '../tls/types.js';

// undici's Pool alone (its own file, 23 modules with what it uses): the package's index also loads
// fetch, WebSocket, caches, mocks and more (111 modules), which every proxy would hold for nothing.
// Without the index, a Pool has no request()/stream()/pipeline()/connect()/upgrade() (the index adds
// them to every dispatcher); the proxy only dispatches, and the type says so.
type Pool = Omit<UndiciPool, 'request' | 'stream' | 'pipeline' | 'connect' | 'upgrade'>;
const Pool = createRequire(import.meta.url)('undici/lib/dispatcher/pool.js') as new (origin: string, options?: UndiciPool.Options) => Pool;

export interface PoolOptions {
  /** Connect timeout (Istio's connectionPool.tcp.connectTimeout default: 10 s). */
  readonly connectTimeoutMs?: number;
  /** How long an unused pool lives before it is closed (endpoints that left the registry). */
  readonly idlePoolMs?: number;
  /** Where DestinationRule `credentialName` material lives (default `certs`). */
  readonly certsDir?: string;
  /** Cluster mode: a DestinationRule's credentialName is a Secret of the proxy's namespace. */
  readonly secrets?: SecretReader;
  /** Upstream TLS failures are logged here. */
  readonly logger?: Logger;
  /** Source address of plaintext connections (a captured sidecar's inbound side: 127.0.0.6). */
  readonly localAddress?: string;
}

/** Above this, a maxConnections is as good as unlimited for one endpoint's pool. */
const MAX_POOL_CONNECTIONS = 65_536;

/** Istio's connectionPool.http.idleTimeout default, for HTTP/2 sessions. */
const H2_IDLE_TIMEOUT_MS = 3_600_000;

interface Entry {
  pool: Pool;
  /** What requests are dispatched on: the pool, or (one request per connection) the pool closing each after its request. */
  dispatcher: Pick<Pool, 'dispatch'>;
  active: number;
  lastUsed: number;
}

export class UpstreamPools implements EndpointLoad {
  readonly #pools = new Map<string, Entry>();
  readonly #h2 = new H2Sessions();
  /**
   * Requests in flight per endpoint (`address:port`), over all of its pools. An endpoint's count stays
   * at 0 until the sweep rather than being deleted with its last request: V8 reallocates a Map's table
   * when it empties, and a table per request, held by this long-lived Map, outlives the young generation.
   */
  readonly #active = new Map<string, number>();
  readonly #connector: UpstreamConnector;
  readonly #connectTimeoutMs: number;
  readonly #idlePoolMs: number;
  readonly #localAddress: string | undefined;
  readonly #sweeper: NodeJS.Timeout;
  #closed = false;

  constructor(opts: PoolOptions = {}) {
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
    this.#idlePoolMs = opts.idlePoolMs ?? 300_000;
    this.#localAddress = opts.localAddress;
    this.#connector = new UpstreamConnector({
      connectTimeoutMs: this.#connectTimeoutMs,
      ...(opts.certsDir !== undefined ? { certsDir: opts.certsDir } : {}),
      ...(opts.secrets ? { secrets: opts.secrets } : {}),
      ...(opts.logger ? { logger: opts.logger } : {}),
    });
    this.#sweeper = setInterval(() => this.#sweep(), Math.min(this.#idlePoolMs, 60_000));
    this.#sweeper.unref();
  }

  /**
   * The TLS connector of this proxy's pools: piped TCP uses it too, so a DestinationRule's TLS files
   * and credentialName are read from the same folder, and cached once, whichever path connects.
   */
  get connector(): UpstreamConnector {
    return this.#connector;
  }

  /** `address:port` (IPv6 in brackets). */
  static key(address: string, port: number): string {
    return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
  }

  /** A Unix domain socket's key, `unix://<path>` (a Sidecar ingress listener's endpoint); plaintext only. */
  static unixKey(path: string): string {
    return `${UNIX_PREFIX}${path}`;
  }

  active(key: string): number {
    return this.#active.get(key) ?? 0;
  }

  /**
   * A new HTTP/2 stream to an endpoint whose service port speaks http2/grpc, over `tls` when given,
   * on a session that keeps the cluster's connection settings (connect and idle timeouts, requests
   * per connection). An error when the TLS material for a new session cannot be had.
   */
  h2Request(key: string, tls: UpstreamTlsProfile | undefined, limits: ConnectionLimits | undefined, headers: OutgoingHttpHeaders, options?: ClientSessionRequestOptions): H2Opened {
    if (this.#closed) throw new Error('upstream pools are closed');
    const l = limits ?? DEFAULT_LIMITS;
    const connectTimeoutMs = this.#connectTimeout(l);
    const open: H2Connect = (onFailure) => this.#open(key, tls, ['h2'], connectTimeoutMs, onFailure);
    const sessionKey = `${key}|${tls?.key ?? ''}|${l.maxRequestsPerConnection},${l.idleTimeoutMs ?? ''},${connectTimeoutMs}`;
    const settings = { maxRequestsPerConnection: l.maxRequestsPerConnection, idleTimeoutMs: l.idleTimeoutMs ?? H2_IDLE_TIMEOUT_MS };
    return this.#h2.request(sessionKey, key, open, settings, headers, options);
  }

  /**
   * A connection of its own to an endpoint (an upgraded request's), plain or over `tls`, given up
   * after the cluster's connect timeout; `onFailure` learns why it failed before it was usable.
   */
  connect(key: string, tls: UpstreamTlsProfile | undefined, limits: ConnectionLimits | undefined, onFailure: (err: Error) => void): { ok: true; socket: Socket } | { ok: false; error: Error } {
    if (this.#closed) return { ok: false, error: new Error('upstream pools are closed') };
    return this.#open(key, tls, ['http/1.1'], this.#connectTimeout(limits ?? DEFAULT_LIMITS), onFailure);
  }

  #connectTimeout(limits: ConnectionLimits): number {
    return isDefaultLimits(limits) ? this.#connectTimeoutMs : limits.connectTimeoutMs;
  }

  #open(key: string, tls: UpstreamTlsProfile | undefined, alpn: readonly string[], timeoutMs: number, onFailure: (err: Error) => void): { ok: true; socket: Socket } | { ok: false; error: Error } {
    if (key.startsWith(UNIX_PREFIX)) return { ok: true, socket: connectPlain({ path: key.slice(UNIX_PREFIX.length) }, timeoutMs, onFailure) };
    const { host, port } = splitKey(key);
    if (tls) return this.#connector.open(tls, host, port, alpn, onFailure, timeoutMs);
    // Plaintext sessions and upgrade connections to the app come from the same source as its HTTP/1 pool:
    // under capture, a connection to the pod's own address from anywhere but 127.0.0.6 is captured again.
    // An IPv4 source (127.0.0.6) cannot reach an IPv6 address (a Sidecar ingress endpoint `[::1]:P`).
    return { ok: true, socket: connectPlain({ host, port, ...(this.#localAddress && !host.includes(':') ? { localAddress: this.#localAddress } : {}) }, timeoutMs, onFailure) };
  }

  /**
   * The pool for an endpoint (with `tls`, its own pool of TLS connections; with non-default
   * `limits`, one of its own too); `end()` closes the bracket around each request so least-request
   * sees the load.
   */
  acquire(key: string, tls?: UpstreamTlsProfile, limits?: ConnectionLimits): Lease {
    if (this.#closed) throw new Error('upstream pools are closed');
    const custom = limits && !isDefaultLimits(limits) ? limits : undefined;
    let poolKey = tls ? `${key}|${tls.key}` : key;
    if (custom) poolKey += `|${custom.maxConnections},${custom.maxRequestsPerConnection},${custom.connectTimeoutMs},${custom.idleTimeoutMs ?? ''}`;
    let e = this.#pools.get(poolKey);
    if (!e) {
      const unix = key.startsWith(UNIX_PREFIX) ? key.slice(UNIX_PREFIX.length) : undefined;
      const connectTimeout = custom?.connectTimeoutMs ?? this.#connectTimeoutMs;
      const pool = new Pool(unix !== undefined ? 'http://localhost' : `http://${key}`, {
        connectTimeout,
        // Istio's route timeout is off by default: undici must not impose its own 300 s limits.
        headersTimeout: 0,
        bodyTimeout: 0,
        keepAliveTimeout: custom?.idleTimeoutMs ?? 4_000,
        ...(custom?.idleTimeoutMs !== undefined ? { keepAliveMaxTimeout: custom.idleTimeoutMs } : {}),
        // The cluster-wide limit is kept by its circuit breaker; no endpoint may exceed it either.
        ...(custom && custom.maxConnections < MAX_POOL_CONNECTIONS ? { connections: custom.maxConnections } : {}),
        // undici closes a connection once it has sent one request more than maxRequestsPerClient.
        ...(custom && custom.maxRequestsPerConnection > 1 ? { maxRequestsPerClient: custom.maxRequestsPerConnection - 1 } : {}),
        ...(unix !== undefined ? { socketPath: unix } : tls ? this.#tlsConnect(key, tls, connectTimeout) : this.#localAddress && !key.startsWith('[') ? { localAddress: this.#localAddress } : {}),
      });
      // maxRequestsPerConnection 1, which undici's counter cannot say: each request closes its connection.
      const dispatcher: Entry['dispatcher'] = custom?.maxRequestsPerConnection === 1 ? { dispatch: (opts, handler) => pool.dispatch({ ...opts, reset: true }, handler) } : pool;
      e = { pool, dispatcher, active: 0, lastUsed: Date.now() };
      this.#pools.set(poolKey, e);
    }
    e.active++;
    e.lastUsed = Date.now();
    this.#active.set(key, (this.#active.get(key) ?? 0) + 1);
    return new Lease(e, key, this.#active);
  }

  #tlsConnect(key: string, tls: UpstreamTlsProfile, connectTimeout: number): Pick<UndiciPool.Options, 'connect'> {
    const { host, port } = splitKey(key);
    return { connect: this.#connector.undiciConnect(tls, host, port, connectTimeout) };
  }

  #sweep(): void {
    for (const [key, n] of this.#active) if (n === 0) this.#active.delete(key);
    const cutoff = Date.now() - this.#idlePoolMs;
    for (const [key, e] of this.#pools) {
      if (e.active === 0 && e.lastUsed < cutoff) {
        this.#pools.delete(key);
        void e.pool.close().catch(() => undefined);
      }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweeper);
    this.#h2.close();
    await Promise.all([...this.#pools.values()].map((e) => e.pool.close().catch(() => undefined)));
    this.#pools.clear();
  }

  async destroy(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    this.#h2.close();
    await Promise.all([...this.#pools.values()].map((e) => e.pool.destroy().catch(() => undefined)));
    this.#pools.clear();
  }
}

/** One request's hold on a pool, for least-request's counts: an object with a method, not a closure per request. */
class Lease {
  readonly pool: Pick<Pool, 'dispatch'>;
  readonly #entry: Entry;
  readonly #key: string;
  readonly #active: Map<string, number>;
  #ended = false;

  constructor(entry: Entry, key: string, active: Map<string, number>) {
    this.pool = entry.dispatcher;
    this.#entry = entry;
    this.#key = key;
    this.#active = active;
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#entry.active--;
    this.#active.set(this.#key, Math.max(0, (this.#active.get(this.#key) ?? 1) - 1));
  }
}

/**
 * A plaintext connection that gives up after `timeoutMs` (Envoy's connect_timeout) with the error
 * undici uses for it, so a timeout reads as a connect failure (503 UF) like a refusal does.
 */
function connectPlain(to: { host: string; port: number; localAddress?: string } | { path: string }, timeoutMs: number, onFailure: (err: Error) => void): Socket {
  const socket = 'path' in to ? netConnect({ path: to.path }) : netConnect({ ...to, noDelay: true });
  const timer = setTimeout(() => {
    const where = 'path' in to ? to.path : `${to.host}:${to.port}`;
    socket.destroy(Object.assign(new Error(`connect to ${where} timed out`), { code: 'UND_ERR_CONNECT_TIMEOUT' }));
  }, timeoutMs);
  timer.unref();
  const onError = (err: Error): void => {
    clearTimeout(timer);
    onFailure(err);
  };
  socket.prependOnceListener('error', onError);
  socket.once('connect', () => {
    clearTimeout(timer);
    socket.off('error', onError);
  });
  return socket;
}

const UNIX_PREFIX = 'unix://';

/** `10.0.0.1:80` / `[::1]:80` → host and port. */
function splitKey(key: string): { host: string; port: number } {
  const colon = key.lastIndexOf(':');
  const host = key.slice(0, colon);
  return { host: host.startsWith('[') ? host.slice(1, -1) : host, port: Number(key.slice(colon + 1)) };
}
