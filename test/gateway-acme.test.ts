// End to end: the real gateway obtains a certificate from a real ACME server (Debian's pebble),
// answering the HTTP-01 challenge on its own HTTP port before routing, and serves the issued
// certificate on its HTTPS port — after a self-signed stand-in while the order runs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { pino } from 'pino';
import { startGateway } from '../src/gateway/main.js';
import { startPebble } from './helpers/pebble.js';
import { closedPort } from './helpers/upstream.js';
import { eventually } from './helpers/gateway.js';

test('the gateway gets its certificate by ACME HTTP-01 on its own port and serves it', async (t) => {
  const httpPort = await closedPort();
  const pebble = await startPebble(t, { httpPort });
  if (!pebble) return;
  t.after(() => pebble.close());
  const dir = await mkdtemp(join(tmpdir(), 'meshgate-acme-e2e-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const config = join(dir, 'config');
  await mkdir(config);
  await writeFile(
    join(config, 'all.yaml'),
    `apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: pebble, namespace: istio-system}
spec:
  acme:
    server: ${pebble.directoryUrl}
    email: ops@example.test
    privateKeySecretRef: {name: pebble-account}
    solvers: [{http01: {ingress: {}}}]
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: shop, namespace: istio-system}
spec:
  secretName: shop-tls
  dnsNames: [shop.example.test]
  issuerRef: {name: pebble, kind: Issuer}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [shop.example.test]
    tls: {httpsRedirect: true}
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: [shop.example.test]
    tls: {mode: SIMPLE, credentialName: shop-tls}
`,
  );
  const gw = await startGateway({
    configDir: config,
    certsDir: join(dir, 'certs'),
    acmeCa: pebble.caPem,
    ports: new Map([
      [80, httpPort],
      [443, 0],
    ]),
    listenHost: '127.0.0.1',
    statusPort: 0,
    adminPort: 0,
    accessLog: 'off',
    logger: pino({ level: 'silent' }),
  });
  t.after(() => gw.destroy());
  const issuerCN = () =>
    new Promise<string>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port: gw.listenPorts.get(443)!, servername: 'shop.example.test', rejectUnauthorized: false }, () => {
        const cn = String(s.getPeerCertificate().issuer?.CN ?? '');
        s.destroy();
        resolve(cn);
      });
      s.once('error', reject);
    });
  // The HTTP port answers the challenge even though every other request there is redirected to HTTPS.
  await eventually(async () => /pebble/i.test(await issuerCN().catch(() => '')), 30_000);
});
