// `meshgate demo` (what `npm start` runs): starts the demo backends of src/demo/topology.ts on
// loopback, then a gateway on the embedded gateway-config/, prints what to try, and stops everything
// on Ctrl-C.

import { relative, isAbsolute } from 'node:path';
import { startDemoMesh, type RunningDemoMesh } from '../demo/mesh.js';
import { DEMO_ADDRESS, DEMO_CONTROL_PORT, DEMO_HOSTS, DEMO_WORKLOADS } from '../demo/topology.js';
import { parse, parseMetricsPort, parsePort } from './options.js';
import { PACKAGED_CONFIG } from './default-config.js';
import { readableConfigDir } from './config-source.js';
import { stopRequested } from '../core/runtime/stop-signals.js';
import { UsageError } from './main.js';

export const DEMO_HELP = `usage: meshgate demo [options]

Starts the demo mesh on 127.0.0.1: a control plane (config stream and mesh CA, port 15012), the
demo apps (user-service v1, product-service v1 and v2) each behind its own sidecar, and a gateway,
all on the Istio YAML in the config folder; every hop between proxies is mutual TLS. Ctrl-C stops
everything.

  --config DIR          folder of Istio YAML (default: the gateway-config/ shipped with meshgate)
  --port N              where Gateway port 80 listens (default 8080)
  --https-port N        where Gateway port 443 listens (default 8443)
  --certs DIR           certificates folder; the demo CA and demo-tls are created there (default certs)
  --status-port N       readiness port, GET /healthz/ready (default 15021)
  --admin-port N        admin port on 127.0.0.1 (default 15000)
  --metrics-port N      the gateway's Istio metrics, GET /stats/prometheus (default 15090; 0 = off;
                        any = a port the OS chooses, named in the serving log line);
                        the sidecars serve theirs on 19381, 19382, 19383
  --listen-host ADDR    address the gateway listens on (default 127.0.0.1)
  --access-log WHERE    off | stdout | FILE (default stdout)`;


