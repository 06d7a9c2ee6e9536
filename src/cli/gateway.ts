// `meshgate gateway`: run the ingress gateway until SIGTERM/SIGINT, on a folder of YAML or on the
// Kubernetes API.

import { pino, type Logger } from 'pino';
import { readFileSync } from 'node:fs';
import { startGateway } from '../gateway/main.js';
import type { ConfigSource } from '../core/sources/source.js';
import { parse, parseLabels, parsePort, parsePorts } from './options.js';
import { UsageError } from './main.js';

export const GATEWAY_HELP = `usage: meshgate gateway --config DIR --ports 80=8080[,443=8443] [options]
       meshgate gateway --config-source kubernetes [--kubeconfig PATH] [--watch-namespaces a,b] [options]

  --config DIR          folder of Istio YAML (watched; edits apply without restart)
  --config-source kubernetes
                        read Istio resources, Services, EndpointSlices and Pods from the API server
                        (list+watch; kubectl apply takes effect without restart)
  --kubeconfig PATH     kubeconfig for --config-source kubernetes (default: $KUBECONFIG,
                        ~/.kube/config, else the pod's service account)
  --watch-namespaces LIST
                        only these namespaces, e.g. default,shop (default: all)
  --ports LIST          Gateway port=listen port pairs, e.g. 80=8080,443=8443
  --status-port N       readiness port, GET /healthz/ready (default 15021)
  --admin-port N        admin port on 127.0.0.1: /routes /clusters /config_dump (default 15000)
  --labels LIST         this gateway's labels for Gateway selectors (default istio=ingressgateway)
  --namespace NS        the gateway's namespace (default istio-system)
  --listen-host ADDR    address to listen on (default 0.0.0.0)
  --access-log WHERE    off | stdout | FILE (default stdout)
  --certs DIR           certificates for credentialName: DIR/<name>/tls.crt, tls.key, ca.crt (default certs)
  --acme-ca FILE        extra CA (PEM) to trust for ACME servers, e.g. a private ACME CA
  --redis URL           Redis for RateLimitPolicy counters with store: redis, shared by every
                        gateway replica, e.g. redis://redis.istio-system:6379 (while Redis is
                        unreachable each gateway limits in its own memory)
  --trusted-proxies N   proxies in front of the gateway that append to x-forwarded-for; rate
                        limits by clientIp count the N-th address from its right (Envoy's
                        xff_num_trusted_hops; default 0: the connection's peer address)
  --drain-seconds N     on SIGTERM: fail readiness, keep serving N seconds, then close (default 5)`;

export async function runGatewayCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    config: { type: 'string' },
    'config-source': { type: 'string' },
    kubeconfig: { type: 'string' },
    'watch-namespaces': { type: 'string' },
    ports: { type: 'string' },
    'status-port': { type: 'string' },
    'admin-port': { type: 'string' },
    labels: { type: 'string' },
    namespace: { type: 'string' },
    'listen-host': { type: 'string' },
    'access-log': { type: 'string' },
    certs: { type: 'string' },
    'acme-ca': { type: 'string' },
    redis: { type: 'string' },
    'trusted-proxies': { type: 'string' },
    'drain-seconds': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    console.log(GATEWAY_HELP);
    return 0;
  }
  // Every option is checked before anything starts, so a typo costs nothing but the message.
  const choice = sourceChoice(values);
  const drainSeconds = values['drain-seconds'] === undefined ? 5 : Number(values['drain-seconds']);
  if (!Number.isFinite(drainSeconds) || drainSeconds < 0) throw new UsageError(`--drain-seconds: '${values['drain-seconds']}' is not a number of seconds`);
  const trustedProxies = values['trusted-proxies'] === undefined ? 0 : Number(values['trusted-proxies']);
  if (!Number.isInteger(trustedProxies) || trustedProxies < 0) throw new UsageError(`--trusted-proxies: '${values['trusted-proxies']}' is not a number of proxies (0, 1, 2 ...)`);
  if (values.redis !== undefined && !/^rediss?:\/\/[^/]/.test(values.redis)) throw new UsageError(`--redis: '${values.redis}' is not a redis:// or rediss:// URL`);
  const common = {
    ports: parsePorts(values.ports ?? '80=8080'),
    statusPort: parsePort(values['status-port'], 15021, '--status-port'),
    adminPort: parsePort(values['admin-port'], 15000, '--admin-port'),
    labels: values.labels ? parseLabels(values.labels) : { istio: 'ingressgateway' },
    namespace: values.namespace ?? 'istio-system',
    listenHost: values['listen-host'] ?? '0.0.0.0',
    accessLog: values['access-log'] ?? 'stdout',
    certsDir: values.certs ?? 'certs',
    ...(values['acme-ca'] ? { acmeCa: readFileSync(values['acme-ca'], 'utf8') } : {}),
    ...(values.redis !== undefined ? { redisUrl: values.redis } : {}),
    trustedProxies,
  };
  const log = pino({ name: 'meshgate-gateway' }, pino.destination(2));
  const gw = await startGateway({
    ...common,
    logger: log,
    ...('dir' in choice ? { configDir: choice.dir } : { source: await kubeSource(choice, log) }),
  });
  // SIGTERM (Kubernetes stopping the pod): drain first. Ctrl-C: a person is waiting, stop now.
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  await (signal === 'SIGTERM' ? gw.drain(drainSeconds) : gw.close());
  return 0;
}

type SourceChoice = { readonly dir: string } | { readonly kubeconfig: string | undefined; readonly namespaces: string[] };

/** `--config DIR`, or `--config-source kubernetes` with its own options; exactly one. */
function sourceChoice(values: { config?: string; 'config-source'?: string; kubeconfig?: string; 'watch-namespaces'?: string }): SourceChoice {
  const kind = values['config-source'];
  if (kind !== undefined && kind !== 'kubernetes') throw new UsageError(`--config-source: '${kind}' is not a source meshgate knows (use 'kubernetes')`);
  if (kind && values.config) throw new UsageError('give --config DIR or --config-source kubernetes, not both');
  if (!kind && !values.config) throw new UsageError('--config DIR or --config-source kubernetes is required');
  if (!kind) {
    if (values.kubeconfig !== undefined || values['watch-namespaces'] !== undefined) {
      throw new UsageError('--kubeconfig and --watch-namespaces go with --config-source kubernetes');
    }
    return { dir: values.config! };
  }
  const namespaces = (values['watch-namespaces'] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  return { kubeconfig: values.kubeconfig, namespaces };
}

async function kubeSource(choice: { readonly kubeconfig: string | undefined; readonly namespaces: string[] }, log: Logger): Promise<ConfigSource> {
  // Loaded only here: the Kubernetes client is large, and every other command can do without it.
  const { KubeSource, loadKubeConfig } = await import('../core/sources/kube-source.js');
  let kubeconfig;
  try {
    kubeconfig = loadKubeConfig(choice.kubeconfig);
  } catch (err) {
    throw new UsageError(`--kubeconfig: cannot load ${choice.kubeconfig ?? 'the default kubeconfig'}: ${(err as Error).message}`);
  }
  return new KubeSource({ kubeconfig, namespaces: choice.namespaces, logger: log.child({ source: 'kubernetes' }) });
}
