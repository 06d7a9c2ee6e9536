// ACME in cluster mode: the same cert-manager Issuer and Certificate YAML as in file mode, applied to
// the API stand-in, and the real gateway (KubeSource + KubeSecrets, the real client) orders from a
// real ACME server (Debian's pebble) and writes the result where cert-manager would: the Secret
// `secretName`, type kubernetes.io/tls, in the gateway's namespace; the account key goes to the
// privateKeySecretRef Secret. The credential store then serves it from that Secret.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { pino } from 'pino';
import { startGateway } from '../src/gateway/main.js';
import { KubeSource } from '../src/core/sources/kube-source.js';
import { KubeSecrets } from '../src/core/sources/kube-secrets.js';
import { startPebble } from './helpers/pebble.js';
import { startKubeApi } from './helpers/kube-api.js';
import { closedPort } from './helpers/upstream.js';
import { eventually } from './helpers/gateway.js';
import { certificateYaml, gatewayYaml, issuerYaml } from './helpers/cert-manager-yaml.js';

test('cluster mode: the ACME result lands in the Secret secretName (kubernetes.io/tls) and serves from there', async (t) => {
  const httpPort = await closedPort();
  const pebble = await startPebble(t, { httpPort });
  if (!pebble) return;
  t.after(() => pebble.close());
  const api = await startKubeApi();
  t.after(() => api.close());
  const dir = await mkdtemp(join(tmpdir(), 'meshgate-acme-kube-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  api.applyYaml(issuerYaml(pebble.directoryUrl));
  api.applyYaml(certificateYaml('shop-tls', ['shop.example.test']));
  api.applyYaml(gatewayYaml('shop-tls', 'shop.example.test'));

  const logger = pino({ level: 'silent' });
  const kubeconfig = api.kubeconfig();
  const backoff = { initialMs: 50, maxMs: 400 };
  const gw = await startGateway({
    source: new KubeSource({ kubeconfig, debounceMs: 20, backoff, logger }),
    secrets: new KubeSecrets({ kubeconfig, namespace: 'istio-system', logger, backoff }),
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
    logger,
  });
  t.after(() => gw.destroy());
  const servedIssuer = () =>
    new Promise<string>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port: gw.listenPorts.get(443)!, servername: 'shop.example.test', rejectUnauthorized: false }, () => {
        const cn = String(s.getPeerCertificate().issuer?.CN ?? '');
        s.destroy();
        resolve(cn);
      });
      s.once('error', reject);
    });
  const secretOf = () => api.get('v1', 'Secret', 'istio-system', 'shop-tls');
  await eventually(async () => /pebble/i.test(await servedIssuer().catch(() => '')), 30_000);

  const secret = secretOf();
  assert.ok(secret, 'Secret istio-system/shop-tls written');
  assert.equal(secret.type, 'kubernetes.io/tls');
  const chain = Buffer.from(secret.data['tls.crt'], 'base64').toString();
  const leaf = new X509Certificate(chain);
  assert.match(leaf.issuer, /pebble/i);
  assert.match(leaf.subjectAltName ?? '', /DNS:shop\.example\.test/);
  assert.ok(leaf.checkPrivateKey(await import('node:crypto').then((c) => c.createPrivateKey(Buffer.from(secret.data['tls.key'], 'base64').toString()))));
  assert.equal(secret.metadata.annotations['cert-manager.io/issuer-name'], 'pebble');
  assert.equal(secret.metadata.annotations['cert-manager.io/alt-names'], 'shop.example.test');
  assert.equal(JSON.parse(secret.metadata.annotations['meshgate.io/acme']).source, 'acme');
  // The first version was the self-signed stand-in, written the same way.
  const writes = api.requests.filter((r) => (r.method === 'POST' || r.method === 'PUT') && r.path.startsWith('/api/v1/namespaces/istio-system/secrets'));
  assert.ok(writes.some((w) => (w.body as { metadata?: { annotations?: Record<string, string> } }).metadata?.annotations?.['meshgate.io/source'] === 'self-signed'));
  assert.ok(writes.every((w) => w.path.startsWith('/api/v1/namespaces/istio-system/')), 'writes only in its own namespace');

  const account = api.get('v1', 'Secret', 'istio-system', 'pebble-account');
  assert.ok(account?.data?.['tls.key'], 'the ACME account key is the privateKeySecretRef Secret, key tls.key');
});
