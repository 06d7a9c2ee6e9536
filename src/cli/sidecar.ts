// `meshgate sidecar`: run one workload's proxy until SIGTERM/SIGINT. It gets its identity from the
// control plane before it opens any port, then serves inbound (mTLS → authorization → app) and
// outbound (the app's HTTP proxy → routes → mTLS) with the configuration the control plane streams.

import { createLogger } from '../core/telemetry/logger.js';
import { identityMismatch } from '../core/pki/spiffe.js';
import { connectToMesh } from '../core/sources/mesh-connection.js';
import { proxyIdOf } from '../core/sources/control-plane-source.js';
import { startSidecar } from '../sidecar/main.js';
import { DEFAULT_ROOT_CERT } from './config-source.js';
import { parse, parseLabels, parseLocality, parseMetricsPort, parsePort, parseRedisUrl, parseTrustedProxies, readableFlagFile } from './options.js';
import { UsageError } from './main.js';
import { LIMIT_FLAGS, LIMIT_HELP, parseLimitFlags } from './limit-options.js';
import { stopRequested } from '../core/runtime/stop-signals.js';
import { DRAIN_FLAGS, DRAIN_HELP, armStop, parseDrainFlags } from './drain-options.js';
import { APP_PROBERS_ENV, parseAppProbers } from '../core/inject/app-probes.js';
import { parseAppScrapeSettings, PROMETHEUS_SCRAPE_ENV } from '../core/inject/prometheus-annotations.js';
import { ConntrackLookup, CONNTRACK_TABLE } from '../core/capture/original-destination.js';
import { EXIT_ON_ZERO_ENV, MINIMUM_DRAIN_ENV, PROXY_CONFIG_ENV, readShutdownEnv } from '../sidecar/shutdown-settings.js';
import { DEFAULT_RESOLV_CONF, readResolvConf, type ResolvConf } from '../core/dns/resolv-conf.js';
import { DNS_CAPTURE_PORT } from '../core/capture/iptables-rules.js';
import type { SidecarDns } from '../sidecar/main.js';

