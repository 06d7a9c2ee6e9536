// The gateway role: the shared proxy runtime (core/runtime) plus what only an edge has — one
// listener per listen port (listener-set.ts), the credential store for its TLS servers, and ACME.
// Everything here is wiring; behaviour and lifecycle live in core.

import type { HttpLimits } from '../core/proxy/http-limits.js';
import type { Logger } from 'pino';
import { FileSource } from '../core/sources/file-source.js';
import type { SnapshotHolder } from '../core/snapshot/holder.js';
import { ProxyRuntime } from '../core/runtime/proxy-runtime.js';
import type { ConfigSource } from '../core/sources/source.js';
import { describeWorkload } from '../core/telemetry/workload.js';
import { DEFAULT_GATEWAY_LABELS } from '../core/model/gateway-labels.js';
import { DEFAULT_GATEWAY_SERVICE_ACCOUNT } from '../core/model/gateway-names.js';
import { parseSpiffeId } from '../core/pki/spiffe.js';
import type { RateLimitStats } from '../core/policy/rate-limiters.js';
import { createPortListener } from './port-listener.js';
import { ListenerSet } from './listener-set.js';
import { createCredentialStore } from '../core/tls/credential-store.js';
import { AcmeManager } from './acme/acme-manager.js';
import type { ChallengeBoard } from './acme/challenge-board.js';
import type { AcmeElection } from './acme/acme-election.js';
import type { IdentityProvider } from '../core/pki/types.js';
import type { SecretReader, SecretWriter } from '../core/tls/types.js';
import { fileStorage } from './acme/certificate-files.js';
import { secretStorage } from './acme/certificate-secrets.js';
import type { Snapshot } from '../core/snapshot/snapshot.js';
import type { ClusterBreaker } from '../core/policy/circuit-breaker.js';
import { SessionTickets } from '../core/tls/session-tickets.js';

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
  /** What Gateway, AuthorizationPolicy, Telemetry… selectors match; default Istio's ingress gateway's. */
  readonly labels?: Readonly<Record<string, string>>;
  /** `off`, `stdout` (default) or a file path. */
  readonly accessLog?: string;
  /** Prometheus port of `/stats/prometheus` (0 = any free port; absent = no metrics); `'primary'` under `--workers`. */
  readonly metricsPort?: number | 'primary';
  /** The gateway's namespace (DestinationRule lookup order starts there). */
  readonly namespace?: string;
  /** Where `credentialName` certificates live: `<certsDir>/<name>/tls.crt|tls.key|ca.crt` (default `certs`). */
  readonly certsDir?: string;
  /**
   * Cluster mode: `credentialName` is a Secret in the gateway's namespace, read from here instead of
   * certsDir (a KubeSecrets). The gateway starts it before its first configuration and closes it.
   */
  readonly secrets?: SecretReader & SecretWriter & { start(): Promise<void>; close(): Promise<void> };
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
  /** Several workers: whether this one may order ACME certificates (one does), and where they all read HTTP-01 answers. */
  readonly acmeOrders?: boolean;
  readonly acmeChallenges?: ChallengeBoard;
  /**
   * Several replicas (cluster mode, with `secrets`): only the holder of the ACME Lease orders, and
   * HTTP-01 answers go to a Secret every replica reads.
   */
  readonly acmeElection?: AcmeElection;
  /** Where the gateway runs, `region/zone/subzone`, for locality-aware load balancing. */
  readonly locality?: string;
  /** Clock for outlier ejections, epoch ms (default Date.now). */
  readonly now?: () => number;
  /**
   * TLS session ticket keys (`--workers`: the primary's). Default: on, with keys of this process,
   * rotated hourly.
   */
  readonly sessionTickets?: SessionTickets;
  /** Makes each cluster's circuit breaker; `--workers` count limited clusters in the primary. */
  readonly breakers?: (cluster: string) => ClusterBreaker;
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
  /** 0 when metrics are off (or served by the `--workers` primary). */
  readonly metricsPort: number;
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
  const host = opts.listenHost ?? '0.0.0.0';
  const certsDir = opts.certsDir ?? 'certs';
  if (!opts.source && opts.configDir === undefined) throw new Error('startGateway needs configDir or source');
  const source = opts.source ?? new FileSource({ dir: opts.configDir! });
  const labels = opts.labels ?? DEFAULT_GATEWAY_LABELS;
  const namespace = opts.namespace ?? 'istio-system';
  const spiffeId = opts.identity?.current().spiffeId;
  const id = spiffeId ? parseSpiffeId(spiffeId) : undefined;
  const rt = new ProxyRuntime({
    name: 'meshgate-gateway',
    source,
    certsDir,
    ...(opts.secrets ? { secrets: opts.secrets } : {}),
    // The gateway is a workload too: AuthorizationPolicy and RequestAuthentication select it by its labels.
    workload: { namespace, labels },
    telemetry: {
      role: 'gateway',
      self: describeWorkload({ namespace: id?.namespace ?? namespace, labels, serviceAccount: id?.serviceAccount ?? DEFAULT_GATEWAY_SERVICE_ACCOUNT }),
      ...(opts.metricsPort !== undefined ? { metricsPort: opts.metricsPort } : {}),
    },
    ...(opts.logger ? { logger: opts.logger } : {}),
    ...(opts.accessLog !== undefined ? { accessLog: opts.accessLog } : {}),
    ...(opts.random ? { random: opts.random } : {}),
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.breakers ? { breakers: opts.breakers } : {}),
    ...(opts.redisUrl ? { redisUrl: opts.redisUrl } : {}),
    ...(opts.trustedProxies !== undefined ? { trustedProxies: opts.trustedProxies } : {}),
    ...(opts.drainDeadlineSeconds !== undefined ? { drainDeadlineSeconds: opts.drainDeadlineSeconds } : {}),
    ...(opts.identity ? { identity: opts.identity } : {}),
    ...(opts.limits ? { limits: opts.limits } : {}),
  });
  const { log, holder } = rt;
  const credentials = createCredentialStore({ certsDir, logger: log, ...(opts.secrets ? { secrets: opts.secrets } : {}), ...(opts.identity ? { identity: opts.identity } : {}) });
  const election = opts.secrets ? opts.acmeElection : undefined;
  const electedChallenges = election && opts.secrets ? election.challenges(opts.secrets) : undefined;
  const challenges = electedChallenges ?? opts.acmeChallenges;
  const acme = new AcmeManager({
    // Where issued certificates go is where credentialName is read from: files, or the Secrets.
    storage: opts.secrets ? secretStorage(opts.secrets) : fileStorage(certsDir),
    holder,
    logger: log.child({ component: 'acme' }),
    random: rt.random,
    ...(opts.acmeCa ? { acmeCa: opts.acmeCa } : {}),
    ...(challenges ? { challenges } : {}),
    ...(election ? { election, identity: election.identity } : {}),
  });
  // Every gateway listener is an edge: it authenticates and authorizes for the gateway's workload.
  const ctx = rt.inboundCtx();
  let tickets = opts.sessionTickets;
  if (!tickets) {
    tickets = new SessionTickets();
    tickets.rotateEvery();
  }
  const sessionTickets = tickets;
  rt.add({ close: async () => sessionTickets.stop(), destroy: () => sessionTickets.stop() });
  const listeners = new ListenerSet({
    ports: opts.ports,
    host,
    log,
    create: (servicePorts) => createPortListener(servicePorts, { ctx, credentials, log, tickets: sessionTickets, acmeChallenge: (token) => acme.challengeResponse(token) }),
  });
  rt.add(listeners);
  rt.add({ close: () => acme.close(), destroy: () => acme.destroy() });
  // Gives the ACME Lease up on the way out, so another replica orders at its next try, not after the lease.
  if (election) rt.add({ close: () => election.close(), destroy: () => election.close() });
  rt.add({ close: () => credentials.close(), destroy: () => credentials.close() });
  const secrets = opts.secrets;
  if (secrets) rt.add({ close: () => secrets.close(), destroy: () => secrets.close() });
  const apiStatus = opts.gatewayApiStatus;
  if (apiStatus) rt.add({ close: () => apiStatus.close(), destroy: () => apiStatus.close() });
  let servicePorts: ReadonlyMap<number, number> = new Map();

  await rt.start({
    // The Service's ports listen first (connections wait for the first configuration): listeners
    // are compiled for the ports they got, so a server port equal to one of them joins its listener.
    beforeConfig: async () => {
      // The first configuration resolves its credentialNames at once: the Secrets must be there by then.
      await opts.secrets?.start();
      servicePorts = await listeners.listenServicePorts();
      holder.onSwap((s) => void listeners.sync(s));
      if (opts.gatewayApiStatus) holder.onSwap((s) => void opts.gatewayApiStatus!.write(s));
    },
    role: () => ({ kind: 'gateway', labels, namespace, ports: servicePorts, ...(opts.locality ? { locality: opts.locality } : {}), ...(opts.gatewayNames ? { gatewayNames: opts.gatewayNames } : {}) }),
    afterConfig: async () => {
      const first = holder.current();
      if (first) await listeners.sync(first);
      if (first) void opts.gatewayApiStatus?.write(first);
    },
    statusHost: host,
    statusPort: opts.statusPort ?? 15021,
    adminPort: opts.adminPort ?? 15000,
    // Only once the HTTP ports listen can the ACME server's HTTP-01 validation reach us.
    afterListen: () => {
      // Another worker orders; this one answers the challenges it publishes.
      if (!(opts.acmeOrders ?? true)) return;
      acme.start();
      if (election && electedChallenges) election.attach(acme, electedChallenges);
    },
  });
  // No metricsPort when this process serves none (off, or a --workers primary serves the sum and
  // names its port itself): metricsPort=0 would read as "off" where the metrics are on.
  log.info({ ports: Object.fromEntries(listeners.listenPorts), statusPort: rt.statusPort, adminPort: rt.adminPort, ...(rt.metricsPort ? { metricsPort: rt.metricsPort } : {}), config: source.description }, 'gateway serving');

  return {
    listenPorts: listeners.listenPorts,
    statusPort: rt.statusPort,
    adminPort: rt.adminPort,
    metricsPort: rt.metricsPort,
    holder,
    rateLimitStats: () => rt.rateLimiting.limiters.stats(),
    close: () => rt.close(),
    drain: (seconds) => rt.drainFor(seconds),
    destroy: () => rt.destroy(),
  };
}

