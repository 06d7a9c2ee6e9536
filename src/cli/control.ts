// `meshgate control`: run the control plane until SIGTERM/SIGINT: the validated configuration of a
// folder or of the Kubernetes API streamed to proxies, and the mesh CA signing their certificates.

import { createLogger } from '../core/telemetry/logger.js';
import { join } from 'node:path';
import { loadOrCreateAuthority } from '../core/pki/authority.js';
import { ROOT_CERT_FILE } from '../core/pki/ca-files.js';
import { CONTROL_PLANE_PORT } from '../core/sources/control-plane-wire.js';
import { startControlPlane } from '../control/main.js';
import { FileTokenAuthenticator, type Authenticator } from '../control/token-authenticator.js';
import { TokenReviewAuthenticator } from '../control/token-review.js';
import { loadOrCreateCaSecrets } from '../control/ca-secrets.js';
import type { KubeConfig } from '@kubernetes/client-node';
import { kubeSource, readableConfigDir, sourceChoice, usableKubeConfig } from './config-source.js';
import { parse, parseMetricsPort, parsePort } from './options.js';
import { stopRequested } from '../core/runtime/stop-signals.js';
import { UsageError } from './main.js';
import { INJECTION_FLAGS, INJECTION_HELP, injectionOptions } from './injection-options.js';
import { DEFAULT_INJECT_IMAGE } from '../core/inject/defaults.js';
import { ServedTrustDomain } from '../control/served-trust-domain.js';

export const CONTROL_HELP = `usage: meshgate control --config DIR --tokens FILE [options]
       meshgate control --config-source kubernetes [--kubeconfig PATH] [--watch-namespaces a,b] [options]

Serves proxies on one TLS port: the validated configuration as a stream (every change becomes a new
version) and the mesh CA, which signs their certificates for the identity their token stands for.

In cluster mode (--config-source kubernetes), as istiod: proxies authenticate with their projected
service-account token (audience istio-ca), checked by the API server (TokenReview), and the identity
is the one the review names; the CA is the Secret cacerts in --namespace when present (plugged in),
else a self-signed root kept in the Secret istio-ca-secret (made on first start, reused after); the
root is published as the ConfigMap istio-ca-root-cert (key root-cert.pem) in every namespace.
Replicas elect, as istiod's do, one of them to publish it and one to deploy Gateway API gateways
(Leases istio-namespace-controller-election and istio-gateway-deployment-default in --namespace,
held as $POD_NAME); every replica serves proxies, signs and injects.

  --config DIR          folder of Istio YAML (watched)
  --config-source kubernetes
                        read the configuration from the API server (list+watch)
  --kubeconfig PATH     kubeconfig for --config-source kubernetes
  --watch-namespaces LIST
                        only these namespaces (default: all)
  --tokens FILE         YAML list of {token, namespace, serviceAccount}: the callers and the identity
                        each token stands for (re-read when it changes); --config DIR only
  --namespace NS        cluster mode: the control plane's namespace, where the CA Secrets and the
                        leader Leases are (default: $POD_NAMESPACE, else istio-system)
  --port N              TLS port for proxies (default ${CONTROL_PLANE_PORT})
  --ca-dir DIR          the mesh CA: ca-cert.pem, ca-key.pem, root-cert.pem[, cert-chain.pem]; an
                        empty folder gets a new self-signed root (default certs/mesh-ca; in
                        cluster mode the Secrets above unless --ca-dir is given)
  --trust-domain NAME   SPIFFE trust domain of the certificates it issues; overrides the mesh
                        config's trustDomain (default: that, else cluster.local)
  --hostname NAME       another name proxies reach the control plane by, for its certificate
                        (repeatable; localhost, 127.0.0.1 and meshgate-control[.istio-system.svc] always are)
  --status-port N       readiness port, GET /healthz/ready (default 15021)
  --debug-port N        GET /debug/proxies, every proxy with its identity, address and versions;
                        on 127.0.0.1 only, whatever --listen-host says (default 15014); also
                        GET /metrics (istiod's names) and the mesh dashboard at /
  --metrics-port N      GET /metrics on --listen-host, for Prometheus in the cluster (default 0 = off;
                        any = a port the OS chooses, named in the serving log line; the debug
                        port serves /metrics on the machine either way)
  --listen-host ADDR    address to listen on (default 0.0.0.0)
${INJECTION_HELP}

Proxies trust the control plane through the CA's root: give them <ca-dir>/${ROOT_CERT_FILE}.`;

