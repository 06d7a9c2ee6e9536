// Gateway certificates from Kubernetes Secrets (cluster mode), against the API stand-in with the real
// @kubernetes/client-node: `kubectl create secret tls` then HTTPS works; an update rotates the
// certificate under a request loop with no failed request; a malformed or deleted Secret keeps the
// last good certificate and says why without logging key material; generic Secrets with
// cert/key/cacert and the separate `<name>-cacert` Secret for MUTUAL; only the gateway's own
// namespace is read, with the type filter on list and watch.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpsRequest } from 'node:https';
import { X509Certificate } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { KubeSource } from '../src/core/sources/kube-source.js';
import { KubeSecrets } from '../src/core/sources/kube-secrets.js';
import { startGateway, type RunningGateway } from '../src/gateway/main.js';
import { issueCertificate } from '../src/core/tls/issue-certificate.js';
import { startKubeApi, type KubeApiStandIn } from './helpers/kube-api.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { eventually } from './helpers/gateway.js';
import { serviceYaml } from './helpers/cluster-yaml.js';

type Pem = { certPem: string; keyPem: string };
const NS = 'istio-system';
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

function memoryLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _enc, cb) => (lines.push(...chunk.toString().split('\n').filter(Boolean)), cb()) });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

/** `kubectl create secret tls NAME --cert --key`, as the API server stores it. */
function tlsSecret(name: string, pem: Pem, extra: Record<string, string> = {}, ns = NS) {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: ns }, type: 'kubernetes.io/tls', data: { 'tls.crt': b64(pem.certPem), 'tls.key': b64(pem.keyPem), ...extra } };
}
function opaqueSecret(name: string, data: Record<string, string>, ns = NS) {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: ns }, type: 'Opaque', data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])) };
}

function gatewayWithTls(servers: Array<{ host: string; tls: Record<string, unknown> }>): string {
  return `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: ${NS}}
spec:
  selector: {istio: ingressgateway}
  servers:
${servers.map((s, i) => `  - port: {number: 443, name: https-${i}, protocol: HTTPS}
    hosts: [${s.host}]
    tls: ${JSON.stringify(s.tls)}`).join('\n')}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app, namespace: default}
spec:
  hosts: [${servers.map((s) => s.host).join(', ')}]
  gateways: [${NS}/gw]
  http: [{route: [{destination: {host: app}}]}]
`;
}

interface Answer {
  readonly status: number;
  readonly serial: string;
}

/** One HTTPS request on a fresh connection (no keep-alive): the status and the certificate served. */
function get(port: number, host: string, opts: { ca: string; cert?: Pem } ): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, servername: host, path: '/', headers: { host }, ca: opts.ca, agent: false, ...(opts.cert ? { cert: opts.cert.certPem, key: opts.cert.keyPem } : {}) },
      (res) => {
        const serial = (res.socket as import('node:tls').TLSSocket).getPeerCertificate().serialNumber ?? '';
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, serial }));
      },
    );
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

const serialOf = (pem: Pem) => new X509Certificate(pem.certPem).serialNumber;

