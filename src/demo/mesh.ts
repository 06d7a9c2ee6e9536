// The whole demo mesh in one process, every part on its own loopback port and talking over real
// sockets: the control plane (config stream + CA), each demo app behind its own sidecar, and the
// gateway, which — like every sidecar — gets its identity and configuration from the control plane
// and serves HTTPS with a certificate from the demo CA (made under certsDir on first start).
// A request to product.example.com crosses gateway → product sidecar → product app → product
// sidecar → user sidecar → user app, every hop between proxies over mutual TLS.

import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger } from '../core/telemetry/logger.js';
import type { Logger } from 'pino';
import { loadOrCreateAuthority } from '../core/pki/authority.js';
import { ROOT_CERT_FILE } from '../core/pki/ca-files.js';
import type { ProxyDescription } from '../core/sources/control-plane-wire.js';
import { connectToMesh, type MeshConnection } from '../core/sources/mesh-connection.js';
import { startControlPlane, type RunningControlPlane } from '../control/main.js';
import { FileTokenAuthenticator } from '../control/token-authenticator.js';
import { startGateway, type RunningGateway } from '../gateway/main.js';
import { DEFAULT_GATEWAY_LABELS } from '../core/model/gateway-labels.js';
import { DEFAULT_GATEWAY_NAME } from '../core/model/gateway-names.js';
import { startSidecar, type RunningSidecar } from '../sidecar/main.js';
import { startBackend, type RunningBackend } from './backend.js';
import { ensureDemoCertificates } from '../core/tls/demo-ca.js';
import { DEMO_ADDRESS, DEMO_CONTROL_PORT, DEMO_GATEWAY_IDENTITY, DEMO_HOSTS, DEMO_NAMESPACE, DEMO_WORKLOADS, type DemoWorkload } from './topology.js';

export interface DemoMeshOptions {
  readonly configDir: string;
  /** Edge certificates, the mesh CA (`mesh-ca/`) and the bootstrap tokens (`mesh-tokens/`) live here. */
  readonly certsDir: string;
  /** Gateway port number → port to listen on. */
  readonly gatewayPorts: ReadonlyMap<number, number>;
  readonly listenHost: string;
  readonly statusPort: number;
  readonly adminPort: number;
  readonly accessLog: string;
  /** The gateway's Prometheus port (absent = no metrics on the gateway). */
  readonly metricsPort?: number;
  /** The demo's fixed ports unless a test passes its own; 0 = any free port (then see `placeEndpoints`). */
  readonly workloads?: readonly DemoWorkload[];
  /**
   * Called once every sidecar listens, with the workloads as bound, before the gateway starts: where
   * the OS chose the sidecars' ports, this writes them into the configuration (the EndpointSlices)
   * and resolves once the sidecars serve it, so that nothing is handed a port to take later.
   */
  readonly placeEndpoints?: (bound: readonly DemoWorkload[], sidecars: readonly RunningSidecar[]) => Promise<void>;
  readonly controlPort?: number;
  /** The control plane's debug port (metrics, the dashboard); absent = none. */
  readonly debugPort?: number;
  readonly logger?: Logger;
}

export interface RunningDemoMesh {
  readonly gateway: RunningGateway;
  /** The demo CA the HTTPS certificate `demo-tls` chains to: what `curl --cacert` trusts. */
  readonly demoCaFile: string;
  readonly control: RunningControlPlane;
  readonly sidecars: readonly RunningSidecar[];
  /** The workloads with the ports their app and sidecar listen on. */
  readonly workloads: readonly DemoWorkload[];
  /** The mesh root: what `openssl s_client -CAfile` and every proxy trust. */
  readonly rootCertFile: string;
  close(): Promise<void>;
}

interface Identity {
  readonly namespace: string;
  readonly serviceAccount: string;
}

/**
 * One random bootstrap token per identity, made on first start and kept (mode 0600), with the token
 * file the control plane reads. In a cluster these are what the operator hands each proxy.
 */
export function ensureDemoTokens(certsDir: string, identities: readonly Identity[]): { tokensFile: string; tokenFile(id: Identity): string } {
  const dir = join(certsDir, 'mesh-tokens');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tokenFile = (id: Identity): string => join(dir, `${id.namespace}.${id.serviceAccount}.token`);
  const entries: string[] = [];
  for (const id of identities) {
    const file = tokenFile(id);
    if (!existsSync(file)) writeFileSync(file, randomBytes(24).toString('hex') + '\n', { mode: 0o600 });
    const token = readFileSync(file, 'utf8').trim();
    entries.push(`- {token: ${token}, namespace: ${id.namespace}, serviceAccount: ${id.serviceAccount}}`);
  }
  const tokensFile = join(dir, 'tokens.yaml');
  writeFileSync(tokensFile, `# Bootstrap tokens of the demo mesh: who may ask the control plane for which identity.\n${entries.join('\n')}\n`, { mode: 0o600 });
  return { tokensFile, tokenFile };
}