export async function runControlCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    config: { type: 'string' },
    'config-source': { type: 'string' },
    kubeconfig: { type: 'string' },
    'watch-namespaces': { type: 'string' },
    tokens: { type: 'string' },
    namespace: { type: 'string' },
    port: { type: 'string' },
    'ca-dir': { type: 'string' },
    'trust-domain': { type: 'string' },
    hostname: { type: 'string', multiple: true },
    'status-port': { type: 'string' },
    'debug-port': { type: 'string' },
    'metrics-port': { type: 'string' },
    'listen-host': { type: 'string' },
    ...INJECTION_FLAGS,
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    console.log(CONTROL_HELP);
    return 0;
  }
  const choice = sourceChoice(values);
  if ('control' in choice) throw new UsageError('the control plane reads --config DIR or --config-source kubernetes');
  const cluster = 'kubeconfig' in choice;
  if (cluster && values.tokens !== undefined) {
    throw new UsageError('--tokens is for --config DIR: with --config-source kubernetes proxies authenticate with their service-account tokens (TokenReview)');
  }
  if (!cluster && values.namespace !== undefined) throw new UsageError('--namespace goes with --config-source kubernetes');
  // File mode: without a token file nobody could call.
  if (!cluster && !values.tokens) throw new UsageError('--tokens FILE is required (a YAML list of {token, namespace, serviceAccount})');
  const port = parsePort(values.port, CONTROL_PLANE_PORT, '--port');
  const statusPort = parsePort(values['status-port'], 15021, '--status-port');
  const debugPort = parsePort(values['debug-port'], 15014, '--debug-port');
  const metricsPort = parseMetricsPort(values['metrics-port'], 0, '--metrics-port');
  const hostnames = (values.hostname ?? []).flatMap((h) => h.split(',')).map((h) => h.trim()).filter(Boolean);
  const caDir = values['ca-dir'] ?? join('certs', 'mesh-ca');
  const namespace = values.namespace ?? (process.env.POD_NAMESPACE || 'istio-system');

  if ('dir' in choice) readableConfigDir(choice.dir);
  const log = createLogger('meshgate-control');
  const served = new ServedTrustDomain(values['trust-domain'] || undefined, log.child({ component: 'ca' }));
  const trust = { trustDomain: () => served.current() };
  const stop = stopRequested({ log });
  let kubeconfig: KubeConfig | undefined;
  if (cluster) kubeconfig = await usableKubeConfig(choice);
  const caWhere = kubeconfig && values['ca-dir'] === undefined ? `namespace ${namespace}` : caDir;
  const authority = kubeconfig && values['ca-dir'] === undefined ? await loadOrCreateCaSecrets(kubeconfig, namespace, { ...trust, logger: log.child({ component: 'ca' }) }) : loadOrCreateAuthority(caDir, trust);
  if (!authority.ok) {
    console.error(`meshgate control: the CA in ${caWhere} cannot be used: ${authority.message}`);
    return 1;
  }
  let authenticator: Authenticator;
  if (kubeconfig) authenticator = new TokenReviewAuthenticator({ kubeconfig, logger: log.child({ component: 'tokenreview' }) });
  else {
    const tokens = await FileTokenAuthenticator.load(values.tokens!, log.child({ component: 'tokens' }));
    if (!tokens.ok) {
      console.error(`meshgate control: ${tokens.message}`);
      return 1;
    }
    authenticator = tokens.authenticator;
  }
  const cp = await startControlPlane({
    ca: authority.ca,
    trustDomain: served,
    authenticator,
    // Gateway API automated deployment: the gateways run the image injected sidecars run, as Istio's do.
    // Its controllers that write to the API server run on one replica at a time: Leases in its namespace.
    ...(kubeconfig ? { kubeconfig, gatewayImage: values['proxy-image'] ?? DEFAULT_INJECT_IMAGE, election: { namespace } } : {}),
    port,
    statusPort,
    debugPort,
    ...(metricsPort !== undefined ? { metricsPort } : {}),
    hostnames,
    listenHost: values['listen-host'] ?? '0.0.0.0',
    logger: log,
    ...('dir' in choice ? { configDir: choice.dir } : { source: await kubeSource(choice, log) }),
    ...injectionOptions(values, 'dir' in choice ? undefined : choice, values['trust-domain'], log),
  });
  if (!kubeconfig) log.info({ rootCert: join(caDir, ROOT_CERT_FILE) }, 'proxies verify the control plane with this root');
  await stop;
  await cp.close();
  return 0;
}
