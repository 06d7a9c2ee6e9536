// Kubernetes Ingress on a real gateway reading files: Istio's "Kubernetes Ingress" task as written
// (an IngressClass for istio.io/ingress-controller, ingressClassName: istio), the legacy class
// annotation, Exact against Prefix (whole path elements), ImplementationSpecific paths ending in /*,
// longer paths first across Ingresses, a named service port, 404 for what no rule matches, Ingresses
// of another class or of none left alone (Istio's default ingressControllerMode is STRICT), and
// HTTPS on 443 from a tls entry's secretName.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { issueCertificate, type IssuedCertificate } from '../src/core/tls/issue-certificate.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { ingressPath, ingressYaml } from './helpers/ingress-yaml.js';
import { writeCredential } from './helpers/credentials.js';

/** Istio's task, unchanged but for the second path (a named port) and the tls entry. */
const TASK = `apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: istio
spec:
  controller: istio.io/ingress-controller
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: ingress
spec:
  ingressClassName: istio
  tls:
  - hosts: [httpbin.example.com]
    secretName: httpbin-credential
  rules:
  - host: httpbin.example.com
    http:
      paths:
      - path: /status
        pathType: Prefix
        backend:
          service:
            name: httpbin
            port:
              number: 8000
      - path: /get
        pathType: Exact
        backend:
          service:
            name: httpbin
            port:
              name: http
`;

const path = ingressPath;
const ingress = (name: string, host: string, annotation: string | undefined, paths: readonly string[]): string => ingressYaml(name, host, { ...(annotation ? { annotation } : {}), paths });

const MORE = [
  ingress('legacy', 'legacy.example.com', 'istio', [path('/', 'Prefix', 'catchall', 80), path('/api/*', 'ImplementationSpecific', 'httpbin', 8000)]),
  ingress('longer', 'legacy.example.com', 'istio', [path('/api/v2', 'Prefix', 'v2', 80)]),
  ingress('nginx-owned', 'nginx.example.com', 'nginx', [path('/', 'Prefix', 'httpbin', 8000)]),
  ingress('classless', 'classless.example.com', undefined, [path('/', 'Prefix', 'httpbin', 8000)]),
].join('');

describe('Kubernetes Ingress on files', () => {
  let root: IssuedCertificate;
  let httpbin: Upstream, catchall: Upstream, v2: Upstream;
  let gw: TestGateway;
  let certs: string;
  let httpsPort: number;
  const get = (host: string, path: string) => gw.get(host, path);

  before(async () => {
    root = issueCertificate({ subjectCN: 'ingress test root', isCA: true, issuer: 'self', days: 30 });
    [httpbin, catchall, v2] = await Promise.all([startUpstream('httpbin'), startUpstream('catchall'), startUpstream('v2')]);
    certs = await mkdtemp(join(tmpdir(), 'meshgate-ingress-certs-'));
    await writeCredential(certs, 'httpbin-credential', issueCertificate({ subjectCN: 'httpbin.example.com', dnsNames: ['httpbin.example.com'], issuer: root, days: 30 }));
    const services = [
      serviceYaml('httpbin', [{ pod: 'httpbin-1', port: httpbin.port }], { port: 8000 }),
      serviceYaml('catchall', [{ pod: 'catchall-1', port: catchall.port }]),
      serviceYaml('v2', [{ pod: 'v2-1', port: v2.port }]),
    ].join('---\n');
    gw = await startTestGateway({ 'task.yaml': TASK, 'more.yaml': MORE, 'services.yaml': services }, { certsDir: certs, gateway: { ports: new Map([[80, 0], [443, 0]]) } });
    httpsPort = gw.gw.listenPorts.get(443)!;
  });

  after(async () => {
    await gw?.close();
    await Promise.all([httpbin?.close(), catchall?.close(), v2?.close()]);
    if (certs) await rm(certs, { recursive: true, force: true });
  });

  it("Istio's task: the Host header picks the Ingress rule, a Prefix path routes to the backend", async () => {
    const r = await get('httpbin.example.com', '/status/200');
    assert.equal(r.status, 200);
    assert.equal(r.json().name, 'httpbin');
    assert.equal(r.json().url, '/status/200');
  });

  it('a path no rule exposes, and a host no Ingress names, answer 404', async () => {
    assert.equal((await get('httpbin.example.com', '/headers')).status, 404);
    assert.equal((await get('unknown.example.com', '/status/200')).status, 404);
  });

  it('Prefix matches whole path elements; Exact only the path itself', async () => {
    assert.equal((await get('httpbin.example.com', '/status')).status, 200);
    assert.equal((await get('httpbin.example.com', '/statusx')).status, 404);
    assert.equal((await get('httpbin.example.com', '/get')).status, 200);
    assert.equal((await get('httpbin.example.com', '/get/more')).status, 404);
  });

  it('the legacy annotation, ImplementationSpecific /*, and the longer path first across Ingresses', async () => {
    assert.equal((await get('legacy.example.com', '/anything')).json().name, 'catchall');
    assert.equal((await get('legacy.example.com', '/api/v1')).json().name, 'httpbin');
    assert.equal((await get('legacy.example.com', '/api/v2/items')).json().name, 'v2');
  });

  it("Ingresses of another class, or of none (STRICT), are not this gateway's", async () => {
    assert.equal((await get('nginx.example.com', '/')).status, 404);
    assert.equal((await get('classless.example.com', '/')).status, 404);
  });

  it("HTTPS on 443 with the certificate of the tls entry's secretName", async () => {
    const dispatcher = new Agent({ connect: { servername: 'httpbin.example.com', ca: root.certPem } });
    try {
      const r = await request(`https://127.0.0.1:${httpsPort}/status/418`, { headers: { host: 'httpbin.example.com' }, dispatcher });
      assert.equal(r.statusCode, 200);
      const body = (await r.body.json()) as { name: string; url: string };
      assert.equal(body.name, 'httpbin');
      assert.equal(body.url, '/status/418');
    } finally {
      await dispatcher.close();
    }
  });
});
