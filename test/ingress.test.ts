// Kubernetes Ingress on a real gateway reading files: Istio's "Kubernetes Ingress" task as written
// (an IngressClass for istio.io/ingress-controller, ingressClassName: istio), the legacy class
// annotation, Exact against Prefix (whole path elements), ImplementationSpecific paths ending in /*,
// longer paths first across Ingresses, a named service port, 404 for what no rule matches, Ingresses
// of another class or of none left alone (Istio's default ingressControllerMode is STRICT), and
// HTTPS on 443 from a tls entry's secretName.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Agent, request } from 'undici';
import { startGateway, type RunningGateway } from '../src/gateway/main.js';
import { issueCertificate, type IssuedCertificate } from '../src/core/tls/issue-certificate.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { send } from './helpers/gateway.js';
import { seededRandom } from './helpers/random.js';
import { serviceYaml } from './helpers/cluster-yaml.js';
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

const MORE = `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: legacy
  annotations: {kubernetes.io/ingress.class: istio}
spec:
  rules:
  - host: legacy.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: catchall, port: {number: 80}}}}
      - {path: /api/*, pathType: ImplementationSpecific, backend: {service: {name: httpbin, port: {number: 8000}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: longer
  annotations: {kubernetes.io/ingress.class: istio}
spec:
  rules:
  - host: legacy.example.com
    http:
      paths:
      - {path: /api/v2, pathType: Prefix, backend: {service: {name: v2, port: {number: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: nginx-owned
  annotations: {kubernetes.io/ingress.class: nginx}
spec:
  rules:
  - host: nginx.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: httpbin, port: {number: 8000}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: classless
spec:
  rules:
  - host: classless.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: httpbin, port: {number: 8000}}}}
`;

describe('Kubernetes Ingress on files', () => {
  let root: IssuedCertificate;
  let httpbin: Upstream, catchall: Upstream, v2: Upstream;
  let gw: RunningGateway;
  let dir: string;
  let httpPort: number, httpsPort: number;
  const get = (host: string, path: string) => send(httpPort, host, path);

  before(async () => {
    root = issueCertificate({ subjectCN: 'ingress test root', isCA: true, issuer: 'self', days: 30 });
    [httpbin, catchall, v2] = await Promise.all([startUpstream('httpbin'), startUpstream('catchall'), startUpstream('v2')]);
    dir = await mkdtemp(join(tmpdir(), 'meshgate-ingress-'));
    const config = join(dir, 'config');
    const certs = join(dir, 'certs');
    await mkdir(config);
    await writeCredential(certs, 'httpbin-credential', issueCertificate({ subjectCN: 'httpbin.example.com', dnsNames: ['httpbin.example.com'], issuer: root, days: 30 }));
    await writeFile(join(config, 'task.yaml'), TASK);
    await writeFile(join(config, 'more.yaml'), MORE);
    await writeFile(
      join(config, 'services.yaml'),
      [
        serviceYaml('httpbin', [{ pod: 'httpbin-1', port: httpbin.port }], { port: 8000 }),
        serviceYaml('catchall', [{ pod: 'catchall-1', port: catchall.port }]),
        serviceYaml('v2', [{ pod: 'v2-1', port: v2.port }]),
      ].join('---\n'),
    );
    gw = await startGateway({
      configDir: config,
      certsDir: certs,
      ports: new Map([
        [80, 0],
        [443, 0],
      ]),
      listenHost: '127.0.0.1',
      statusPort: 0,
      adminPort: 0,
      accessLog: 'off',
      logger: pino({ level: 'silent' }),
      random: seededRandom(3),
    });
    httpPort = gw.listenPorts.get(80)!;
    httpsPort = gw.listenPorts.get(443)!;
  });

  after(async () => {
    await gw?.destroy();
    await Promise.all([httpbin?.close(), catchall?.close(), v2?.close()]);
    if (dir) await rm(dir, { recursive: true, force: true });
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