describe('gateway certificates from Secrets (--config-source kubernetes)', () => {
  let api: KubeApiStandIn;
  let app: Upstream;
  let ca: Pem;
  const leaf = (host: string) => issueCertificate({ subjectCN: host, dnsNames: [host], issuer: ca, days: 1, keyType: 'ec', extKeyUsage: ['serverAuth'] });

  before(async () => {
    api = await startKubeApi();
    app = await startUpstream('app');
    ca = issueCertificate({ subjectCN: 'test root', days: 1, isCA: true, keyType: 'ec' });
    api.applyYaml(serviceYaml('app', [{ pod: 'app-1', port: app.port }]));
  });
  after(async () => {
    await api?.close();
    await app?.close();
  });

  async function gateway(logger: Logger): Promise<{ gw: RunningGateway; port: number }> {
    const kubeconfig = api.kubeconfig();
    const backoff = { initialMs: 50, maxMs: 400 };
    const gw = await startGateway({
      source: new KubeSource({ kubeconfig, debounceMs: 20, backoff, logger }),
      secrets: new KubeSecrets({ kubeconfig, namespace: NS, logger, backoff }),
      ports: new Map([[443, 0]]),
      listenHost: '127.0.0.1',
      statusPort: 0,
      adminPort: 0,
      accessLog: 'off',
      logger,
    });
    return { gw, port: gw.listenPorts.get(443)! };
  }

  it('kubectl create secret tls, then HTTPS; an update rotates under load with no failed request; broken or deleted keeps the last good one', async (t) => {
    api.applyYaml(gatewayWithTls([{ host: 'shop.example.com', tls: { mode: 'SIMPLE', credentialName: 'shop-tls' } }]));
    // The same name in another namespace: never read, never served.
    const foreign = leaf('shop.example.com');
    api.apply(tlsSecret('shop-tls', foreign, {}, 'default'));
    const { logger, lines } = memoryLogger();
    const { gw, port } = await gateway(logger);
    const first = leaf('shop.example.com');
    const second = leaf('shop.example.com');
    try {
      await assert.rejects(get(port, 'shop.example.com', { ca: ca.certPem }), 'no certificate before the Secret exists');

      const created = Date.now();
      api.apply(tlsSecret('shop-tls', first));
      await eventually(async () => (await get(port, 'shop.example.com', { ca: ca.certPem }).catch(() => ({ status: 0, serial: '' }))).status === 200);
      const tookMs = Date.now() - created;
      t.diagnostic(`first HTTPS answer ${tookMs} ms after the Secret was created`);
      assert.equal((await get(port, 'shop.example.com', { ca: ca.certPem })).serial, serialOf(first));

      // Rotation under a request loop: every request must succeed, and the new certificate must appear.
      const seen: string[] = [];
      const failures: string[] = [];
      let stop = false;
      const loop = (async () => {
        while (!stop) {
          try {
            const a = await get(port, 'shop.example.com', { ca: ca.certPem });
            if (a.status !== 200) failures.push(`status ${a.status}`);
            seen.push(a.serial);
          } catch (err) {
            failures.push((err as Error).message);
          }
        }
      })();
      try {
        await eventually(async () => seen.length >= 5);
        api.apply(tlsSecret('shop-tls', second));
        await eventually(async () => seen.slice(-3).length === 3 && seen.slice(-3).every((s) => s === serialOf(second)));
      } finally {
        // Also when a wait fails: the loop would keep the test file running for ever.
        stop = true;
        await loop;
      }
      assert.deepEqual(failures, [], 'no request failed during the rotation');
      assert.ok(seen.includes(serialOf(first)) && seen.includes(serialOf(second)));
      assert.ok(!seen.includes(serialOf(foreign)), 'the Secret of another namespace is never served');
      t.diagnostic(`${seen.length} requests across the rotation, ${failures.length} failed`);

      // A key that does not match the certificate: refused, the last good one keeps serving.
      api.apply(tlsSecret('shop-tls', { certPem: leaf('shop.example.com').certPem, keyPem: first.keyPem }));
      await eventually(async () => lines.some((l) => l.includes('shop-tls') && l.includes('does not match')));
      assert.equal((await get(port, 'shop.example.com', { ca: ca.certPem })).serial, serialOf(second));
      // Not PEM at all.
      api.apply({ ...tlsSecret('shop-tls', second), data: { 'tls.crt': b64('garbage'), 'tls.key': b64(second.keyPem) } });
      await eventually(async () => lines.some((l) => l.includes('shop-tls') && l.includes('holds no PEM certificate')));
      assert.equal((await get(port, 'shop.example.com', { ca: ca.certPem })).serial, serialOf(second));
      // Deleted.
      api.delete('Secret', NS, 'shop-tls');
      await eventually(async () => lines.some((l) => l.includes(`Secret ${NS}/shop-tls does not exist`) && l.includes('keeping the certificate')));
      assert.equal((await get(port, 'shop.example.com', { ca: ca.certPem })).serial, serialOf(second));

      // Key material never reaches the log.
      const keyBody = (pem: Pem) => pem.keyPem.split('\n')[1]!;
      for (const l of lines) {
        assert.ok(!l.includes('PRIVATE KEY'), `log line carries a key: ${l.slice(0, 120)}`);
        for (const k of [first, second, foreign]) assert.ok(!l.includes(keyBody(k)) && !l.includes(b64(k.keyPem).slice(0, 40)));
      }

      // Namespace-scoped list and watch, filtered by type, and nothing else about Secrets.
      const secretCalls = api.requests.filter((r) => r.path.includes('/secrets'));
      assert.ok(secretCalls.length >= 2);
      for (const r of secretCalls) {
        assert.equal(r.path, `/api/v1/namespaces/${NS}/secrets`);
        assert.equal(r.method, 'GET');
        assert.equal(r.query.fieldSelector, 'type!=helm.sh/release.v1,type!=kubernetes.io/service-account-token');
      }
    } finally {
      await gw.destroy();
      api.delete('Gateway', NS, 'gw');
      api.delete('VirtualService', 'default', 'app');
    }
  });

  it('generic Secrets (cert/key/cacert) and the separate <name>-cacert Secret verify client certificates for MUTUAL', async () => {
    const clientCa = issueCertificate({ subjectCN: 'client root', days: 1, isCA: true, keyType: 'ec' });
    const client = issueCertificate({ subjectCN: 'client', issuer: clientCa, days: 1, keyType: 'ec', extKeyUsage: ['clientAuth'] });
    const stranger = issueCertificate({ subjectCN: 'stranger', days: 1, keyType: 'ec', extKeyUsage: ['clientAuth'] });
    const a = leaf('a.example.com');
    const b = leaf('b.example.com');
    api.apply(opaqueSecret('a-cred', { cert: a.certPem, key: a.keyPem, cacert: clientCa.certPem }));
    api.apply(tlsSecret('b-cred', b));
    api.apply(opaqueSecret('b-cred-cacert', { cacert: clientCa.certPem }));
    api.applyYaml(
      gatewayWithTls([
        { host: 'a.example.com', tls: { mode: 'MUTUAL', credentialName: 'a-cred' } },
        { host: 'b.example.com', tls: { mode: 'MUTUAL', credentialName: 'b-cred' } },
      ]),
    );
    const { logger } = memoryLogger();
    const { gw, port } = await gateway(logger);
    try {
      for (const [host, pem] of [['a.example.com', a], ['b.example.com', b]] as const) {
        await eventually(async () => (await get(port, host, { ca: ca.certPem, cert: client }).catch(() => ({ status: 0, serial: '' }))).status === 200);
        assert.equal((await get(port, host, { ca: ca.certPem, cert: client })).serial, serialOf(pem));
        await assert.rejects(get(port, host, { ca: ca.certPem }), `${host}: no client certificate is refused`);
        await assert.rejects(get(port, host, { ca: ca.certPem, cert: stranger }), `${host}: a client certificate of another CA is refused`);
      }
    } finally {
      await gw.destroy();
    }
  });
});

describe('gateway Secrets: start-up', () => {
  it('a gateway that may not list its Secrets does not start, and says why', async () => {
    const api = await startKubeApi();
    try {
      api.setForbidden('secrets', true);
      const kubeconfig = api.kubeconfig();
      const secrets = new KubeSecrets({ kubeconfig, namespace: NS, logger: pino({ level: 'silent' }), backoff: { initialMs: 20, maxMs: 50 } });
      await assert.rejects(secrets.start(300), /cannot list \/api\/v1\/namespaces\/istio-system\/secrets .*403 Forbidden/);
      await secrets.close();
    } finally {
      await api.close();
    }
  });
});
