// The control plane role: wires a config source (folder or Kubernetes API) to the stream server,
// the CA to the certificate endpoint, and the status port. Everything here is wiring; behaviour
// lives in the files it wires and in core.

import { meshConfigOf } from '../core/telemetry/telemetry-policy.js';
import type { Server as HttpsServer } from 'node:https';
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '../core/telemetry/logger.js';
import type { Logger } from 'pino';
import type { CertificateAuthority } from '../core/pki/authority.js';
import { FileSource } from '../core/sources/file-source.js';
import type { ConfigSource } from '../core/sources/source.js';
import { CONTROL_PLANE_PORT } from '../core/sources/control-plane-wire.js';
import type { Validate } from './config-set.js';
import { ConfigDistributor } from './config-distributor.js';
import { ProxyRegistry } from './proxy-registry.js';
import { createControlServer } from './server.js';
import { createStatusServer } from '../core/admin/status-server.js';
import { createDebugServer } from './debug-server.js';
import { ControlMetrics } from './control-metrics.js';
import { MeshDashboard } from './mesh-dashboard.js';
import { serveMetrics, type MetricsServer } from '../core/telemetry/metrics-server.js';
import type { Authenticator } from './token-authenticator.js';
import { createInjectionWebhook, INJECTION_PORT, type InjectionWebhookOptions } from './injection-webhook.js';
import type { NodeVersions } from './node-versions.js';
import type { CaBundleUpdater } from './webhook-ca-bundle.js';
import type { KubeConfig } from '@kubernetes/client-node';
import type { LeaderElection, LeaseTiming } from '../core/sources/kube-leader-election.js';
import type { ServedTrustDomain } from './served-trust-domain.js';

/** Where proxies reach the control plane: on the machine, and as the Service deploy/ creates. */
export const CONTROL_PLANE_NAMES = [
  'localhost',
  '127.0.0.1',
  'meshgate-control',
  'meshgate-control.istio-system.svc',
  'meshgate-control.istio-system.svc.cluster.local',
] as const;

/** How long close() lets an answer in flight finish before its connection is cut. */
const GRACE_MS = 1000;

export interface ControlPlaneOptions {
  /** Folder of Istio YAML, watched; used when no `source` is given. */
  readonly configDir?: string;
  readonly source?: ConfigSource;
  readonly ca: CertificateAuthority;
  /** The trust domain the CA reads at each signing: made to follow the mesh config being served. */
  readonly trustDomain?: ServedTrustDomain;
  readonly authenticator: Authenticator;
  /** TLS port for proxies (default 15012); 0 = any free port. */
  readonly port?: number;
  readonly listenHost?: string;
  /** Readiness port (default 15021); 0 = any free port. */
  readonly statusPort?: number;
  /** Debug port on 127.0.0.1 (`/debug/proxies`); 0 = any free port; absent = none. */
  readonly debugPort?: number;
  /** `GET /metrics` on `listenHost` for Prometheus (0 = any free port; absent = only on the debug port). */
  readonly metricsPort?: number;
  /** Where the dashboard collects proxies' metrics (`host:port`); default each connected proxy's address on 15090. */
  readonly dashboardTargets?: () => readonly string[];
  /** More names for the server certificate, beside CONTROL_PLANE_NAMES. */
  readonly hostnames?: readonly string[];
  readonly debounceMs?: number;
  readonly heartbeatMs?: number;
  readonly validate?: Validate;
  readonly logger?: Logger;
  readonly now?: () => Date;
  /** The sidecar injection webhook (off when absent); `port` 0 = any free port, default 15017. */
  readonly injection?: Omit<InjectionWebhookOptions, 'ca' | 'log'> & { readonly port?: number; readonly caBundle?: CaBundleUpdater; readonly nodes?: NodeVersions };
  /**
   * Cluster mode: the API server the control plane writes to. It publishes the mesh root as the
   * ConfigMap istio-ca-root-cert in every namespace and keeps it there.
   */
  readonly kubeconfig?: KubeConfig;
  /** Back-off of the root publisher's and the gateway deployer's retries (default 1 s doubling to 30 s). */
  readonly kubeBackoff?: { readonly initialMs: number; readonly maxMs: number };
  /**
   * Cluster mode: the meshgate image of the gateways deployed for Gateway API Gateways (automated
   * deployment, gateway-deployer.ts); absent: Gateways get no deployment of their own.
   */
  readonly gatewayImage?: string;
  /**
   * Cluster mode: the leader election of the controllers that write to the API server (the root
   * publisher, the gateway deployer), one Lease each in `namespace` (default istio-system), held as
   * `identity` (default $POD_NAME); `timing` default istiod's (kube-leader-election.ts).
   */
  readonly election?: { readonly namespace?: string; readonly identity?: string; readonly timing?: Partial<LeaseTiming> };
}

