// The sidecar role: wires one workload's proxy — its identity (already obtained), its configuration
// stream, the inbound side (15006, mTLS in → authorization → app), the outbound side (15001, the
// app's HTTP proxy → routes → mTLS out, with the gateway's traffic policy: circuit breakers and
// outlier ejections that outlive configuration pushes, locality, rate limits), and the status and
// admin ports. Behaviour lives in core.

import type { HttpLimits } from '../core/proxy/http-limits.js';
import { pino, type Logger } from 'pino';
import type { IdentityProvider } from '../core/pki/types.js';
import { identityMismatch } from '../core/pki/spiffe.js';
import { LiveClusters } from '../core/policy/live-clusters.js';
import { WorkloadSecurityCache } from '../core/policy/workload-security.js';
import { createRateLimiting } from '../core/proxy/rate-limiting.js';
import { UpstreamPools } from '../core/proxy/upstream-pools.js';
import { ConnectionDrain, DEFAULT_DRAIN_DEADLINE_SECONDS } from '../core/proxy/drain.js';
import { SnapshotHolder } from '../core/snapshot/holder.js';
import { Reloader } from '../core/snapshot/reloader.js';
import type { SidecarRole } from '../core/snapshot/snapshot.js';
import type { ConfigSource } from '../core/sources/source.js';
import { createAccessLog } from '../core/telemetry/access-log.js';
import { createStatusServer } from '../core/admin/status-server.js';
import { createAdminServer } from '../core/admin/admin-server.js';
import { closeFastify, listenFastify } from '../core/admin/fastify-listen.js';
import { createInboundListener, type InboundListener } from './inbound.js';
import { createOutboundListener, type OutboundListener, type OutboundTrafficPolicy } from './outbound.js';
import { ConntrackLookup, type OriginalDestinationLookup } from '../core/capture/original-destination.js';
import { INBOUND_PASSTHROUGH_ADDRESS } from '../core/capture/iptables-rules.js';
import type { AppProbers } from '../core/inject/app-probes.js';
import { createCapture } from './capture.js';
import { createAppProbeServer } from './app-probes.js';

export interface SidecarOptions {
  /** The workload certificate source; started before the sidecar opens any port. */
  readonly identity: IdentityProvider;
  readonly source: ConfigSource;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly appPort: number;
  /** Where the app listens (default 127.0.0.1). */
  readonly appHost?: string;
  /** 0 = any free port. */
  readonly inboundPort?: number;
  readonly outboundPort?: number;
  readonly statusPort?: number;
  readonly adminPort?: number;
  /** Address the inbound side listens on (default 0.0.0.0); outbound, status and admin stay on loopback. */
  readonly listenHost?: string;
  readonly outboundTrafficPolicy?: OutboundTrafficPolicy;
  readonly accessLog?: string;
  /** Where the workload runs, `region/zone/subzone`, for locality-aware load balancing. */
  readonly locality?: string;
  /** Redis for RateLimitPolicy limits with `store: redis` on the outbound side. */
  readonly redisUrl?: string;
  /** Proxies between the app and the sidecar that append to x-forwarded-for (default 0). */
  readonly trustedProxies?: number;
  /** Request header limits, accept-stage timeouts and upgrade types (docs/request-limits.md). */
  readonly limits?: HttpLimits;
  readonly logger?: Logger;
  readonly random?: () => number;
  /** Seconds from the start of a drain (or a close) after which whatever is still open is cut (default 25). */
  readonly drainDeadlineSeconds?: number;
  /** Clock for outlier ejections, epoch ms (default Date.now). */
  readonly now?: () => number;
  /** Transparent capture (after `meshgate iptables`): the ports take redirected connections (capture.ts). */
  readonly capture?: boolean;
  /** Where captured connections were going (default: the namespace's conntrack table). */
  readonly originalDestination?: OriginalDestinationLookup;
  /** The app's probes rewritten at injection (ISTIO_KUBE_APP_PROBERS), served on `probePort`. */
  readonly appProbers?: AppProbers;
  /** Default 15020; listens only when there are probers. */
  readonly probePort?: number;
}

export interface RunningSidecar {
  readonly inboundPort: number;
  readonly outboundPort: number;
  readonly statusPort: number;
  readonly adminPort: number;
  /** 0 when no app probe was rewritten. */
  readonly probePort: number;
  readonly holder: SnapshotHolder;
  close(): Promise<void>;
  destroy(): Promise<void>;
  /**
   * SIGTERM: readiness fails at once, both sides keep serving for `seconds` (HTTP/1 responses carry
   * `Connection: close`, HTTP/2 clients are sent GOAWAY), then close and let in-flight requests finish;
   * at the drain deadline whatever is left is cut.
   */
  drain(seconds: number): Promise<void>;
}

