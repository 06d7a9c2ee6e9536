// The sidecar role: the shared proxy runtime (core/runtime) for one workload — its identity (already
// obtained) and configuration stream — plus its two listeners: the inbound side (15006, mTLS in →
// authentication → authorization → app) and the outbound side (15001, the app's HTTP proxy → routes
// → mTLS out, with the gateway's traffic policy). Behaviour and lifecycle live in core.

import type { HttpLimits } from '../core/proxy/http-limits.js';
import type { Logger } from 'pino';
import type { IdentityProvider } from '../core/pki/types.js';
import type { SnapshotHolder } from '../core/snapshot/holder.js';
import { ProxyRuntime } from '../core/runtime/proxy-runtime.js';
import { identityMismatch } from '../core/pki/spiffe.js';
import type { SidecarRole } from '../core/snapshot/snapshot.js';
import type { ConfigSource } from '../core/sources/source.js';
import { describeWorkload } from '../core/telemetry/workload.js';
import { createInboundListener, type InboundListener } from './inbound.js';
import { createOutboundListener, type OutboundListener } from './outbound.js';
import type { OutboundTrafficMode } from '../core/policy/sidecar-scope.js';
import { ConntrackLookup, type OriginalDestinationLookup } from '../core/capture/original-destination.js';
import { INBOUND_PASSTHROUGH_ADDRESS } from '../core/capture/iptables-rules.js';
import type { AppProbers } from '../core/inject/app-probes.js';
import type { AppMetricsTarget } from '../core/inject/prometheus-annotations.js';
import { mergedMetricsHandler } from './merged-metrics.js';
import { createCapture } from './capture.js';
import { createOutboundTcp } from './outbound-tcp.js';
import { createAppProbeServer } from './app-probes.js';
import { UpstreamPools } from '../core/proxy/upstream-pools.js';
import { createCredentialStore } from '../core/tls/credential-store.js';
import type { Nameserver } from './dns/upstream.js';

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
  readonly outboundTrafficPolicy?: OutboundTrafficMode;
  readonly accessLog?: string;
  /**
   * Where a DestinationRule's `credentialName` (TLS origination, MUTUAL) is read:
   * `<certsDir>/<name>/tls.crt|tls.key|ca.crt` (default `certs`).
   */
  readonly certsDir?: string;
  /** Prometheus port of `/stats/prometheus` (0 = any free port; absent = no metrics). */
  readonly metricsPort?: number;
  /** The workload's name in metrics and traces (default from its labels: `app-version`, `app`). */
  readonly workloadName?: string;
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
  /**
   * Istio's agent port (probes, merged metrics, POST /quitquitquit). Given (the CLI gives it in a pod),
   * it listens; absent, 15020 listens only when there are probers or merged metrics.
   */
  readonly probePort?: number;
  /** POST /quitquitquit on the probe port or the admin port asks for this. */
  readonly onQuit?: () => void;
  /**
   * Serve the merged metrics on `probePort` (injection's ISTIO_PROMETHEUS_ANNOTATIONS): the sidecar's
   * Istio series, then the app's own from `app` when the pod named where they are.
   */
  readonly mergedMetrics?: { readonly app?: AppMetricsTarget };
  /** DNS capture (ISTIO_META_DNS_CAPTURE): the DNS proxy, loaded only then (dns/dns-proxy.ts). */
  readonly dns?: SidecarDns;
}

export interface SidecarDns {
  /** Where it listens, UDP and TCP, on 127.0.0.1 (default 15053; 0 = any free port). */
  readonly port?: number;
  /** Where names the mesh does not know are forwarded: the pod's nameservers. */
  readonly nameservers: readonly Nameserver[];
  /** The pod's first search domain: expansions of mesh names under it are answered with a CNAME. */
  readonly searchDomain?: string;
  /** ISTIO_META_DNS_AUTO_ALLOCATE: ServiceEntries without addresses get one. */
  readonly autoAllocate?: boolean;
}