export async function runDemo(argv: string[]): Promise<number> {
  const { values } = parse(argv, {
    config: { type: 'string' },
    port: { type: 'string' },
    'https-port': { type: 'string' },
    certs: { type: 'string' },
    'status-port': { type: 'string' },
    'admin-port': { type: 'string' },
    'metrics-port': { type: 'string' },
    'listen-host': { type: 'string' },
    'access-log': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    console.log(DEMO_HELP);
    return 0;
  }
  // Checked before anything starts: a folder that is not there is one line, not a half-started mesh.
  const configDir = readableConfigDir(values.config ?? PACKAGED_CONFIG);
  const port = parsePort(values.port, 8080, '--port');
  const httpsPort = parsePort(values['https-port'], 8443, '--https-port');
  const certsDir = values.certs ?? 'certs';
  const statusPort = parsePort(values['status-port'], 15021, '--status-port');
  const adminPort = parsePort(values['admin-port'], 15000, '--admin-port');
  const metricsPort = parseMetricsPort(values['metrics-port'], 15090, '--metrics-port');
  const listenHost = values['listen-host'] ?? '127.0.0.1';
  if (values['access-log'] === '') throw new UsageError('--access-log needs off, stdout or a file name');

  let mesh: RunningDemoMesh;
  try {
    mesh = await startDemoMesh({
      configDir,
      certsDir,
      gatewayPorts: new Map([
        [80, port],
        [443, httpsPort],
      ]),
      listenHost,
      statusPort,
      adminPort,
      ...(metricsPort !== undefined ? { metricsPort } : {}),
      debugPort: 15014,
      accessLog: values['access-log'] ?? 'stdout',
    });
  } catch (err) {
    // The workloads' ports are fixed because services.yaml names them; no flag can move them.
    const fixed = [...DEMO_WORKLOADS.flatMap((w) => [w.port, w.appPort, w.outboundPort, w.metricsPort]), 15014].join(', ');
    const movable: Record<number, string> = { [port]: '--port', [httpsPort]: '--https-port', [statusPort]: '--status-port', [adminPort]: '--admin-port', ...(metricsPort ? { [metricsPort]: '--metrics-port' } : {}) };
    const flag = movable[(err as { port?: number }).port ?? -1];
    const hint = flag !== undefined ? `${flag} N moves it. ` : '';
    return failedToListen(err, 'a part of the demo', `${hint}It needs ${port}, ${httpsPort}, ${statusPort}, ${adminPort}, ${DEMO_CONTROL_PORT} and ${fixed}; is another demo running?`);
  }
  const gw = mesh.gateway;
  console.log(banner(displayPath(configDir), gw.listenPorts.get(80) ?? port, gw.listenPorts.get(443) ?? httpsPort, displayPath(mesh.demoCaFile), gw.statusPort, gw.adminPort, displayPath(mesh.rootCertFile)));

  // `npm start` passes its own SIGINT on, so one Ctrl-C may arrive twice: only a third one means "now".
  await stopRequested({ log: { info: (_f, message) => console.log(message), warn: (_f, message) => console.log(message) } });
  console.log('\nstopping: gateway, sidecars, apps, control plane');
  await mesh.close();
  return 0;
}

function failedToListen(err: unknown, what: string, hint: string): number {
  const e = err as NodeJS.ErrnoException & { port?: number };
  if (e.code === 'EADDRINUSE' || e.code === 'EACCES') {
    const where = e.port !== undefined ? `port ${e.port}` : 'its port';
    console.error(`meshgate demo: ${what} could not listen on ${where} (${e.code}). ${hint}`);
    return 1;
  }
  throw err;
}

function displayPath(dir: string): string {
  const rel = relative(process.cwd(), dir);
  return rel === '' ? '.' : rel.startsWith('..') || isAbsolute(rel) ? dir : rel;
}

function banner(config: string, port: number, httpsPort: number, caFile: string, statusPort: number, adminPort: number, meshRoot: string): string {
  const base = `http://127.0.0.1:${port}`;
  const [user, product, api] = DEMO_HOSTS;
  const workloads = DEMO_WORKLOADS.map((w) => `${w.instance}: sidecar ${DEMO_ADDRESS}:${w.port} (mTLS) → app :${w.appPort}, app's proxy :${w.outboundPort}`);
  const user0 = DEMO_WORKLOADS.find((w) => w.service === 'user-service')!;
  return `
meshgate demo: gateway on ${base} (Gateway port 80) and https://127.0.0.1:${httpsPort} (port 443), config ${config}
  mesh:     control plane https://127.0.0.1:${DEMO_CONTROL_PORT}, root ${meshRoot}
            ${workloads.join('\n            ')}
  ready:    http://127.0.0.1:${statusPort}/healthz/ready    admin: http://127.0.0.1:${adminPort}/routes
  graph:    http://127.0.0.1:15014/ (the live service graph; meshgate dashboard opens it)

Try:
  curl --cacert ${caFile} --resolve ${user}:${httpsPort}:127.0.0.1 https://${user}:${httpsPort}/
  curl --http2 --cacert ${caFile} --resolve ${product}:${httpsPort}:127.0.0.1 https://${product}:${httpsPort}/
  curl -i -H 'Host: ${user}' ${base}/                # 301 to https (httpsRedirect)
  curl -H 'Host: ${product}' ${base}/          # 90% v1, 10% v2; product calls user-service through the mesh
  for i in $(seq 100); do curl -s -H 'Host: ${product}' ${base}/ | grep '"version"' | head -1; done | sort | uniq -c
  curl -H 'Host: ${api}' ${base}/user/42
  curl -i -H 'Host: ${api}' ${base}/user/admin    # 403 RBAC: access denied (AuthorizationPolicy)
  curl -i -H 'Host: ${api}' ${base}/orders     # 404: no route
  curl -v http://127.0.0.1:${user0.port}/             # plaintext to a STRICT sidecar: refused
  openssl s_client -connect 127.0.0.1:${user0.port} -CAfile ${meshRoot} </dev/null 2>/dev/null | openssl x509 -noout -ext subjectAltName
  npx meshgate explain --config ${config} http://${api}/orders

Ctrl-C stops everything.`;
}
