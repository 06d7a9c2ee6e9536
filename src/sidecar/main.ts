// The sidecar role: the shared proxy runtime (core/runtime) for one workload — its identity (already
// obtained) and configuration stream — plus its two listeners: the inbound side (15006, mTLS in →
// authentication → authorization → app) and the outbound side (15001, the app's HTTP proxy → routes
// → mTLS out, with the gateway's traffic policy). Behaviour and lifecycle live in core.

import type { Logger } from 'pino';
import type { IdentityProvider } from '../core/pki/types.js';
import type { SnapshotHolder } from '../core/snapshot/holder.js';
import { ProxyRuntime } from '../core/runtime/proxy-runtime.js';
import { identityMismatch } from '../core/pki/spiffe.js';
import type { SidecarRole } from '../core/snapshot/snapshot.js';
import type { ConfigSource } from '../core/sources/source.js';
import { createInboundListener, type InboundListener } from './inbound.js';
import { createOutboundListener, type OutboundListener, type OutboundTrafficPolicy } from './outbound.js';

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
  readonly logger?: Logger;
  readonly random?: () => number;
  /** Seconds from the start of a drain (or a close) after which whatever is still open is cut (default 25). */
  readonly drainDeadlineSeconds?: number;
  /** Clock for outlier ejections, epoch ms (default Date.now). */
  readonly now?: () => number;
}

export interface RunningSidecar {
  readonly inboundPort: number;
  readonly outboundPort: number;
  readonly statusPort: number;
  readonly adminPort: number;
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
  const outboundTrafficPolicy = opts.outboundTrafficPolicy ?? 'ALLOW_ANY';
  const role: SidecarRole = {
    kind: 'sidecar',
    namespace: opts.namespace,
    labels: opts.labels,
    serviceAccount: opts.serviceAccount,
    outboundTrafficPolicy,
    ...(opts.locality ? { locality: opts.locality } : {}),
  };
  const rt = new ProxyRuntime({
    name: 'meshgate-sidecar',
    source: opts.source,
    identity: opts.identity,
    workload: { namespace: opts.namespace, labels: opts.labels },
    ...(opts.logger ? { logger: opts.logger } : {}),
    ...(opts.accessLog !== undefined ? { accessLog: opts.accessLog } : {}),
    ...(opts.random ? { random: opts.random } : {}),
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.redisUrl ? { redisUrl: opts.redisUrl } : {}),
    ...(opts.trustedProxies !== undefined ? { trustedProxies: opts.trustedProxies } : {}),
    ...(opts.drainDeadlineSeconds !== undefined ? { drainDeadlineSeconds: opts.drainDeadlineSeconds } : {}),
  });
  const { log } = rt;
  const inbound: InboundListener = createInboundListener({
    identity: opts.identity,
    holder: rt.holder,
    security: rt.security,
    appPort: opts.appPort,
    appHost: opts.appHost ?? '127.0.0.1',
    pools: rt.pools,
    accessLog: rt.accessLog,
    log,
    drain: rt.drain,
  });
  const outbound: OutboundListener = createOutboundListener({ ctx: rt.ctx, outboundTrafficPolicy, log });
  rt.add(inbound);
  rt.add(outbound);
  const ports = { inbound: 0, outbound: 0 };

  await rt.start({
    role: () => role,
    afterConfig: async () => {
      ports.inbound = await inbound.listen(opts.inboundPort ?? 15006, opts.listenHost ?? '0.0.0.0');
      ports.outbound = await outbound.listen(opts.outboundPort ?? 15001, '127.0.0.1');
    },
    statusHost: opts.listenHost ?? '0.0.0.0',
    statusPort: opts.statusPort ?? 15021,
    adminPort: opts.adminPort ?? 15000,
  });
  log.info({ ...ports, status: rt.statusPort, admin: rt.adminPort, app: opts.appPort, identity: opts.identity.current().spiffeId }, 'sidecar serving');

  return {
    inboundPort: ports.inbound,
    outboundPort: ports.outbound,
    statusPort: rt.statusPort,
    adminPort: rt.adminPort,
    holder: rt.holder,
    close: () => rt.close(),
    destroy: () => rt.destroy(),
    drain: (seconds) => rt.drainFor(seconds),
  };
}