export const SIDECAR_HELP = `usage: meshgate sidecar --control URL --token FILE --namespace NS --service-account SA
                        --workload NAME --labels app=x,version=v1 --app-port N [options]

Runs beside one workload. Inbound (mutual TLS from the mesh, PeerAuthentication, AuthorizationPolicy)
ends at the app on loopback; outbound, the app uses it as its HTTP proxy
(HTTP_PROXY=http://127.0.0.1:15001) and calls services by name.

  --control URL         the control plane, https://…:15012 (configuration and the workload certificate)
  --token FILE          bearer token for the control plane (re-read on every call)
  --root-cert FILE      the mesh root (default ${DEFAULT_ROOT_CERT})
  --namespace NS        the workload's namespace
  --service-account SA  the workload's service account; with --namespace it must be the identity the
                        token stands for, or the sidecar refuses to start
  --workload NAME       the workload (pod) name, how the control plane lists this proxy
  --labels LIST         the workload's labels; policies and subsets select on them
  --app-port N          the port the app listens on
  --app-host ADDR       where the app listens (default 127.0.0.1)
  --inbound-port N      inbound mTLS port (default 15006)
  --outbound-port N     outbound proxy port on 127.0.0.1 (default 15001)
  --status-port N       readiness, GET /healthz/ready (default 15021)
  --admin-port N        admin on 127.0.0.1 (default 15000)
  --metrics-port N      Istio's metrics for Prometheus, GET /stats/prometheus (default 15090; 0 = off;
                        any = a port the OS chooses, named in the serving log line)
  --listen-host ADDR    address the inbound and status ports listen on (default 0.0.0.0)
  --outbound-traffic-policy ALLOW_ANY|REGISTRY_ONLY
                        hosts the mesh does not know: pass through (default) or answer 502,
                        unless the workload's Sidecar resource or the mesh config sets a mode
  --locality R/Z/S      where the workload runs (region/zone/subzone), for locality-aware load
                        balancing of its outbound calls (DestinationRule localityLbSetting)
  --redis URL           Redis for RateLimitPolicy counters with store: redis on outbound calls,
                        shared by every proxy using it (while unreachable, limits count locally)
  --trusted-proxies N   proxies between the app and the sidecar that append to x-forwarded-for;
                        rate limits by clientIp count the N-th address from its right (default 0)
  --cert-ttl SECONDS    workload certificate lifetime to ask for (default 86400; rotated at half-life)
  --access-log WHERE    off | stdout | FILE (default stdout): where the access log's /dev/stdout
                        goes; the mesh config sets its format and other files
  --certs DIR           where a DestinationRule's credentialName (TLS origination) is read:
                        DIR/<name>/tls.crt, tls.key, ca.crt (default certs)
${LIMIT_HELP}
  --capture             transparent capture (the pod ran \`meshgate iptables\`): the outbound port
                        takes the app's redirected connections (HTTP routes by Host, other TCP goes
                        to its original destination from ${CONNTRACK_TABLE}), the inbound port
                        takes every redirected inbound port and reaches the app on --app-host from
                        127.0.0.6; --app-port is then only the fallback when conntrack cannot say
  --probe-port N        Istio's agent port, listening with --capture or when given: POST
                        /quitquitquit from the pod itself ends the sidecar (exit 0, no drain period);
                        the app's rewritten HTTP probes, from the env var ${APP_PROBERS_ENV},
                        and with ${PROMETHEUS_SCRAPE_ENV} set, GET /stats/prometheus: this
                        sidecar's Istio metrics followed by the app's own from the port and path
                        it names (both set by injection), served here (default 15020)
  --dns-port N          with DNS capture (ISTIO_META_DNS_CAPTURE=true, set by injection from
                        proxyMetadata), where the DNS proxy listens on 127.0.0.1, UDP and TCP: mesh
                        names answered, the rest forwarded to --resolv-conf's nameservers (default
                        15053, where \`meshgate iptables --redirect-dns\` sends the pod's DNS; 0 = any
                        free port, named in the serving log line); ISTIO_META_DNS_AUTO_ALLOCATE=true
                        gives ServiceEntries without addresses one from 240.240.0.0/16
  --resolv-conf FILE    the pod's resolver configuration, whose nameservers DNS is forwarded to
                        (default ${DEFAULT_RESOLV_CONF})
${DRAIN_HELP}
                        In a pod, injection sets the drain from the pod's ProxyConfig: ${PROXY_CONFIG_ENV}
                        (JSON) terminationDrainDuration is the default of --drain-seconds;
                        ${EXIT_ON_ZERO_ENV}=true drains at least ${MINIMUM_DRAIN_ENV}
                        (default 5s) and then stops once no connection is active (at most until
                        the deadline). POST /quitquitquit on the admin port ends it too. POST
                        /drain on the probe port (from the pod) starts the drain before SIGTERM
                        (a native sidecar's preStop), which then stops without a second drain.`;