export interface RunningControlPlane {
  readonly port: number;
  readonly statusPort: number;
  /** 0 when there is no debug port. */
  readonly debugPort: number;
  /** 0 when there is no metrics port of its own. */
  readonly metricsPort: number;
  /** 0 when injection is off. */
  readonly injectionPort: number;
  /** The trust bundle proxies are given (`--root-cert`). */
  readonly rootCertPem: string;
  readonly registry: ProxyRegistry;
  /** The version now handed out. */
  version(): string | undefined;
  /** Whether this replica holds the Lease of that election (cluster mode; always false in file mode). */
  leading(election: string): boolean;
  close(): Promise<void>;
  destroy(): Promise<void>;
}

export async function startControlPlane(opts: ControlPlaneOptions): Promise<RunningControlPlane> {
  const log = opts.logger ?? createLogger('meshgate-control');
  const host = opts.listenHost ?? '0.0.0.0';
  if (!opts.source && opts.configDir === undefined) throw new Error('startControlPlane needs configDir or source');
  const source = opts.source ?? new FileSource({ dir: opts.configDir! });
  const metrics = new ControlMetrics();
  metrics.rootCertificate(opts.ca.rootCertPem);
  const registry = new ProxyRegistry({ log: log.child({ component: 'proxies' }), metrics, ...(opts.now ? { now: opts.now } : {}) });
  const distributor = new ConfigDistributor({
    source,
    registry,
    log,
    metrics,
    ...(opts.debounceMs !== undefined ? { debounceMs: opts.debounceMs } : {}),
    ...(opts.heartbeatMs !== undefined ? { heartbeatMs: opts.heartbeatMs } : {}),
    ...(opts.validate ? { validate: opts.validate } : {}),
  });
  opts.trustDomain?.follow(() => distributor.current?.resources);
  metrics.countServices(() => distributor.current?.resources.filter((r) => r.kind === 'Service' || r.kind === 'ServiceEntry').length ?? 0);
  const names = [...new Set([...CONTROL_PLANE_NAMES, ...(opts.hostnames ?? [])])];
  const tls = opts.ca.issueServerCertificate(names);
  const server = createControlServer({ tls, authenticator: opts.authenticator, distributor, registry, ca: opts.ca, metrics, log: log.child({ component: 'api' }) });
  let closing = false;
  const status = createStatusServer(() => !closing && distributor.current !== undefined);
  const debug = opts.debugPort !== undefined ? createDebugServer(registry, metrics, new MeshDashboard({ registry, config: () => distributor.current, ...(opts.dashboardTargets ? { targets: opts.dashboardTargets } : {}) })) : undefined;
  // The mesh config of the configuration being served decides metrics merging, as istiod's does, and
  // each pod's ProxyConfig goes over its defaultConfig; read once per configuration set.
  const meshSettings = new WeakMap<object, { readonly merge: boolean; readonly defaultConfig?: Record<string, unknown> }>();
  const settings = (): { readonly merge: boolean; readonly defaultConfig?: Record<string, unknown> } => {
    const set = distributor.current;
    if (!set) return { merge: true };
    let found = meshSettings.get(set);
    if (!found) {
      const mesh = meshConfigOf(set.resources);
      const dc = mesh?.['defaultConfig'];
      found = { merge: mesh?.['enablePrometheusMerge'] !== false, ...(typeof dc === 'object' && dc !== null && !Array.isArray(dc) ? { defaultConfig: dc as Record<string, unknown> } : {}) };
      meshSettings.set(set, found);
    }
    return found;
  };
  const prometheusMerge = (): boolean => settings().merge;
  const meshDefaultConfig = (): Record<string, unknown> | undefined => settings().defaultConfig;
  const injector = opts.injection ? createInjectionWebhook({ prometheusMerge, meshDefaultConfig, trustDomain: () => opts.ca.trustDomain, ...opts.injection, ca: opts.ca, metrics, log: log.child({ component: 'injector' }) }) : undefined;
  // Loaded only in cluster mode: the Kubernetes client is large, and file mode does without it.
  const elections = opts.kubeconfig ? await leaderOnlyControllers(opts, opts.kubeconfig, metrics, log) : [];

  const stop = async (hard: boolean): Promise<void> => {
    closing = true;
    if (hard) distributor.destroy();
    else await distributor.close().catch(() => undefined);
    await opts.injection?.caBundle?.close();
    await opts.injection?.nodes?.close();
    await Promise.all([stopServer(server, hard), stopServer(status, hard), ...(debug ? [stopServer(debug, hard)] : []), ...(injector ? [stopServer(injector, hard)] : []), ...elections.map((e) => e.close()), metricsServer?.close()]);
  };

  let port = 0;
  let statusPort = 0;
  let debugPort = 0;
  let metricsServer: MetricsServer | undefined;
  let injectionPort = 0;
  try {
    if (opts.metricsPort !== undefined) metricsServer = await serveMetrics(() => [metrics.registry], opts.metricsPort, host);
    statusPort = await listen(status, opts.statusPort ?? 15021, host);
    // Whatever --listen-host says: the inventory of the mesh is only for this machine.
    if (debug) debugPort = await listen(debug, opts.debugPort!, '127.0.0.1');
    await distributor.start();
    port = await listen(server, opts.port ?? CONTROL_PLANE_PORT, host);
    if (injector) {
      injectionPort = await listen(injector, opts.injection!.port ?? INJECTION_PORT, host);
      await opts.injection!.caBundle?.update(opts.ca.rootCertPem);
      opts.injection!.nodes?.start();
    }
    // In the background: each controller starts once this replica holds its Lease; proxies are
    // served meanwhile, by every replica.
    for (const e of elections) e.start();
  } catch (err) {
    await stop(true);
    throw err;
  }
  log.info({ port, statusPort, ...(debug ? { debugPort } : {}), ...(metricsServer ? { metricsPort: metricsServer.port } : {}), ...(injector ? { injectionPort } : {}), config: source.description, ca: opts.ca.dir, caSource: opts.ca.source, trustDomain: opts.ca.trustDomain, authenticator: opts.authenticator.description, names }, 'control plane serving');

  let stopping: Promise<void> | undefined;
  return {
    port,
    statusPort,
    debugPort,
    metricsPort: metricsServer?.port ?? 0,
    injectionPort,
    rootCertPem: opts.ca.rootCertPem,
    registry,
    version: () => distributor.current?.version,
    leading: (name) => elections.some((e) => e.name === name && e.leading),
    close: () => (stopping ??= stop(false)),
    destroy: () => (stopping ??= stop(true)),
  };
}

