// The process lifecycle every proxy role shares (the gateway, a sidecar): the snapshot holder fed by
// a Reloader, upstream pools, live cluster state that outlives pushes, rate limiting (and its Redis
// link), the connection drain, the status and admin ports, and one ordered shutdown — graceful
// (drain period, listeners close, in-flight requests finish, cut at the deadline) or hard. A role
// builds its listeners on `ctx` and hands them over; it adds no lifecycle of its own.

import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { createLogger } from '../telemetry/logger.js';
import { JwksCache } from '../policy/jwks-cache.js';
import { SnapshotHolder } from '../snapshot/holder.js';
import { Reloader } from '../snapshot/reloader.js';
import type { ProxyRole } from '../snapshot/snapshot.js';
import type { ConfigSource } from '../sources/source.js';
import { UpstreamPools } from '../proxy/upstream-pools.js';
import type { SecretReader } from '../tls/types.js';
import { LiveClusters } from '../policy/live-clusters.js';
import type { ClusterBreaker } from '../policy/circuit-breaker.js';
import { WorkloadSecurityCache } from '../policy/workload-security.js';
import { currentCertificate } from '../tls/upstream-tls.js';
import { createProxyTelemetry, type ProxyTelemetry } from '../telemetry/proxy-telemetry.js';
import type { WorkloadInfo } from '../telemetry/workload.js';
import { createRateLimiting, type RateLimiting } from '../proxy/rate-limiting.js';
import { ConnectionDrain, DEFAULT_DRAIN_DEADLINE_SECONDS } from '../proxy/drain.js';
import type { HttpHandlerContext } from '../proxy/http-handler.js';
import { createStatusServer } from '../admin/status-server.js';
import { closeHttpServer, createAdminPort, type AdminPort } from '../admin/admin-port.js';
import { listenFor, listenOn } from '../proxy/listen.js';
import type { IdentityProvider } from '../pki/types.js';
import { SKIP_VALIDATE_TRUST_DOMAIN_ENV, skipValidateTrustDomain } from '../pki/trust-domain.js';
import type { HttpLimits } from '../proxy/http-limits.js';

export interface RuntimeOptions {
  /** Logger name (`meshgate-gateway`, `meshgate-sidecar`). */
  readonly name: string;
  readonly source: ConfigSource;
  readonly logger?: Logger;
  /** `off`, `stdout` (default) or a file path. */
  readonly accessLog?: string;
  readonly random?: () => number;
  /** Clock for outlier ejections, epoch ms (default Date.now). */
  readonly now?: () => number;
  /** Makes each cluster's circuit breaker (default: counted in this process). */
  readonly breakers?: (cluster: string) => ClusterBreaker;
  readonly redisUrl?: string;
  /** Proxies in front that append to x-forwarded-for (Envoy's xff_num_trusted_hops; default 0). */
  readonly trustedProxies?: number;
  readonly drainDeadlineSeconds?: number;
  /** Header limits, timeouts and upgrade types of every listener (http-limits.ts; the CLI's limit flags). */
  readonly limits?: HttpLimits;
  /** Where `credentialName` files live, for upstream TLS (the gateway's `--certs`). */
  readonly certsDir?: string;
  /** Cluster mode: a DestinationRule's credentialName is a Secret of the proxy's namespace instead. */
  readonly secrets?: SecretReader;
  /** The proxy's workload identity: mTLS to mesh endpoints. */
  readonly identity?: IdentityProvider;
  /** The proxy's own workload, whose RequestAuthentication and AuthorizationPolicy its inbound listeners enforce. */
  readonly workload: { readonly namespace: string; readonly labels: Readonly<Record<string, string>> };
  /**
   * What the proxy reports itself as in metrics and traces, and where `/stats/prometheus` listens
   * (0 = any free port; absent = no metrics; `primary`: the --workers primary serves the sum).
   */
  readonly telemetry: { readonly role: 'gateway' | 'sidecar'; readonly self: WorkloadInfo; readonly metricsPort?: number | 'primary' };
  /** POST /quitquitquit on the admin port asks for this (absent: the admin port has no such path). */
  readonly onQuit?: () => void;
}

/** Whatever a role opens that must stop accepting on close and be cut on destroy. */
export interface RuntimePart {
  close(): Promise<void>;
  destroy(): void | Promise<void>;
}

export interface RuntimeStart {
  /** The role the snapshots are compiled for, known once `beforeConfig` ran. */
  role(): ProxyRole;
  /** Runs before the first configuration is asked for (the gateway opens its Service ports here). */
  beforeConfig?(): Promise<void>;
  /** Runs once the first configuration is in (a sidecar opens its listeners here). */
  afterConfig?(): Promise<void>;
  readonly statusHost: string;
  readonly statusPort: number;
  readonly adminPort: number;
  /** After the status and admin ports listen (the gateway starts ordering certificates). */
  afterListen?(): void;
}

