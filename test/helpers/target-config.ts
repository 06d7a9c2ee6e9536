// A gateway configuration for the parse- and accept-stage tests: app.example.com on plain HTTP (80)
// and SIMPLE TLS with HTTP/2 (443), a route that denies /user/admin and /admin* with a 403 direct
// response, an AuthorizationPolicy selecting the gateway that denies /private and /private/*, and
// everything else to the app. The certificate comes from a throwaway root.

import { after, before } from 'node:test';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startGateway, type RunningGateway } from '../../src/gateway/main.js';
import type { HttpLimits } from '../../src/core/proxy/http-limits.js';
import { issueCertificate } from '../../src/core/tls/issue-certificate.js';
import { serviceYaml } from './cluster-yaml.js';
import type { TlsClient } from './raw-http.js';
import { startUpstream, type Upstream } from './upstream.js';

export const HOST = 'app.example.com';

/** `clientCa`: the 443 server is MUTUAL, requiring client certificates this root signed. */
export async function writeTargetConfig(dir: string, appPort: number, clientCa?: string): Promise<{ configDir: string; certsDir: string; caPem: string }> {
  const configDir = join(dir, 'config');
  const certsDir = join(dir, 'certs');
  await mkdir(join(certsDir, 'app-cert'), { recursive: true });
  await mkdir(configDir, { recursive: true });
  const root = issueCertificate({ subjectCN: 'request target test root', isCA: true, issuer: 'self', days: 2, keyType: 'ec' });
  const leaf = issueCertificate({ subjectCN: HOST, dnsNames: [HOST, 'other.example.com'], issuer: root, days: 2, keyType: 'ec' });
  await writeFile(join(certsDir, 'app-cert', 'tls.crt'), leaf.certPem);
  await writeFile(join(certsDir, 'app-cert', 'tls.key'), leaf.keyPem, { mode: 0o600 });
  if (clientCa) await writeFile(join(certsDir, 'app-cert', 'ca.crt'), clientCa);
  await writeFile(
    join(configDir, 'gw.yaml'),
    `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [${HOST}]
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [${HOST}]
    tls: {mode: ${clientCa ? 'MUTUAL' : 'SIMPLE'}, credentialName: app-cert}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app, namespace: default}
spec:
  hosts: [${HOST}]
  gateways: [edge]
  http:
  - match: [{uri: {exact: /user/admin}}, {uri: {prefix: /admin}}]
    directResponse: {status: 403, body: {string: denied}}
  - route: [{destination: {host: app}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-private, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: ingressgateway}}
  action: DENY
  rules:
  - to: [{operation: {paths: [/private, /private/*]}}]
`,
  );
  await writeFile(join(configDir, 'app.yaml'), serviceYaml('app', [{ pod: 'app-1', port: appPort }]));
  return { configDir, certsDir, caPem: root.certPem };
}

export interface TargetGateway {
  readonly gw: RunningGateway;
  /** The plaintext (80) and TLS (443) listen ports. */
  readonly plain: number;
  readonly tlsPort: number;
  /** How a client reaches the TLS port: the throwaway root and the SNI. */
  readonly tls: TlsClient;
  /** The folder the gateway watches: a file written there is a new configuration. */
  readonly configDir: string;
  close(): Promise<void>;
}

/** A gateway on loopback serving the configuration above, in front of the app on `appPort`. */
export async function startTargetGateway(appPort: number, limits?: HttpLimits, clientCa?: string): Promise<TargetGateway> {
  const dir = await mkdtemp(join(tmpdir(), 'meshgate-target-'));
  const cfg = await writeTargetConfig(dir, appPort, clientCa);
  const gw = await startGateway({
    configDir: cfg.configDir,
    certsDir: cfg.certsDir,
    ports: new Map([
      [80, 0],
      [443, 0],
    ]),
    listenHost: '127.0.0.1',
    statusPort: 0,
    adminPort: 0,
    accessLog: 'off',
    logger: pino({ level: 'silent' }),
    ...(limits ? { limits } : {}),
  });
  return {
    gw,
    plain: gw.listenPorts.get(80)!,
    tlsPort: gw.listenPorts.get(443)!,
    tls: { ca: cfg.caPem, servername: HOST },
    configDir: cfg.configDir,
    close: async () => {
      await gw.destroy();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** An app and a gateway in front of it, started before the calling suite's tests and stopped after them. */
export function targetGatewayForSuite(): { readonly app: Upstream; readonly target: TargetGateway } {
  let app: Upstream | undefined;
  let target: TargetGateway | undefined;
  before(async () => {
    app = await startUpstream('app');
    target = await startTargetGateway(app.port);
  });
  after(async () => {
    await target?.close();
    await app?.close();
  });
  return {
    get app() {
      return app!;
    },
    get target() {
      return target!;
    },
  };
}