/**
 * The controllers that write to the API server, each run by one replica at a time (istiod's
 * elections): the root publisher (the namespace controller's Lease) and, with a gateway image, the
 * gateway deployer. The injector's caBundle is not among them: every replica sets the same bundle,
 * as every istiod patches its own, and only when it differs.
 */
async function leaderOnlyControllers(opts: ControlPlaneOptions, kubeconfig: KubeConfig, metrics: ControlMetrics, log: Logger): Promise<LeaderElection[]> {
  const { LeaderElection, NAMESPACE_CONTROLLER_ELECTION, GATEWAY_DEPLOYMENT_ELECTION, defaultIdentity } = await import('../core/sources/kube-leader-election.js');
  const backoff = opts.kubeBackoff ? { backoff: opts.kubeBackoff } : {};
  const identity = opts.election?.identity ?? defaultIdentity();
  const elect = (name: string, lead: () => { start(): Promise<void>; close(): Promise<void> }): LeaderElection => {
    metrics.leader(name, false);
    return new LeaderElection({
      kubeconfig,
      namespace: opts.election?.namespace ?? 'istio-system',
      name,
      identity,
      logger: log.child({ component: 'leader-election', election: name }),
      ...(opts.election?.timing ? { timing: opts.election.timing } : {}),
      onChange: (leading) => metrics.leader(name, leading),
      lead: () => {
        const controller = lead();
        // Its lists retry until the API server answers (a slow first list is logged, not fatal);
        // each write is made as soon as it can be.
        controller.start().catch((err: unknown) => log.warn({ election: name, error: err instanceof Error ? err.message : String(err) }, 'a leader-only controller has not started yet; it keeps trying'));
        return controller;
      },
    });
  };
  const { RootCertPublisher } = await import('./root-cert-publisher.js');
  const elections = [elect(NAMESPACE_CONTROLLER_ELECTION, () => new RootCertPublisher({ kubeconfig, rootCertPem: opts.ca.rootCertPem, logger: log.child({ component: 'root-cert' }), ...backoff }))];
  if (opts.gatewayImage !== undefined) {
    const { GatewayDeployer } = await import('./gateway-deployer.js');
    const image = opts.gatewayImage;
    elections.push(elect(GATEWAY_DEPLOYMENT_ELECTION, () => new GatewayDeployer({ kubeconfig, image, logger: log.child({ component: 'gateway-deployer' }), ...backoff })));
  }
  return elections;
}

async function listen(server: HttpsServer | HttpServer, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

function stopServer(server: HttpsServer | HttpServer, hard: boolean): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise<void>((resolve) => {
    let late: NodeJS.Timeout | undefined;
    server.close(() => {
      clearTimeout(late);
      resolve();
    });
    // Streams were ended above; what is left is keep-alive connections: idle ones go now, a request
    // still being answered gets a moment to finish.
    if (hard) server.closeAllConnections();
    else {
      server.closeIdleConnections();
      late = setTimeout(() => server.closeAllConnections(), GRACE_MS);
    }
  });
}