export async function startSidecar(opts: SidecarOptions): Promise<RunningSidecar> {
  // Policies are chosen by the namespace and labels given here; the peers see the certificate's identity.
  const mismatch = identityMismatch(opts.identity.current().spiffeId, opts);
  if (mismatch) throw new Error(`sidecar refused to start: ${mismatch}`);
  const log = opts.logger ?? pino({ name: 'meshgate-sidecar' }, pino.destination(2));
  const holder = new SnapshotHolder();
  const pools = new UpstreamPools();
  const accessLog = createAccessLog(opts.accessLog ?? 'stdout');
  const random = opts.random ?? Math.random;
  const outboundTrafficPolicy = opts.outboundTrafficPolicy ?? 'ALLOW_ANY';
  const role: SidecarRole = {
    kind: 'sidecar',
    namespace: opts.namespace,
    labels: opts.labels,
    serviceAccount: opts.serviceAccount,
    outboundTrafficPolicy,
    ...(opts.locality ? { locality: opts.locality } : {}),
  };
  // One set of breaker counters and ejections for the sidecar's life: a push must not reset them.
  const live = new LiveClusters(opts.now ? { now: opts.now } : {});
  const reloader = new Reloader(opts.source, holder, role, { random, load: pools, live }, log);
  const rateLimiting = createRateLimiting({
    holder,
    logger: log.child({ component: 'ratelimit' }),
    ...(opts.redisUrl ? { redisUrl: opts.redisUrl } : {}),
    ...(opts.trustedProxies !== undefined ? { trustedProxies: opts.trustedProxies } : {}),
  });
  const drain = new ConnectionDrain();
  const deadlineMs = (opts.drainDeadlineSeconds ?? DEFAULT_DRAIN_DEADLINE_SECONDS) * 1000;
  const ctx = { holder, pools, accessLog, random, drain, identity: opts.identity, rateLimits: rateLimiting.context, ...(opts.limits ? { limits: opts.limits } : {}) };
  // Under capture the app is reached on the pod's address from 127.0.0.6, which the rules let through.
  const appPools = opts.capture ? new UpstreamPools({ localAddress: INBOUND_PASSTHROUGH_ADDRESS }) : pools;
  const inboundFor = (appPort: number): InboundListener =>
    createInboundListener({
      identity: opts.identity,
      holder,
      security: new WorkloadSecurityCache({ namespace: opts.namespace, labels: opts.labels }),
      appPort,
      appHost: opts.appHost ?? '127.0.0.1',
      ...(opts.capture ? { appLocalAddress: INBOUND_PASSTHROUGH_ADDRESS } : {}),
      pools: appPools,
      accessLog,
      log,
      drain,
      ...(opts.limits ? { limits: opts.limits } : {}),
    });
  const inbound: InboundListener = inboundFor(opts.appPort);
  const outbound: OutboundListener = createOutboundListener({ ctx, outboundTrafficPolicy, log });
  const inboundByPort = new Map<number, InboundListener>([[opts.appPort, inbound]]);
  const capture = opts.capture
    ? createCapture({
        originalDestination: opts.originalDestination ?? new ConntrackLookup(),
        outbound,
        inboundFor: (port) => {
          let l = inboundByPort.get(port);
          if (!l) inboundByPort.set(port, (l = inboundFor(port)));
          return l;
        },
        defaultAppPort: opts.appPort > 0 ? opts.appPort : undefined,
        log,
      })
    : undefined;
  const probes = opts.appProbers && Object.keys(opts.appProbers).length > 0
    ? createAppProbeServer({ probers: opts.appProbers, appHost: opts.appHost ?? '127.0.0.1', ...(opts.capture ? { localAddress: INBOUND_PASSTHROUGH_ADDRESS } : {}) })
    : undefined;
  const status = createStatusServer({ ready: () => holder.current() !== undefined && !drain.draining });
  const admin = createAdminServer(holder, pools, rateLimiting.limiters);
  let ports = { inbound: 0, outbound: 0, status: 0, admin: 0, probe: 0 };

  const stopAll = async (hard: boolean, graceMs = deadlineMs): Promise<void> => {
    drain.start();
    await reloader.close().catch(() => undefined);
    const inbounds = [...inboundByPort.values()];
    if (hard) {
      capture?.destroy();
      for (const l of inbounds) l.destroy();
      outbound.destroy();
    }
    const closed = Promise.all([...inbounds.map((l) => l.close()), outbound.close(), capture?.close(), probes?.close()]);
    await drain.finish(hard ? 0 : graceMs);
    await closed;
    await Promise.all([closeFastify(status), closeFastify(admin)]);
    // No downstream connection is left, so no upstream answer has anyone waiting for it.
    await pools.destroy();
    if (appPools !== pools) await appPools.destroy();
    await rateLimiting.close();
    accessLog.flush();
  };

  try {
    await rateLimiting.start();
    await reloader.start();
    ports = {
      inbound: await (capture ?? { listenInbound: inbound.listen }).listenInbound(opts.inboundPort ?? 15006, opts.listenHost ?? '0.0.0.0'),
      outbound: await (capture ?? { listenOutbound: outbound.listen }).listenOutbound(opts.outboundPort ?? 15001, '127.0.0.1'),
      status: await listenFastify(status, opts.statusPort ?? 15021, opts.listenHost ?? '0.0.0.0'),
      admin: await listenFastify(admin, opts.adminPort ?? 15000, '127.0.0.1'),
      probe: probes ? await probes.listen(opts.probePort ?? 15020, opts.listenHost ?? '0.0.0.0') : 0,
    };
  } catch (err) {
    await stopAll(true);
    throw err;
  }
  log.info({ ...ports, app: opts.appPort, ...(opts.capture ? { capture: true } : {}), identity: opts.identity.current().spiffeId }, 'sidecar serving');

  let stopping: Promise<void> | undefined;
  const stop = (hard: boolean, graceMs = deadlineMs): Promise<void> => {
    // Also cuts short a drain period or grace already under way.
    if (hard) drain.destroy();
    return (stopping ??= stopAll(hard, graceMs));
  };
  return {
    inboundPort: ports.inbound,
    outboundPort: ports.outbound,
    statusPort: ports.status,
    adminPort: ports.admin,
    probePort: ports.probe,
    holder,
    close: () => stop(false),
    destroy: () => stop(true),
    drain: (seconds) => {
      if (!drain.draining) log.info({ seconds }, 'draining: readiness fails now, serving continues until the drain period ends');
      return drain.period(seconds * 1000).then(() => stop(false, deadlineMs - seconds * 1000));
    },
  };
}
