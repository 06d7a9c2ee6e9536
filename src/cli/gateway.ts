// `meshgate gateway`: run the ingress gateway until SIGTERM/SIGINT, on a folder of YAML or on the
// Kubernetes API.

import { createLogger } from '../core/telemetry/logger.js';
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { endWorkerThatCouldNotStart, superviseWorkers, workerIndex, workerTotal } from '../gateway/workers.js';
import { workerChallenges } from '../gateway/acme/worker-challenges.js';
import { workerBreakers } from '../core/runtime/worker-breakers.js';
import { followPrimaryTicketKeys } from '../core/runtime/worker-ticket-keys.js';
import { SessionTickets } from '../core/tls/session-tickets.js';
import { connectToMesh } from '../core/sources/mesh-connection.js';
import { proxyIdOf } from '../core/sources/control-plane-source.js';
import { startGateway } from '../gateway/main.js';
import { DEFAULT_METRICS_PORT, serveClusterMetrics } from '../core/telemetry/metrics-server.js';
import { parse, parseLocality, parseMetricsPort, parsePort, parsePorts, parseRedisUrl, parseTrustedProxies, gatewayLabels, readFlagFile, readableFlagFile } from './options.js';
import { UsageError } from './main.js';
import { acmeElection, gatewayApiStatusWriter, kubeSecrets, kubeSource, readableConfigDir, sourceChoice, usableKubeConfig } from './config-source.js';
import { LIMIT_FLAGS, LIMIT_HELP, parseLimitFlags } from './limit-options.js';
import { stopRequested } from '../core/runtime/stop-signals.js';
import { DRAIN_FLAGS, DRAIN_HELP, armStop, parseDrainFlags } from './drain-options.js';
import { DEFAULT_GATEWAY_LABELS_TEXT } from '../core/model/gateway-labels.js';