export class ProxyRuntime {
  readonly log: Logger;
  readonly holder = new SnapshotHolder();
  readonly pools: UpstreamPools;
  /** The access log, metrics and traces: one observe step fed from each request's record. */
  readonly accessLog: ProxyTelemetry;
  readonly random: () => number;
  readonly live: LiveClusters;
  readonly rateLimiting: RateLimiting;
  readonly drain = new ConnectionDrain();
  readonly security: WorkloadSecurityCache;
  /** What every listener's request pipeline is given. */
  readonly ctx: HttpHandlerContext;
  statusPort = 0;
  adminPort = 0;
  /** Where `/stats/prometheus` listens; 0 when the proxy has none. */
  metricsPort = 0;
  readonly #deadlineMs: number;
  readonly #status: Server;
  readonly #admin: AdminPort;
  readonly #parts: RuntimePart[] = [];
  #reloader: Reloader | undefined;
  #stopping: Promise<void> | undefined;

  constructor(private readonly opts: RuntimeOptions) {
    this.log = opts.logger ?? createLogger(opts.name);
    this.pools = new UpstreamPools(
      opts.certsDir !== undefined ? { certsDir: opts.certsDir, logger: this.log.child({ component: 'upstream-tls' }), ...(opts.secrets ? { secrets: opts.secrets } : {}) } : {},
    );
    this.accessLog = createProxyTelemetry({
      accessLog: opts.accessLog ?? 'stdout',
      role: opts.telemetry.role,
      self: opts.telemetry.self,
      snapshot: () => this.holder.current(),
      labels: opts.workload.labels,
      events: this.log.child({ component: 'telemetry' }),
      ...(opts.telemetry.metricsPort !== undefined ? { metricsPort: opts.telemetry.metricsPort } : {}),
    });
    this.random = opts.random ?? Math.random;
    // One set of breaker counters and ejections for the process's life: a push must not reset them.
    this.live = new LiveClusters({ ...(opts.now ? { now: opts.now } : {}), ...(opts.breakers ? { breaker: opts.breakers } : {}) });
    this.rateLimiting = createRateLimiting({
      holder: this.holder,
      logger: this.log.child({ component: 'ratelimit' }),
      ...(opts.redisUrl ? { redisUrl: opts.redisUrl } : {}),
    });
    const identity = opts.identity;
    if (identity && skipValidateTrustDomain()) this.log.warn({ env: SKIP_VALIDATE_TRUST_DOMAIN_ENV }, 'mesh peers of any trust domain are accepted: the trust-domain check is skipped');
    const authnLog = this.log.child({ component: 'jwt-authn' });
    const jwks = new JwksCache({
      onFetchError: (uri, error, stale) =>
        authnLog.warn({ jwksUri: uri, error, staleKeys: stale }, stale ? 'JWKS fetch failed: the keys fetched before still serve' : "JWKS fetch failed: the issuer's tokens are refused (401 Jwks remote fetch is failed)"),
    });
    this.security = new WorkloadSecurityCache({ namespace: opts.workload.namespace, labels: opts.workload.labels }, { jwks, ...(identity ? { ownSpiffeId: () => currentCertificate(identity)?.spiffeId } : {}) });
    this.#deadlineMs = (opts.drainDeadlineSeconds ?? DEFAULT_DRAIN_DEADLINE_SECONDS) * 1000;
    this.#status = createStatusServer(() => this.holder.current() !== undefined && !this.drain.draining);
    this.#admin = createAdminPort(async () => (await import('../admin/admin-server.js')).createAdminServer(this.holder, this.pools, this.rateLimiting.limiters, this.accessLog.dashboard), opts.onQuit, () => this.stopListening());
    this.ctx = {
      holder: this.holder,
      pools: this.pools,
      accessLog: this.accessLog,
      peerMetadata: this.accessLog.peerMetadata,
      random: this.random,
      drain: this.drain,
      rateLimits: this.rateLimiting.context,
      log: this.log,
      ...(opts.trustedProxies !== undefined ? { trustedProxies: opts.trustedProxies } : {}),
      ...(opts.identity ? { identity: opts.identity } : {}),
      ...(opts.limits ? { limits: opts.limits } : {}),
    };
  }

  /** The pipeline context for listeners that serve the proxy's own workload: authenticate and authorize run. */
  inboundCtx(): HttpHandlerContext {
    return { ...this.ctx, security: this.security };
  }