export interface RunningSidecar {
  readonly inboundPort: number;
  readonly outboundPort: number;
  readonly statusPort: number;
  readonly adminPort: number;
  /** 0 when metrics are off. */
  readonly metricsPort: number;
  /** 0 when the probe port does not listen (no port given, no app probe rewritten, no metrics merged). */
  readonly probePort: number;
  /** 0 when DNS capture is off. */
  readonly dnsPort: number;
  readonly holder: SnapshotHolder;
  close(): Promise<void>;
  destroy(): Promise<void>;
  /**
   * SIGTERM: readiness fails at once, both sides keep serving for `seconds` (HTTP/1 responses carry
   * `Connection: close`, HTTP/2 clients are sent GOAWAY), then close and let in-flight requests finish;
   * at the drain deadline whatever is left is cut.
   */
  drain(seconds: number): Promise<void>;
  /** EXIT_ON_ZERO_ACTIVE_CONNECTIONS: drain at least `minSeconds`, then stop once no connection is open. */
  drainUntilIdle(minSeconds: number): Promise<void>;
  /**
   * After POST /quitquitquit: readiness fails and the listeners close at once, with no drain period
   * (Istio's agent skips its drain too); requests still in flight get QUIT_GRACE_MS, then are cut.
   */
  quit(): Promise<void>;
  /** POST /drain came (a native sidecar's preStop): the drain is under way, SIGTERM need not wait again. */
  readonly drainRequested: boolean;
}

