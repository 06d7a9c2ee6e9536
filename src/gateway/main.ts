// The gateway role: wires a config source, the snapshot holder, upstream pools, one listener per
// listen port (listener-set.ts), the status port and the admin port. Everything here is wiring;
// behaviour lives in core.

import type { HttpLimits } from '../core/proxy/http-limits.js';
import { pino, type Logger } from 'pino';
import { FileSource } from '../core/sources/file-source.js';
import type { ConfigSource } from '../core/sources/source.js';
import { SnapshotHolder } from '../core/snapshot/holder.js';
import { Reloader } from '../core/snapshot/reloader.js';
import { UpstreamPools } from '../core/proxy/upstream-pools.js';
import { LiveClusters } from '../core/policy/live-clusters.js';
import { createAccessLog } from '../core/telemetry/access-log.js';
import type { RateLimitStats } from '../core/policy/rate-limiters.js';
import { createRateLimiting } from '../core/proxy/rate-limiting.js';
import { ConnectionDrain, DEFAULT_DRAIN_DEADLINE_SECONDS } from '../core/proxy/drain.js';
import { createPortListener } from './port-listener.js';
import { ListenerSet } from './listener-set.js';
import { createCredentialStore } from '../core/tls/credential-store.js';
import { AcmeManager } from './acme/acme-manager.js';
import type { ChallengeMap } from './acme/acme-order.js';
import { createStatusServer } from '../core/admin/status-server.js';
import { createAdminServer } from '../core/admin/admin-server.js';
import { closeFastify, listenFastify } from '../core/admin/fastify-listen.js';
import { listenFor } from '../core/proxy/listen.js';
import type { IdentityProvider } from '../core/pki/types.js';
import type { Snapshot } from '../core/snapshot/snapshot.js';

export interface GatewayOptions {
  /** Folder of Istio YAML, watched; used when no `source` is given. */
  readonly configDir?: string;
  /** Where configuration comes from (a KubeSource, say); replaces `configDir`. */
  readonly source?: ConfigSource;
  /**
   * The gateway Service: Gateway port number → port to listen on (its targetPort; 0 = any free
   * port). A Gateway server port not in it is listened on as-is.
   */
  readonly ports: ReadonlyMap<number, number>;
  readonly listenHost?: string;
  /** Status port (default 15021); 0 = any free port. */
  readonly statusPort?: number;
  /** Admin port on loopback (default 15000); 0 = any free port. */
  readonly adminPort?: number;
  readonly labels?: Record<string, string>;
  /** `off`, `stdout` (default) or a file path. */
  readonly accessLog?: string;
  /** The gateway's namespace (DestinationRule lookup order starts there). */
  readonly namespace?: string;
  /** Where `credentialName` certificates live: `<certsDir>/<name>/tls.crt|tls.key|ca.crt` (default `certs`). */
  readonly certsDir?: string;
  /** PEM of a CA to trust for ACME servers (a private ACME CA), on top of the system roots. */
  readonly acmeCa?: string;
  /** Redis for RateLimitPolicy counters with `store: redis`, shared by every replica (`redis://host:6379`). */
  readonly redisUrl?: string;
  /**
   * Proxies in front of the gateway that append to x-forwarded-for: the client address is the N-th
   * entry from its right (Envoy's xff_num_trusted_hops; default 0, the connection's peer).
   */
  readonly trustedProxies?: number;
  /** Request header limits, accept-stage timeouts and upgrade types (docs/request-limits.md). */
  readonly limits?: HttpLimits;
  readonly logger?: Logger;
  readonly random?: () => number;
  /** The gateway's workload identity: Istio mTLS to mesh endpoints (auto mTLS, ISTIO_MUTUAL). */
  readonly identity?: IdentityProvider;
  /** Several workers: whether this one orders ACME certificates (one does), and the map they share. */
  readonly acmeOrders?: boolean;
  readonly acmeChallenges?: ChallengeMap;
  /** Where the gateway runs, `region/zone/subzone`, for locality-aware load balancing. */
  readonly locality?: string;
  /** Clock for outlier ejections, epoch ms (default Date.now). */
  readonly now?: () => number;
  /** Seconds from the start of a drain (or a close) after which whatever is still open is cut (default 25). */
  readonly drainDeadlineSeconds?: number;
  /** Gateway API Gateways to serve (`ns/name`); default every Gateway of meshgate's classes. */
  readonly gatewayNames?: ReadonlySet<string>;
  /** Where each snapshot's Gateway API status goes (the API server's status subresource, in a cluster). */
  readonly gatewayApiStatus?: { write(snapshot: Snapshot): unknown; close(): Promise<void> };
}

export interface RunningGateway {
  /** Gateway port → the port it listens on, for `ports` and for the server ports listened on as-is. */
  readonly listenPorts: ReadonlyMap<number, number>;
  readonly statusPort: number;
  readonly adminPort: number;
  readonly holder: SnapshotHolder;
  /** Requests allowed and refused by rate limits, and how Redis is doing when it is used. */
  rateLimitStats(): RateLimitStats;
  close(): Promise<void>;
  destroy(): Promise<void>;
  /**
   * Graceful stop (SIGTERM): readiness fails at once so load balancers stop sending, requests keep
   * being served for `seconds` (an endpoint removal takes that long to reach every client) while
   * HTTP/1 responses carry `Connection: close` and HTTP/2 clients are sent GOAWAY, then listeners
   * close and in-flight requests finish; at the drain deadline whatever is left is cut.
   */
  drain(seconds: number): Promise<void>;
}