  /** Parts are closed in the order added, after the listeners' connections drained. */
  add(part: RuntimePart): void {
    this.#parts.push(part);
  }

  /** Brings the proxy up in Istio's order; on any failure everything opened so far is cut and the error rethrown. */
  async start(s: RuntimeStart): Promise<void> {
    try {
      // Connected before traffic, so the first requests already share counters; unreachable is fine too.
      await this.rateLimiting.start();
      await s.beforeConfig?.();
      this.#reloader = new Reloader(this.opts.source, this.holder, s.role(), { random: this.random, load: this.pools, live: this.live }, this.log);
      await this.#reloader.start();
      await s.afterConfig?.();
      this.statusPort = await listenFor('status port (--status-port)', s.statusHost, s.statusPort, () => listenOn(this.#status, s.statusPort, s.statusHost));
      this.adminPort = await listenFor('admin port (--admin-port)', '127.0.0.1', s.adminPort, () => listenOn(this.#admin.server, s.adminPort, '127.0.0.1'));
      this.metricsPort = await this.accessLog.listen(s.statusHost, this.log);
      s.afterListen?.();
    } catch (err) {
      await this.stop(true);
      throw err;
    }
  }

  /**
   * POST /drain_listeners: every listener stops accepting now (new connections are refused), open
   * connections are served to their end. The status port goes too: in Istio it is one of Envoy's
   * listeners (15021), so the kubelet's readiness probe fails and the pod leaves its Services'
   * endpoints. The admin port stays, as Envoy's does.
   */
  stopListening(): void {
    this.log.info('listeners drained (POST /drain_listeners): no new connections are accepted, readiness fails');
    for (const p of this.#parts) void p.close().catch(() => undefined);
    void closeHttpServer(this.#status);
  }

  /** Graceful stop: listeners stop accepting, open requests finish, then the rest closes. */
  close(): Promise<void> {
    return this.stop(false);
  }

  destroy(): Promise<void> {
    return this.stop(true);
  }

  /**
   * SIGTERM: readiness fails at once, serving continues for `seconds` (HTTP/1 responses carry
   * `Connection: close`, HTTP/2 clients are sent GOAWAY), then listeners close and in-flight
   * requests finish; at the drain deadline whatever is left is cut.
   */
  drainFor(seconds: number): Promise<void> {
    if (!this.drain.draining) this.log.info({ seconds }, 'draining: readiness fails now, serving continues until the drain period ends');
    return this.drain.period(seconds * 1000).then(() => this.stop(false, this.#deadlineMs - seconds * 1000));
  }

  /**
   * EXIT_ON_ZERO_ACTIVE_CONNECTIONS, as Istio's agent does it: the drain runs for at least
   * `minSeconds`, then the proxy waits for its last connection to close, not for a fixed time, and
   * stops then; at the drain deadline whatever is left is cut.
   */
  drainUntilIdle(minSeconds: number): Promise<void> {
    const started = Date.now();
    const left = (): number => Math.max(0, this.#deadlineMs - (Date.now() - started));
    if (!this.drain.draining) this.log.info({ minSeconds }, 'draining until no connection is active: readiness fails now, serving continues');
    return this.drain
      .period(minSeconds * 1000)
      .then(() => {
        if (this.drain.active > 0) this.log.info({ active: this.drain.active }, 'waiting for active connections to close');
        return new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left());
          void this.drain.idle().then(() => (clearTimeout(timer), resolve()));
        });
      })
      .then(() => {
        this.log.info({ active: this.drain.active }, this.drain.active === 0 ? 'no active connections: stopping' : 'drain deadline reached with connections open: stopping');
        return this.stop(false, left());
      });
  }

  stop(hard: boolean, graceMs = this.#deadlineMs): Promise<void> {
    // Also cuts short a drain period or grace already under way.
    if (hard) this.drain.destroy();
    return (this.#stopping ??= this.#stopAll(hard, graceMs));
  }

  async #stopAll(hard: boolean, graceMs: number): Promise<void> {
    this.drain.start();
    await this.#reloader?.close().catch(() => undefined);
    if (hard) for (const p of this.#parts) await p.destroy();
    const closed = Promise.all(this.#parts.map((p) => p.close()));
    await this.drain.finish(hard ? 0 : graceMs);
    await closed;
    await Promise.all([closeHttpServer(this.#status), this.#admin.close()]);
    // No downstream connection is left, so no upstream answer has anyone waiting for it.
    await this.pools.destroy();
    await this.rateLimiting.close();
    await this.accessLog.close();
  }
}