export const GATEWAY_HELP = `usage: meshgate gateway --config DIR --ports 80=8080[,443=8443] [options]
       meshgate gateway --config-source kubernetes [--kubeconfig PATH] [--watch-namespaces a,b] [options]
       meshgate gateway --control URL --token FILE [--root-cert FILE] [options]

  --config DIR          folder of Istio YAML (watched; edits apply without restart)
  --config-source kubernetes
                        read Istio resources, Services, EndpointSlices and Pods from the API server
                        (list+watch; kubectl apply takes effect without restart)
  --kubeconfig PATH     kubeconfig for --config-source kubernetes (default: $KUBECONFIG,
                        ~/.kube/config, else the pod's service account)
  --watch-namespaces LIST
                        only these namespaces, e.g. default,shop (default: all)
  --control URL         join the mesh: the control plane (https://…:15012) gives this gateway its
                        configuration and its workload identity, used for mutual TLS to every
                        endpoint that runs a sidecar
  --token FILE          bearer token for --control (re-read on every call); default
                        /var/run/secrets/tokens/istio-token, the pod's projected service-account
                        token (audience istio-ca) that the control plane checks by TokenReview
  --root-cert FILE      the mesh root the control plane must chain to (default certs/mesh-ca/root-cert.pem)
  --ports LIST          Gateway port=listen port pairs, e.g. 80=8080,443=8443 (default 80=8080; a
                        Gateway port not listed listens on its own number)
  --status-port N       readiness port, GET /healthz/ready (default 15021)
  --admin-port N        admin port on 127.0.0.1: /routes /clusters /config_dump /problems /rate_limits /stats
                        (default 15000)
  --metrics-port N      Istio's metrics for Prometheus, GET /stats/prometheus (default 15090; 0 = off;
                        any = a port the OS chooses, named in the serving log line; with
                        --workers, one scrape returns the sum over the workers)
  --labels LIST         this gateway's labels for Gateway, AuthorizationPolicy and
                        RequestAuthentication selectors (default
                        ${DEFAULT_GATEWAY_LABELS_TEXT}, Istio's ingress gateway's;
                        with --gateway-name of one Gateway, gateway.networking.k8s.io/gateway-name=
                        its name, as Istio labels a Gateway's own Deployment, so Ingresses and
                        Istio Gateways selecting istio=ingressgateway are not served)
  --namespace NS        the gateway's namespace (default istio-system); with --config-source
                        kubernetes, credentialName is a Secret in it (kubernetes.io/tls, or
                        cert/key/cacert; <name>-cacert for MUTUAL's CA), followed as it changes;
                        and the Leases by which one of the gateway's replicas ($POD_NAME) writes
                        status and one orders ACME certificates
  --gateway-name LIST   serve only these Gateway API Gateways, e.g. default/web,shop/edge (default:
                        every Gateway whose class is meshgate's: controllerName
                        meshgate.io/gateway-controller or istio.io/gateway-controller, or the
                        built-in classes meshgate and istio; but not those the control plane has
                        deployed gateways for, which serve them)
  --locality R/Z/S      where the gateway runs (region/zone/subzone), for locality-aware load
                        balancing (DestinationRule localityLbSetting)
  --listen-host ADDR    address to listen on (default 0.0.0.0)
  --access-log WHERE    off | stdout | FILE (default stdout): where the access log's /dev/stdout
                        goes; the mesh config sets its format and other files
  --certs DIR           certificates for credentialName: DIR/<name>/tls.crt, tls.key, ca.crt (default
                        certs); with --config-source kubernetes only ACME's account keys live there
  --credentials FROM    where credentialName is read: kubernetes (Secrets of --namespace, the default
                        with --config-source kubernetes; with --control too, for a gateway in the
                        mesh) or files (folders of --certs, the default otherwise)
  --acme-ca FILE        extra CA (PEM) to trust for ACME servers, e.g. a private ACME CA
  --redis URL           Redis for RateLimitPolicy counters with store: redis, shared by every
                        gateway replica, e.g. redis://redis.istio-system:6379 (while Redis is
                        unreachable each gateway limits in its own memory)
  --trusted-proxies N   proxies in front of the gateway that append to x-forwarded-for; rate
                        limits by clientIp, AuthorizationPolicy remoteIpBlocks and the upstream's
                        x-envoy-external-address take the N-th address from its right (Envoy's
                        xff_num_trusted_hops, Istio's
                        numTrustedProxies; default: the mesh config's
                        defaultConfig.gatewayTopology.numTrustedProxies, else 0: the
                        connection's peer address)
${LIMIT_HELP}
${DRAIN_HELP}
  --tls-session-tickets on|off
                        TLS session resumption by tickets (default on): keys rotate hourly, the
                        previous key still resumes, and every worker shares them; off: every
                        connection is a full handshake
  --workers N           processes sharing the ports, each with its own copy of the configuration;
                        a worker that dies is replaced; connectionPool limits and ticket keys are
                        shared by all (default: one per CPU)`;

