// `meshgate gateway`: run the ingress gateway until SIGTERM/SIGINT.

import { startGateway } from '../gateway/main.js';
import { parse, parseLabels, parsePort, parsePorts } from './options.js';
import { UsageError } from './main.js';

export const GATEWAY_HELP = `usage: meshgate gateway --config DIR --ports 80=8080[,443=8443] [options]

  --config DIR          folder of Istio YAML (watched; edits apply without restart)
  --ports LIST          Gateway port=listen port pairs, e.g. 80=8080,443=8443
  --status-port N       readiness port, GET /healthz/ready (default 15021)
  --admin-port N        admin port on 127.0.0.1: /routes /clusters /config_dump (default 15000)
  --labels LIST         this gateway's labels for Gateway selectors (default istio=ingressgateway)
  --namespace NS        the gateway's namespace (default istio-system)
  --listen-host ADDR    address to listen on (default 0.0.0.0)
  --access-log WHERE    off | stdout | FILE (default stdout)`;

export async function runGatewayCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    config: { type: 'string' },
    ports: { type: 'string' },
    'status-port': { type: 'string' },
    'admin-port': { type: 'string' },
    labels: { type: 'string' },
    namespace: { type: 'string' },
    'listen-host': { type: 'string' },
    'access-log': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    console.log(GATEWAY_HELP);
    return 0;
  }
  if (!values.config) throw new UsageError('--config DIR is required');
  const gw = await startGateway({
    configDir: values.config,
    ports: parsePorts(values.ports ?? '80=8080'),
    statusPort: parsePort(values['status-port'], 15021, '--status-port'),
    adminPort: parsePort(values['admin-port'], 15000, '--admin-port'),
    labels: values.labels ? parseLabels(values.labels) : { istio: 'ingressgateway' },
    namespace: values.namespace ?? 'istio-system',
    listenHost: values['listen-host'] ?? '0.0.0.0',
    accessLog: values['access-log'] ?? 'stdout',
  });
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  await gw.close();
  return 0;
}
