// The gateway role: wires a config source, the snapshot holder, upstream pools, one listener per
// Gateway port, the status port and the admin port. Everything here is wiring; behaviour lives in core.

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
import { createPortListener, type PortListener } from './port-listener.js';
import { createCredentialStore } from '../core/tls/credential-store.js';
import { AcmeManager } from './acme/acme-manager.js';
import type { ChallengeMap } from './acme/acme-order.js';
import { createStatusServer } from '../core/admin/status-server.js';
import { createAdminServer } from '../core/admin/admin-server.js';
import { closeFastify, listenFastify } from '../core/admin/fastify-listen.js';
import type { IdentityProvider } from '../core/pki/types.js';

export interface GatewayOptions {
  /** Folder of Istio YAML, watched; used when no `source` is given. */
  readonly configDir?: string;
  /** Where configuration comes from (a KubeSource, say); replaces `configDir`. */
  readonly source?: ConfigSource;
  /** Gateway port number → port to listen on (0 = any free port). */
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
}

export interface RunningGateway {
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
   * being served for `seconds` (an endpoint removal takes that long to reach every client), HTTP/1
   * responses carry `Connection: close`, then listeners close and in-flight requests finish.
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
  const reloader = new Reloader(
    source,
    holder,
    { kind: 'gateway', labels: opts.labels ?? { istio: 'ingressgateway' }, namespace: opts.namespace ?? 'istio-system', ...(opts.locality ? { locality: opts.locality } : {}) },
    { random, load: pools, live },
    log,
  );
  const rateLimiting = createRateLimiting({
    holder,
    logger: log.child({ component: 'ratelimit' }),
    ...(opts.redisUrl ? { redisUrl: opts.redisUrl } : {}),
    ...(opts.trustedProxies !== undefined ? { trustedProxies: opts.trustedProxies } : {}),
  });
  const { limiters, context: rateLimits } = rateLimiting;
  let draining = false;
  const status = createStatusServer({ ready: () => holder.current() !== undefined && !draining });
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
  const listeners: PortListener[] = [];
  const listenPorts = new Map<number, number>();
  let statusPort = 0;
  let adminPort = 0;

  const stopAll = async (hard: boolean): Promise<void> => {
    draining = true;
    await reloader.close().catch(() => undefined);
    if (hard) listeners.forEach((l) => l.destroy());
    await Promise.all(listeners.map((l) => l.close()));
    await Promise.all([closeFastify(status), closeFastify(admin)]);
    await (hard ? pools.destroy() : pools.close());
    await (hard ? acme.destroy() : acme.close());
    await credentials.close();
    await rateLimiting.close();
    accessLog.flush();
  };

  try {
    // Connected before traffic, so the first requests already share counters; unreachable is fine too.
    await rateLimiting.start();
    await reloader.start();
    for (const [gatewayPort, listenPort] of opts.ports) {
      const l = createPortListener(gatewayPort, {
        ctx: { holder, pools, accessLog, random, draining: () => draining, rateLimits, ...(opts.identity ? { identity: opts.identity } : {}) },
        credentials,
        log,
        acmeChallenge: (token) => acme.challengeResponse(token),
      });
      listeners.push(l);
      listenPorts.set(gatewayPort, await l.listen(listenPort, host));
    }
    statusPort = await listenFastify(status, opts.statusPort ?? 15021, host);
    adminPort = await listenFastify(admin, opts.adminPort ?? 15000, '127.0.0.1');
    // Only once the HTTP ports listen can the ACME server's HTTP-01 validation reach us.
    if (opts.acmeOrders ?? true) acme.start();
  } catch (err) {
    await stopAll(true);
    throw err;
  }
  log.info({ ports: Object.fromEntries(listenPorts), statusPort, adminPort, config: source.description }, 'gateway serving');

  let closing: Promise<void> | undefined;
  return {
    listenPorts,
    statusPort,
    adminPort,
    holder,
    rateLimitStats: () => limiters.stats(),
    close: () => (closing ??= stopAll(false)),
    drain: (seconds) => {
      if (closing) return closing;
      draining = true;
      log.info({ seconds }, 'draining: readiness fails now, serving continues until the drain period ends');
      closing = new Promise<void>((r) => setTimeout(r, Math.max(0, seconds) * 1000)).then(() => stopAll(false));
      return closing;
    },
    destroy: () => (closing ??= stopAll(true)),
  };
}