export async function runGatewayCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    config: { type: 'string' },
    'config-source': { type: 'string' },
    kubeconfig: { type: 'string' },
    'watch-namespaces': { type: 'string' },
    control: { type: 'string' },
    token: { type: 'string' },
    'root-cert': { type: 'string' },
    ports: { type: 'string' },
    'status-port': { type: 'string' },
    'admin-port': { type: 'string' },
    'metrics-port': { type: 'string' },
    labels: { type: 'string' },
    'gateway-name': { type: 'string' },
    namespace: { type: 'string' },
    locality: { type: 'string' },
    'listen-host': { type: 'string' },
    'access-log': { type: 'string' },
    certs: { type: 'string' },
    credentials: { type: 'string' },
    'acme-ca': { type: 'string' },
    redis: { type: 'string' },
    'trusted-proxies': { type: 'string' },
    ...DRAIN_FLAGS,
    ...LIMIT_FLAGS,
    'tls-session-tickets': { type: 'string' },
    workers: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    console.log(GATEWAY_HELP);
    return 0;
  }
  // Every option is checked before anything starts, so a typo costs nothing but the message.
  const choice = sourceChoice(values);
  const { drainSeconds, drainDeadlineSeconds } = parseDrainFlags(values);
  const trustedProxies = parseTrustedProxies(values['trusted-proxies']);
  const limits = parseLimitFlags(values);
  const gatewayNames = values['gateway-name'] !== undefined ? parseGatewayNames(values['gateway-name']) : undefined;
  const common = {
    ports: parsePorts(values.ports ?? '80=8080'),
    statusPort: parsePort(values['status-port'], 15021, '--status-port'),
    adminPort: parsePort(values['admin-port'], 15000, '--admin-port'),
    labels: gatewayLabels(values.labels, gatewayNames),
    namespace: values.namespace ?? 'istio-system',
    ...(values.locality !== undefined ? { locality: parseLocality(values.locality) } : {}),
    listenHost: values['listen-host'] ?? '0.0.0.0',
    accessLog: values['access-log'] ?? 'stdout',
    certsDir: values.certs ?? 'certs',
    ...(values['acme-ca'] ? { acmeCa: readFlagFile(values['acme-ca'], '--acme-ca') } : {}),
    ...(values.redis !== undefined ? { redisUrl: parseRedisUrl(values.redis) } : {}),
    trustedProxies,
    limits,
    drainDeadlineSeconds,
    ...(gatewayNames ? { gatewayNames } : {}),
  };
  const credentialsFrom = values.credentials ?? ('kubeconfig' in choice ? 'kubernetes' : 'files');
  if (credentialsFrom !== 'kubernetes' && credentialsFrom !== 'files') throw new UsageError(`--credentials: '${credentialsFrom}' is not kubernetes or files`);
  if (credentialsFrom === 'kubernetes' && 'dir' in choice) throw new UsageError('--credentials kubernetes goes with --config-source kubernetes or --control');
  const ticketsFlag = values['tls-session-tickets'] ?? 'on';
  if (ticketsFlag !== 'on' && ticketsFlag !== 'off') throw new UsageError(`--tls-session-tickets: '${ticketsFlag}' is not on or off`);
  const metricsPort = parseMetricsPort(values['metrics-port'], DEFAULT_METRICS_PORT, '--metrics-port');
  const workers = values.workers === undefined ? availableParallelism() : Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1) throw new UsageError(`--workers: '${values.workers}' is not a number of processes`);
  // Checked in the primary, once the options are known good: workers would each die on it.
  if ('dir' in choice) readableConfigDir(choice.dir);
  else if ('kubeconfig' in choice) await usableKubeConfig(choice);
  else {
    readableFlagFile(choice.control.tokenFile, '--token');
    readableFlagFile(choice.control.rootCertFile, '--root-cert');
  }
  if (workers > 1 && cluster.isPrimary) {
    const log = createLogger('meshgate-gateway');
    // The workers count; the primary answers the scrape with their sum.
    const metrics = metricsPort === undefined
      ? undefined
      : await serveClusterMetrics(metricsPort, common.listenHost).catch((err: unknown) => {
        log.error({ port: metricsPort, error: (err as Error).message }, 'metrics port (--metrics-port) cannot listen; serving without /stats/prometheus');
        return undefined;
      });
    if (metrics) log.info({ metricsPort: metrics.port }, 'metrics serving: the sum over the workers');
    const code = await superviseWorkers(workers, log);
    await metrics?.close();
    return code;
  }
  const worker = workerIndex();
  // Every worker builds the same configuration: worker 0 says it once, the others only their own trouble.
  const log = createLogger('meshgate-gateway', worker !== undefined && worker > 0 ? { quietWorker: true } : {});
  const wlog = worker !== undefined ? log.child({ worker }) : log;
  // Listening from the start: a signal during startup waits for it, then drains.
  const stop = stopRequested({ log: wlog });
  let serving = false;
  armStop(stop, () => serving, drainDeadlineSeconds, wlog);
  let mesh: Awaited<ReturnType<typeof connectToMesh>> | undefined;
  let gw: Awaited<ReturnType<typeof startGateway>>;
  const sessionTickets = new SessionTickets({ enabled: ticketsFlag === 'on' });
  // Workers take the primary's keys (and its rotations), so a ticket resumes on any of them.
  if (worker === undefined) sessionTickets.rotateEvery();
  else if (sessionTickets.enabled && !(await followPrimaryTicketKeys(sessionTickets))) wlog.warn('no TLS session ticket keys from the primary yet: this worker\'s tickets resume only on itself until they come');
  try {
    mesh = 'control' in choice ? await connectToMesh({ ...choice.control, proxyId: proxyIdOf(worker !== undefined ? `gateway-w${worker}` : 'gateway', common.namespace), description: { role: 'gateway', labels: common.labels }, logger: log }) : undefined;
    gw = await startGateway({
      ...common,
      ...(metricsPort === undefined ? {} : { metricsPort: worker !== undefined ? ('primary' as const) : metricsPort }),
      logger: wlog,
      // One worker orders ACME certificates; every worker answers the validation requests (in a
      // cluster from the Secret the ordering replica publishes them in, else through the primary).
      ...(worker !== undefined ? { acmeOrders: worker === 0, ...(credentialsFrom === 'kubernetes' ? {} : { acmeChallenges: workerChallenges() }) } : {}),
      sessionTickets,
      // DestinationRule limits hold for all workers together: the primary counts limited clusters.
      ...(worker !== undefined ? { breakers: workerBreakers(workerTotal()) } : {}),
      ...(mesh ? { source: mesh.source, identity: mesh.identity } : 'dir' in choice ? { configDir: choice.dir } : 'kubeconfig' in choice ? { source: await kubeSource(choice, log) } : {}),
      ...(credentialsFrom === 'kubernetes'
        ? {
          secrets: await kubeSecrets({ kubeconfig: 'kubeconfig' in choice ? choice.kubeconfig : undefined }, common.namespace, log),
          // Of the gateway's replicas, the holder of its ACME Lease orders.
          acmeElection: await acmeElection({ kubeconfig: 'kubeconfig' in choice ? choice.kubeconfig : undefined }, log, { namespace: common.namespace, ...(gatewayNames ? { gatewayNames } : {}) }),
        }
        : {}),
      // In a cluster one process writes the Gateway API status (the first worker, like ACME orders),
      // of the replica holding the gateway's status Lease.
      ...('kubeconfig' in choice && (worker ?? 0) === 0 ? { gatewayApiStatus: await gatewayApiStatusWriter(choice, log, { namespace: common.namespace, ...(gatewayNames ? { gatewayNames } : {}) }) } : {}),
    });
  } catch (err) {
    // Startup failures (a port in use, an unreachable API server) are said in one line, not a stack.
    mesh?.close();
    wlog.error(`gateway could not start: ${(err as Error)?.message ?? String(err)}`);
    return worker !== undefined ? endWorkerThatCouldNotStart() : 1;
  }
  serving = true;
  // SIGTERM (Kubernetes stopping the pod) and Ctrl-C alike: drain, so that no request fails.
  await stop;
  await gw.drain(drainSeconds);
  mesh?.close();
  // A worker's channel to the primary would keep it alive after everything else has stopped.
  if (worker !== undefined) process.disconnect?.();
  return 0;
}

/** `default/web,shop/edge`: Gateway API Gateways by namespace/name. */
export function parseGatewayNames(text: string): Set<string> {
  const names = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw new UsageError('--gateway-name: give namespace/name pairs, e.g. default/web');
  for (const n of names) if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?\/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(n)) throw new UsageError(`--gateway-name: '${n}' is not namespace/name`);
  return new Set(names);
}