/** What requests in flight get after a quit: the pod's app has said it is done, so they should be few. */
export const QUIT_GRACE_MS = 1000;

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
    ...(opts.dns?.autoAllocate ? { dnsAutoAllocate: true } : {}),
  };
  const rt = new ProxyRuntime({
    name: 'meshgate-sidecar',
    source: opts.source,
    identity: opts.identity,
    workload: { namespace: opts.namespace, labels: opts.labels },
    telemetry: {
      role: 'sidecar',
      self: describeWorkload({ namespace: opts.namespace, labels: opts.labels, serviceAccount: opts.serviceAccount, ...(opts.workloadName ? { workload: opts.workloadName } : {}) }),
      ...(opts.metricsPort !== undefined ? { metricsPort: opts.metricsPort } : {}),
    },
    ...(opts.logger ? { logger: opts.logger } : {}),
    ...(opts.accessLog !== undefined ? { accessLog: opts.accessLog } : {}),
    ...(opts.random ? { random: opts.random } : {}),
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.redisUrl ? { redisUrl: opts.redisUrl } : {}),
    ...(opts.trustedProxies !== undefined ? { trustedProxies: opts.trustedProxies } : {}),
    ...(opts.drainDeadlineSeconds !== undefined ? { drainDeadlineSeconds: opts.drainDeadlineSeconds } : {}),
    ...(opts.limits ? { limits: opts.limits } : {}),
    certsDir: opts.certsDir ?? 'certs',
    ...(opts.onQuit ? { onQuit: opts.onQuit } : {}),
  });
  const { log } = rt;
  // Under capture the app is reached on the pod's address from 127.0.0.6, which the rules let through.
  const appPools = opts.capture ? new UpstreamPools({ localAddress: INBOUND_PASSTHROUGH_ADDRESS }) : rt.pools;
  // Sidecar ingress listeners' `tls` files (Istio takes no credentialName there), watched for rotation.
  const credentials = createCredentialStore({ certsDir: '.', logger: log });
  rt.add({ close: () => credentials.close(), destroy: () => void credentials.close() });
  const inboundFor = (appPort: number): InboundListener => {
    const listener = createInboundListener({
      identity: opts.identity,
      holder: rt.holder,
      security: rt.security,
      appPort,
      workload: { namespace: opts.namespace, labels: opts.labels },
      appHost: opts.appHost ?? '127.0.0.1',
      ...(opts.capture ? { appLocalAddress: INBOUND_PASSTHROUGH_ADDRESS } : {}),
      pools: appPools,
      meshPools: rt.pools,
      accessLog: rt.accessLog,
      peerMetadata: rt.accessLog.peerMetadata,
      log,
      drain: rt.drain,
      credentials,
      breaker: (cluster) => rt.live.breaker(cluster),
      rateLimits: rt.rateLimiting.context,
      ...(opts.limits ? { limits: opts.limits } : {}),
    });
    rt.add(listener);
    return listener;
  };
  const inbound: InboundListener = inboundFor(opts.appPort);
  const tcp = createOutboundTcp({ holder: rt.holder, identity: opts.identity, connector: rt.pools.connector, accessLog: rt.accessLog, peerMetadata: rt.accessLog.peerMetadata, random: rt.random, log });
  const outbound: OutboundListener = createOutboundListener({ ctx: rt.ctx, log, tcp });
  rt.add(outbound);
  const inboundByPort = new Map<number, InboundListener>([[opts.appPort, inbound]]);
  const capture = opts.capture
    ? createCapture({
        originalDestination: opts.originalDestination ?? new ConntrackLookup(),
        outbound,
        tcp,
        inboundFor: (port) => {
          let l = inboundByPort.get(port);
          if (!l) inboundByPort.set(port, (l = inboundFor(port)));
          return l;
        },
        defaultAppPort: opts.appPort > 0 ? opts.appPort : undefined,
        log,
        drain: rt.drain,
        ...(opts.limits ? { limits: opts.limits } : {}),
      })
    : undefined;
  if (capture) rt.add(capture);
  const metrics = opts.mergedMetrics
    ? mergedMetricsHandler({ own: () => rt.accessLog.metrics?.registry, log, ...(opts.mergedMetrics.app ? { app: opts.mergedMetrics.app } : {}) })
    : undefined;
  // POST /drain: the pod is stopping and the app still runs; readiness fails and clients are told to
  // move now, serving goes on until SIGTERM (Istio's agent then exits without a second drain).
  let drainRequested = false;
  const drainNow = (): void => {
    if (!drainRequested && !rt.drain.draining) log.info('drain requested (POST /drain): readiness fails now, serving continues until SIGTERM');
    drainRequested = true;
    rt.drain.start();
  };
  const probes = opts.probePort !== undefined || (opts.appProbers && Object.keys(opts.appProbers).length > 0) || metrics
    ? createAppProbeServer({
        probers: opts.appProbers ?? {},
        appHost: opts.appHost ?? '127.0.0.1',
        ...(opts.capture ? { localAddress: INBOUND_PASSTHROUGH_ADDRESS } : {}),
        ...(metrics ? { metrics } : {}),
        ...(opts.onQuit ? { quit: opts.onQuit } : {}),
        drain: drainNow,
      })
    : undefined;
  if (probes) rt.add({ close: () => probes.close(), destroy: () => probes.close() });
  // The runtime's pools go when the runtime stops; the app's own pools (capture) right after.
  const thenAppPools = async (stopped: Promise<void>): Promise<void> => {
    await stopped;
    if (appPools !== rt.pools) await appPools.destroy();
  };
  const ports = { inbound: 0, outbound: 0, probe: 0, dns: 0 };

  await rt.start({
    role: () => role,
    afterConfig: async () => {
      ports.inbound = await (capture ?? { listenInbound: inbound.listen }).listenInbound(opts.inboundPort ?? 15006, opts.listenHost ?? '0.0.0.0');
      ports.outbound = await (capture ?? { listenOutbound: outbound.listen }).listenOutbound(opts.outboundPort ?? 15001, '127.0.0.1');
      ports.probe = probes ? await probes.listen(opts.probePort ?? 15020, opts.listenHost ?? '0.0.0.0') : 0;
      if (opts.dns) ports.dns = await startDns(opts.dns, opts.namespace, rt);
    },
    statusHost: opts.listenHost ?? '0.0.0.0',
    statusPort: opts.statusPort ?? 15021,
    adminPort: opts.adminPort ?? 15000,
  });
  log.info({ ...ports, status: rt.statusPort, admin: rt.adminPort, metrics: rt.metricsPort, app: opts.appPort, ...(opts.capture ? { capture: true } : {}), identity: opts.identity.current().spiffeId }, 'sidecar serving');

  return {
    inboundPort: ports.inbound,
    outboundPort: ports.outbound,
    statusPort: rt.statusPort,
    adminPort: rt.adminPort,
    metricsPort: rt.metricsPort,
    probePort: ports.probe,
    dnsPort: ports.dns,
    holder: rt.holder,
    close: () => thenAppPools(rt.close()),
    destroy: () => thenAppPools(rt.destroy()),
    drain: (seconds) => thenAppPools(rt.drainFor(seconds)),
    drainUntilIdle: (minSeconds) => thenAppPools(rt.drainUntilIdle(minSeconds)),
    quit: () => {
      log.info({ graceMs: QUIT_GRACE_MS }, 'quit requested (POST /quitquitquit): stopping without a drain period');
      return thenAppPools(rt.stop(false, QUIT_GRACE_MS));
    },
    get drainRequested() {
      return drainRequested;
    },
  };
}

/**
 * The DNS proxy, on 127.0.0.1 where the capture rules send the pod's DNS. Its modules (and dns-packet)
 * are loaded here, only when DNS capture is on: a sidecar without it keeps its idle memory.
 */
async function startDns(dns: SidecarDns, namespace: string, rt: ProxyRuntime): Promise<number> {
  const [{ createDnsProxy }, { Upstream }] = await Promise.all([import('./dns/dns-proxy.js'), import('./dns/upstream.js')]);
  const proxy = createDnsProxy({ snapshot: () => rt.holder.current(), upstream: new Upstream(dns.nameservers), namespace, ...(dns.searchDomain ? { searchDomain: dns.searchDomain } : {}), log: rt.log.child({ component: 'dns' }) });
  rt.add({ close: () => proxy.close(), destroy: () => void proxy.close() });
  return proxy.listen(dns.port ?? 15053, '127.0.0.1');
}