export async function startGateway(opts: GatewayOptions): Promise<RunningGateway> {
  const log = opts.logger ?? pino({ name: 'meshgate-gateway' }, pino.destination(2));
  const host = opts.listenHost ?? '0.0.0.0';
  const holder = new SnapshotHolder();
  const certsDir = opts.certsDir ?? 'certs';
  const pools = new UpstreamPools({ certsDir, logger: log.child({ component: 'upstream-tls' }) });
  const accessLog = createAccessLog(opts.accessLog ?? 'stdout');
  const random = opts.random ?? Math.random;
  const live = new LiveClusters(opts.now ? { now: opts.now } : {});
  if (!opts.source && opts.configDir === undefined) throw new Error('startGateway needs configDir or source');
  const source = opts.source ?? new FileSource({ dir: opts.configDir! });
  const rateLimiting = createRateLimiting({
    holder,
    logger: log.child({ component: 'ratelimit' }),
    ...(opts.redisUrl ? { redisUrl: opts.redisUrl } : {}),
    ...(opts.trustedProxies !== undefined ? { trustedProxies: opts.trustedProxies } : {}),
  });
  const { limiters, context: rateLimits } = rateLimiting;
  const drain = new ConnectionDrain();
  const deadlineMs = (opts.drainDeadlineSeconds ?? DEFAULT_DRAIN_DEADLINE_SECONDS) * 1000;
  const status = createStatusServer({ ready: () => holder.current() !== undefined && !drain.draining });
  const admin = createAdminServer(holder, pools, limiters);
  const credentials = createCredentialStore({ certsDir, logger: log });
  const acme = new AcmeManager({
    certsDir,
    holder,
    logger: log.child({ component: 'acme' }),
    random,
    ...(opts.acmeCa ? { acmeCa: opts.acmeCa } : {}),
    ...(opts.acmeChallenges ? { challenges: opts.acmeChallenges } : {}),
  });
  const ctx = { holder, pools, accessLog, random, drain, rateLimits, ...(opts.identity ? { identity: opts.identity } : {}), ...(opts.limits ? { limits: opts.limits } : {}) };
  const listeners = new ListenerSet({
    ports: opts.ports,
    host,
    log,
    create: (servicePorts) => createPortListener(servicePorts, { ctx, credentials, log, acmeChallenge: (token) => acme.challengeResponse(token) }),
  });
  let reloader: Reloader | undefined;
  let statusPort = 0;
  let adminPort = 0;

  const stopAll = async (hard: boolean, graceMs = deadlineMs): Promise<void> => {
    drain.start();
    await reloader?.close().catch(() => undefined);
    if (hard) listeners.destroy();
    const closed = listeners.close();
    await drain.finish(hard ? 0 : graceMs);
    await closed;
    await Promise.all([closeFastify(status), closeFastify(admin)]);
    // No downstream connection is left, so no upstream answer has anyone waiting for it.
    await pools.destroy();
    await (hard ? acme.destroy() : acme.close());
    await credentials.close();
    await opts.gatewayApiStatus?.close();
    await rateLimiting.close();
    accessLog.flush();
  };

  try {
    // Connected before traffic, so the first requests already share counters; unreachable is fine too.
    await rateLimiting.start();
    // The Service's ports listen first (connections wait for the first configuration): listeners
    // are compiled for the ports they got, so a server port equal to one of them joins its listener.
    const servicePorts = await listeners.listenServicePorts();
    const role = { kind: 'gateway' as const, labels: opts.labels ?? { istio: 'ingressgateway' }, namespace: opts.namespace ?? 'istio-system', ports: servicePorts, ...(opts.locality ? { locality: opts.locality } : {}), ...(opts.gatewayNames ? { gatewayNames: opts.gatewayNames } : {}) };
    reloader = new Reloader(source, holder, role, { random, load: pools, live }, log);
    holder.onSwap((s) => void listeners.sync(s));
    if (opts.gatewayApiStatus) holder.onSwap((s) => void opts.gatewayApiStatus!.write(s));
    await reloader.start();
    const first = holder.current();
    if (first) await listeners.sync(first);
    if (first) void opts.gatewayApiStatus?.write(first);
    const wantStatus = opts.statusPort ?? 15021;
    const wantAdmin = opts.adminPort ?? 15000;
    statusPort = await listenFor('status port (--status-port)', host, wantStatus, () => listenFastify(status, wantStatus, host));
    adminPort = await listenFor('admin port (--admin-port)', '127.0.0.1', wantAdmin, () => listenFastify(admin, wantAdmin, '127.0.0.1'));
    // Only once the HTTP ports listen can the ACME server's HTTP-01 validation reach us.
    if (opts.acmeOrders ?? true) acme.start();
  } catch (err) {
    await stopAll(true);
    throw err;
  }
  log.info({ ports: Object.fromEntries(listeners.listenPorts), statusPort, adminPort, config: source.description }, 'gateway serving');

  let stopping: Promise<void> | undefined;
  const stop = (hard: boolean, graceMs = deadlineMs): Promise<void> => {
    // Also cuts short a drain period or grace already under way.
    if (hard) drain.destroy();
    return (stopping ??= stopAll(hard, graceMs));
  };
  return {
    listenPorts: listeners.listenPorts,
    statusPort,
    adminPort,
    holder,
    rateLimitStats: () => limiters.stats(),
    close: () => stop(false),
    drain: (seconds) => {
      if (!drain.draining) log.info({ seconds }, 'draining: readiness fails now, serving continues until the drain period ends');
      return drain.period(seconds * 1000).then(() => stop(false, deadlineMs - seconds * 1000));
    },
    destroy: () => stop(true),
  };
}
