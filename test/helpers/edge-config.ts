// A gateway configuration with every kind of listener a drain has to deal with, written to a folder:
// plain HTTP (port 80) and SIMPLE TLS with HTTP/2 (port 443) for app.example.com, and optionally a
// TCP server (port 9000) piping to an echo endpoint. The certificate comes from a throwaway root.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { issueCertificate } from '../../src/core/tls/issue-certificate.js';
import { serviceYaml } from './cluster-yaml.js';

export const APP_HOST = 'app.example.com';

export interface EdgeConfig {
  readonly configDir: string;
  readonly certsDir: string;
  /** PEM of the root that signed the app.example.com certificate. */
  readonly caPem: string;
}

export async function writeEdgeConfig(dir: string, appPort: number, opts: { tcpEchoPort?: number } = {}): Promise<EdgeConfig> {
  const configDir = join(dir, 'config');
  const certsDir = join(dir, 'certs');
  await mkdir(join(certsDir, 'app-cert'), { recursive: true });
  await mkdir(configDir, { recursive: true });
  const root = issueCertificate({ subjectCN: 'drain test root', isCA: true, issuer: 'self', days: 2 });
  const leaf = issueCertificate({ subjectCN: APP_HOST, dnsNames: [APP_HOST], issuer: root, days: 2 });
  await writeFile(join(certsDir, 'app-cert', 'tls.crt'), leaf.certPem);
  await writeFile(join(certsDir, 'app-cert', 'tls.key'), leaf.keyPem, { mode: 0o600 });
  const tcp = opts.tcpEchoPort !== undefined;
  await writeFile(
    join(configDir, 'gw.yaml'),
    `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [${APP_HOST}]
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [${APP_HOST}]
    tls: {mode: SIMPLE, credentialName: app-cert}${tcp ? `
  - port: {number: 9000, name: tcp, protocol: TCP}
    hosts: ['*']` : ''}
`,
  );
  await writeFile(
    join(configDir, 'routes.yaml'),
    `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app, namespace: default}
spec:
  hosts: [${APP_HOST}]
  gateways: [edge]
  http:
  - route: [{destination: {host: app}}]
${tcp ? `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo, namespace: default}
spec:
  hosts: ['*']
  gateways: [edge]
  tcp:
  - route: [{destination: {host: echo}}]
` : ''}`,
  );
  await writeFile(join(configDir, 'app.yaml'), serviceYaml('app', [{ pod: 'app-1', port: appPort }]));
  if (tcp) await writeFile(join(configDir, 'echo.yaml'), serviceYaml('echo', [{ pod: 'echo-1', port: opts.tcpEchoPort! }], { port: 9000, portName: 'tcp' }));
  return { configDir, certsDir, caPem: root.certPem };
}
