// A gateway configuration for the parse- and accept-stage tests: app.example.com on plain HTTP (80)
// and SIMPLE TLS with HTTP/2 (443), a route that denies /user/admin and /admin* with a 403 direct
// response, and everything else to the app. The certificate comes from a throwaway root.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { issueCertificate } from '../../src/core/tls/issue-certificate.js';
import { serviceYaml } from './cluster-yaml.js';

export const HOST = 'app.example.com';

export async function writeTargetConfig(dir: string, appPort: number): Promise<{ configDir: string; certsDir: string; caPem: string }> {
  const configDir = join(dir, 'config');
  const certsDir = join(dir, 'certs');
  await mkdir(join(certsDir, 'app-cert'), { recursive: true });
  await mkdir(configDir, { recursive: true });
  const root = issueCertificate({ subjectCN: 'request target test root', isCA: true, issuer: 'self', days: 2, keyType: 'ec' });
  const leaf = issueCertificate({ subjectCN: HOST, dnsNames: [HOST, 'other.example.com'], issuer: root, days: 2, keyType: 'ec' });
  await writeFile(join(certsDir, 'app-cert', 'tls.crt'), leaf.certPem);
  await writeFile(join(certsDir, 'app-cert', 'tls.key'), leaf.keyPem, { mode: 0o600 });
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
    tls: {mode: SIMPLE, credentialName: app-cert}
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
`,
  );
  await writeFile(join(configDir, 'app.yaml'), serviceYaml('app', [{ pod: 'app-1', port: appPort }]));
  return { configDir, certsDir, caPem: root.certPem };
}