export async function startDemoMesh(opts: DemoMeshOptions): Promise<RunningDemoMesh> {
  const log = opts.logger ?? createLogger('meshgate-demo');
  // The parts other than the gateway speak only when something is wrong: the demo's output is the gateway's.
  const quiet = (component: string): Logger => log.child({ component }, { level: 'warn' });
  const workloads = opts.workloads ?? DEMO_WORKLOADS;
  // HTTPS out of the box: a demo CA and a certificate for the demo hosts, made once and kept.
  const demoCerts = ensureDemoCertificates(opts.certsDir, DEMO_HOSTS);
  const caDir = join(opts.certsDir, 'mesh-ca');
  const authority = loadOrCreateAuthority(caDir);
  if (!authority.ok) throw new Error(`the mesh CA in ${caDir} cannot be used: ${authority.message}`);
  const rootCertFile = join(caDir, ROOT_CERT_FILE);
  const identities: Identity[] = [DEMO_GATEWAY_IDENTITY, ...new Map(workloads.map((w) => [w.serviceAccount, { namespace: DEMO_NAMESPACE, serviceAccount: w.serviceAccount }])).values()];
  const tokens = ensureDemoTokens(opts.certsDir, identities);
  const authenticator = await FileTokenAuthenticator.load(tokens.tokensFile, quiet('tokens'));
  if (!authenticator.ok) throw new Error(authenticator.message);

  const apps: RunningBackend[] = [];
  const sidecars: RunningSidecar[] = [];
  const connections: MeshConnection[] = [];
  const bound: DemoWorkload[] = [];
  let control: RunningControlPlane | undefined;
  let gateway: RunningGateway | undefined;
  const closeAll = async (): Promise<void> => {
    await gateway?.close();
    await Promise.all(sidecars.map((s) => s.close()));
    await Promise.all(apps.map((a) => a.close()));
    connections.forEach((c) => c.close());
    await control?.close();
  };

  try {
    control = await startControlPlane({
      configDir: opts.configDir,
      ca: authority.ca,
      authenticator: authenticator.authenticator,
      port: opts.controlPort ?? DEMO_CONTROL_PORT,
      listenHost: DEMO_ADDRESS,
      statusPort: 0,
      ...(opts.debugPort !== undefined ? { debugPort: opts.debugPort } : {}),
      // Every demo proxy is on this machine, each with a metrics port of its own.
      dashboardTargets: () => [gateway?.metricsPort, ...sidecars.map((s) => s.metricsPort)].filter((p): p is number => !!p).map((p) => `127.0.0.1:${p}`),
      logger: quiet('control'),
    });
    const url = `https://127.0.0.1:${control.port}`;
    const join = async (id: Identity, proxyId: string, description: ProxyDescription, logger: Logger): Promise<MeshConnection> => {
      const c = await connectToMesh({ url, tokenFile: tokens.tokenFile(id), rootCertFile, proxyId, description, logger });
      connections.push(c);
      return c;
    };

    for (const w of workloads) {
      const app = await startBackend({
        service: w.service,
        version: w.version,
        instance: w.instance,
        host: DEMO_ADDRESS,
        port: w.appPort,
        // The app's calls go through its own sidecar, started next.
        ...(w.calls.length > 0 ? { calls: { proxyPort: () => sidecar.outboundPort, urls: w.calls } } : {}),
      });
      apps.push(app);
      const logger = quiet(`sidecar ${w.instance}`);
      const labels = { app: w.service, version: w.version };
      const mesh = await join({ namespace: DEMO_NAMESPACE, serviceAccount: w.serviceAccount }, `${w.instance}.${DEMO_NAMESPACE}`, { role: 'sidecar', labels }, logger);
      const sidecar: RunningSidecar = await startSidecar({
        identity: mesh.identity,
        source: mesh.source,
        namespace: DEMO_NAMESPACE,
        serviceAccount: w.serviceAccount,
        labels,
        appPort: app.port,
        appHost: DEMO_ADDRESS,
        inboundPort: w.port,
        outboundPort: w.outboundPort,
        metricsPort: w.metricsPort,
        statusPort: 0,
        adminPort: 0,
        listenHost: DEMO_ADDRESS,
        accessLog: 'off',
        logger,
      });
      sidecars.push(sidecar);
      bound.push({ ...w, port: sidecar.inboundPort, appPort: app.port, outboundPort: sidecar.outboundPort, metricsPort: sidecar.metricsPort });
    }
    await opts.placeEndpoints?.(bound, sidecars);

    // Istio's ingress gateway labels, which the demo's Gateway selects: the control plane sends the
    // gateway the policies these select, and the gateway applies the same ones.
    const gatewayMesh = await join(DEMO_GATEWAY_IDENTITY, `${DEFAULT_GATEWAY_NAME}.${DEMO_GATEWAY_IDENTITY.namespace}`, { role: 'gateway', labels: DEFAULT_GATEWAY_LABELS }, log);
    gateway = await startGateway({
      labels: DEFAULT_GATEWAY_LABELS,
      source: gatewayMesh.source,
      identity: gatewayMesh.identity,
      ports: opts.gatewayPorts,
      certsDir: opts.certsDir,
      listenHost: opts.listenHost,
      statusPort: opts.statusPort,
      adminPort: opts.adminPort,
      accessLog: opts.accessLog,
      ...(opts.metricsPort !== undefined ? { metricsPort: opts.metricsPort } : {}),
      logger: log,
    });
  } catch (err) {
    await closeAll().catch(() => undefined);
    throw err;
  }
  let closing: Promise<void> | undefined;
  return { gateway, demoCaFile: demoCerts.caCertFile, control, sidecars, workloads: bound, rootCertFile, close: () => (closing ??= closeAll()) };
}