export async function runSidecarCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    control: { type: 'string' },
    token: { type: 'string' },
    'root-cert': { type: 'string' },
    namespace: { type: 'string' },
    'service-account': { type: 'string' },
    workload: { type: 'string' },
    labels: { type: 'string' },
    'app-port': { type: 'string' },
    'app-host': { type: 'string' },
    'inbound-port': { type: 'string' },
    'outbound-port': { type: 'string' },
    'status-port': { type: 'string' },
    'admin-port': { type: 'string' },
    'metrics-port': { type: 'string' },
    'listen-host': { type: 'string' },
    'outbound-traffic-policy': { type: 'string' },
    locality: { type: 'string' },
    redis: { type: 'string' },
    'trusted-proxies': { type: 'string' },
    'cert-ttl': { type: 'string' },
    'access-log': { type: 'string' },
    certs: { type: 'string' },
    capture: { type: 'boolean' },
    'probe-port': { type: 'string' },
    'dns-port': { type: 'string' },
    'resolv-conf': { type: 'string' },
    ...DRAIN_FLAGS,
    ...LIMIT_FLAGS,
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    console.log(SIDECAR_HELP);
    return 0;
  }
  for (const flag of ['control', 'token', 'namespace', 'service-account', 'workload', ...(values.capture ? [] : (['app-port'] as const))] as const) {
    if (!values[flag]) throw new UsageError(`--${flag} is required`);
  }
  if (!/^https:\/\//.test(values.control!)) throw new UsageError(`--control: '${values.control}' must be an https:// URL`);
  const policy = values['outbound-traffic-policy'] ?? 'ALLOW_ANY';
  if (policy !== 'ALLOW_ANY' && policy !== 'REGISTRY_ONLY') throw new UsageError(`--outbound-traffic-policy: '${policy}' is not ALLOW_ANY or REGISTRY_ONLY`);
  const shutdown = readShutdownEnv(process.env);
  const { drainSeconds, drainDeadlineSeconds } = parseDrainFlags(values, shutdown.terminationDrainSeconds);
  const certTtl = values['cert-ttl'] === undefined ? undefined : Number(values['cert-ttl']);
  if (certTtl !== undefined && !(Number.isInteger(certTtl) && certTtl > 0)) throw new UsageError(`--cert-ttl: '${values['cert-ttl']}' is not a number of seconds`);
  const namespace = values.namespace!;
  const appPort = parsePort(values['app-port'], 0, '--app-port');
  const trustedProxies = parseTrustedProxies(values['trusted-proxies']);
  const limits = parseLimitFlags(values);
  const traffic = {
    ...(values.locality !== undefined ? { locality: parseLocality(values.locality) } : {}),
    ...(values.redis !== undefined ? { redisUrl: parseRedisUrl(values.redis) } : {}),
  };

  readableFlagFile(values.token!, '--token');
  readableFlagFile(values['root-cert'] ?? DEFAULT_ROOT_CERT, '--root-cert');

  const dns = dnsCapture(values['dns-port'], values['resolv-conf']);
  const log = createLogger('meshgate-sidecar', { base: { workload: `${values.workload}.${namespace}` } });
  for (const problem of shutdown.problems) log.warn({ problem }, 'shutdown setting not read; its default holds');
  // Listening from the start: a signal during startup waits for it, then drains. POST /quitquitquit
  // (on the probe or admin port, so only once serving) stops it too, without a drain period.
  let quit = (): void => undefined;
  const quitRequested = new Promise<'quit'>((resolve) => (quit = () => resolve('quit')));
  const stop = Promise.race([stopRequested({ log }), quitRequested]);
  let serving = false;
  armStop(stop, () => serving, drainDeadlineSeconds, log);
  const probers = parseAppProbers(process.env[APP_PROBERS_ENV]);
  if (probers.problem) log.warn({ problem: probers.problem }, 'application probes are not served');
  const scrape = parseAppScrapeSettings(process.env[PROMETHEUS_SCRAPE_ENV]);
  if (scrape.problem) log.warn({ problem: scrape.problem }, 'the merged metrics endpoint serves the sidecar\'s metrics only');
  if (values.capture && !(await new ConntrackLookup().readable())) {
    log.warn({ table: CONNTRACK_TABLE }, 'conntrack table not readable: captured raw TCP has no known destination (HTTP still routes by Host; inbound uses --app-port)');
  }
  const mesh = await connectToMesh({
    url: values.control!,
    tokenFile: values.token!,
    rootCertFile: values['root-cert'] ?? DEFAULT_ROOT_CERT,
    proxyId: proxyIdOf(values.workload!, namespace),
    description: { role: 'sidecar', labels: values.labels ? parseLabels(values.labels) : {} },
    logger: log,
    ...(certTtl !== undefined ? { certTtlSeconds: certTtl } : {}),
  });
  // The token decides the identity; flags that say otherwise would select another workload's policies.
  const mismatch = identityMismatch(mesh.identity.current().spiffeId, { namespace, serviceAccount: values['service-account']! });
  if (mismatch) {
    mesh.close();
    console.error(`meshgate sidecar: --namespace and --service-account disagree with the identity the control plane issued for the token: ${mismatch}`);
    return 1;
  }
  const sidecar = await startSidecar({
    identity: mesh.identity,
    source: mesh.source,
    namespace,
    serviceAccount: values['service-account']!,
    labels: values.labels ? parseLabels(values.labels) : {},
    appPort,
    appHost: values['app-host'] ?? '127.0.0.1',
    inboundPort: parsePort(values['inbound-port'], 15006, '--inbound-port'),
    outboundPort: parsePort(values['outbound-port'], 15001, '--outbound-port'),
    statusPort: parsePort(values['status-port'], 15021, '--status-port'),
    adminPort: parsePort(values['admin-port'], 15000, '--admin-port'),
    ...((m) => (m === undefined ? {} : { metricsPort: m }))(parseMetricsPort(values['metrics-port'], 15090, '--metrics-port')),
    listenHost: values['listen-host'] ?? '0.0.0.0',
    outboundTrafficPolicy: policy,
    ...traffic,
    trustedProxies,
    limits,
    accessLog: values['access-log'] ?? 'stdout',
    ...(values.certs ? { certsDir: values.certs } : {}),
    ...(values.capture ? { capture: true } : {}),
    appProbers: probers.probers,
    // Istio's agent port listens in every pod (--capture: injected); elsewhere when asked for.
    ...(values.capture || values['probe-port'] !== undefined ? { probePort: parsePort(values['probe-port'], 15020, '--probe-port') } : {}),
    onQuit: quit,
    ...(dns ? { dns } : {}),
    ...(scrape.merge ? { mergedMetrics: scrape.target ? { app: scrape.target } : {} } : {}),
    logger: log,
    drainDeadlineSeconds,
  });
  serving = true;
  // SIGTERM and Ctrl-C alike: drain, so that no request fails.
  const cause = await stop;
  if (cause === 'quit') await sidecar.quit();
  // Drained since POST /drain (a native sidecar's preStop): the app has exited, no second drain period.
  else if (sidecar.drainRequested) {
    log.info('drained since POST /drain: stopping without a second drain period');
    await sidecar.drain(0);
  }
  else if (shutdown.exitOnZeroActiveConnections) await sidecar.drainUntilIdle(Math.min(shutdown.minimumDrainSeconds, drainDeadlineSeconds));
  else await sidecar.drain(drainSeconds);
  mesh.close();
  return 0;
}

/**
 * DNS capture as Istio's agent reads it from the proxy metadata in its environment; undefined when
 * off. The nameservers are read once, at start, as the agent does.
 */
function dnsCapture(portFlag: string | undefined, resolvConf: string | undefined): SidecarDns | undefined {
  const on = (name: string): boolean => process.env[name]?.toLowerCase() === 'true';
  if (!on('ISTIO_META_DNS_CAPTURE')) return undefined;
  const file = resolvConf ?? DEFAULT_RESOLV_CONF;
  let conf: ResolvConf;
  try {
    conf = readResolvConf(file);
  } catch (err) {
    throw new UsageError(`--resolv-conf: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); DNS capture forwards to its nameservers`);
  }
  return {
    port: parsePort(portFlag, DNS_CAPTURE_PORT, '--dns-port'),
    nameservers: conf.nameservers.map((address) => ({ address, port: 53 })),
    ...(conf.search[0] ? { searchDomain: conf.search[0] } : {}),
    ...(on('ISTIO_META_DNS_AUTO_ALLOCATE') ? { autoAllocate: true } : {}),
  };
}
