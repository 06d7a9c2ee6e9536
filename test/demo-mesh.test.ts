// The demo mesh as `npm start` runs it (control plane, apps behind sidecars, gateway joined to the
// mesh, HTTPS with the demo CA), on ephemeral ports, a copy of gateway-config/ and a fresh certs
// folder: the README's curl commands answer as it says.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { connect as http2Connect } from 'node:http2';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { connect as netConnect } from 'node:net';
import { dirname, join } from 'node:path';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import type { BackendReply } from '../src/demo/backend.js';
import type { RunningDemoMesh } from '../src/demo/mesh.js';
import { DEMO_WORKLOADS } from '../src/demo/topology.js';
import { eventually, send } from './helpers/gateway.js';
import { startTestDemoMesh, type TestDemoMesh } from './helpers/demo-mesh.js';



describe('the demo mesh', () => {
  let mesh: RunningDemoMesh;
  let dir: string;
  let port: number;
  let httpsPort: number;

  let demo: TestDemoMesh;

  before(async () => {
    demo = await startTestDemoMesh({ metricsPort: undefined, debugPort: undefined });
    mesh = demo.mesh;
    dir = dirname(demo.configDir);
    port = demo.port;
    httpsPort = mesh.gateway.listenPorts.get(443)!;
  });

  after(() => demo?.close());

  it('product.example.com crosses gateway → product sidecar → product app → user sidecar → user app, each hop with the caller identity', async () => {
    const r = await send(port, 'product.example.com', '/');
    assert.equal(r.status, 200, r.text);
    const product = r.json<BackendReply>();
    assert.equal(product.service, 'product-service');
    assert.match(String(product.headers['x-forwarded-client-cert']), /URI=spiffe:\/\/cluster\.local\/ns\/istio-system\/sa\/istio-ingressgateway-service-account$/);
    const call = product.calls?.['http://user-service/users/1'];
    assert.equal(call?.status, 200, JSON.stringify(call));
    const user = call!.body as BackendReply;
    assert.equal(user.service, 'user-service');
    assert.match(String(user.headers['x-forwarded-client-cert']), /URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/product-service$/);
    assert.equal(user.headers['x-request-id'], product.headers['x-request-id'], 'the request id travels the whole chain');
  });

  it('serves user.example.com over HTTPS with the demo CA certificate, by HTTP/2 and HTTP/1.1', async () => {
    // Trusting the demo CA and nothing else, as `curl --cacert certs/demo-ca/ca.crt` does.
    const ca = await readFile(mesh.demoCaFile, 'utf8');
    assert.equal(mesh.demoCaFile, join(dir, 'certs', 'demo-ca', 'ca.crt'));
    const h2 = await new Promise<{ status: number; alpn: string | false; body: string }>((resolve, reject) => {
      const session = http2Connect(`https://127.0.0.1:${httpsPort}`, { servername: 'user.example.com', ca });
      session.once('error', reject);
      const req = session.request({ ':path': '/users/7', ':authority': 'user.example.com' });
      let status = 0;
      let body = '';
      req.on('response', (h) => (status = Number(h[':status'])));
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => {
        const alpn = session.alpnProtocol ?? false;
        session.close();
        resolve({ status, alpn, body });
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(h2.alpn, 'h2');
    assert.equal(h2.status, 200, h2.body);
    assert.equal((JSON.parse(h2.body) as BackendReply).service, 'user-service');

    const h1 = await new Promise<{ status: number; alpn: string | false; body: string }>((resolve, reject) => {
      const options: RequestOptions & ConnectionOptions = {
        host: '127.0.0.1', port: httpsPort, path: '/users/7', servername: 'user.example.com', headers: { host: 'user.example.com' }, ca, ALPNProtocols: ['http/1.1'], agent: false,
      };
      const req = httpsRequest(options, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, alpn: (res.socket as TLSSocket).alpnProtocol ?? false, body }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(h1.alpn, 'http/1.1');
    assert.equal(h1.status, 200, h1.body);
    const reply = JSON.parse(h1.body) as BackendReply;
    assert.equal(reply.service, 'user-service');
    assert.equal(reply.headers['x-forwarded-proto'], 'https');
  });

  it('redirects http://user.example.com to HTTPS with 301', async () => {
    const r = await send(port, 'user.example.com', '/users/7?x=1');
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, 'https://user.example.com/users/7?x=1');
  });

  it("denies user-service's admin paths by AuthorizationPolicy", async () => {
    const r = await send(port, 'api.example.com', '/user/admin');
    assert.equal(r.status, 403);
    assert.equal(r.text, 'RBAC: access denied');
    assert.equal((await send(port, 'api.example.com', '/user/42')).status, 200);
  });

  it("applies a gateway policy selecting app: istio-ingressgateway, as Istio's tasks write them, and not one selecting a label the gateway lacks", async () => {
    const file = join(demo.configDir, 'gateway-policies.yaml');
    await writeFile(file, `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-by-app, namespace: istio-system}
spec:
  selector: {matchLabels: {app: istio-ingressgateway}}
  action: DENY
  rules: [{to: [{operation: {paths: ["/user/by-app*"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all-by-version, namespace: istio-system}
spec:
  selector: {matchLabels: {app: istio-ingressgateway, version: v2}}
  action: DENY
  rules: [{}]
`);
    try {
      // Both arrive in one version: once the first denies, the second would have too.
      await eventually(async () => (await send(port, 'api.example.com', '/user/by-app/1')).status === 403);
      const r = await send(port, 'api.example.com', '/user/by-app/2');
      assert.equal(r.status, 403);
      assert.equal(r.text, 'RBAC: access denied');
      assert.equal((await send(port, 'api.example.com', '/user/42')).status, 200);
    } finally {
      await rm(file);
      await eventually(async () => (await send(port, 'api.example.com', '/user/by-app/3')).status === 200);
    }
  });

  it("lets the gateway through a sidecar's ALLOW policy naming Istio's ingress gateway principal, as Istio's docs write it", async () => {
    const file = join(demo.configDir, 'product-policies.yaml');
    // Only the ingress gateway may reach product-service; the DENY shows the file is in force.
    const policies = (principal: string) => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: product-from-ingress-only, namespace: default}
spec:
  selector: {matchLabels: {app: product-service}}
  action: ALLOW
  rules: [{from: [{source: {principals: ["${principal}"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: product-deny-marker, namespace: default}
spec:
  selector: {matchLabels: {app: product-service}}
  action: DENY
  rules: [{to: [{operation: {paths: ["/deny-marker"]}}]}]
`;
    try {
      // Another gateway's principal: the sidecar denies what this gateway forwards.
      await writeFile(file, policies('cluster.local/ns/istio-system/sa/some-other-gateway'));
      await eventually(async () => (await send(port, 'product.example.com', '/')).status === 403);
      await writeFile(file, policies('cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account'));
      await eventually(async () => (await send(port, 'product.example.com', '/')).status === 200);
      assert.equal((await send(port, 'product.example.com', '/deny-marker')).status, 403, 'the policies are still in force');
    } finally {
      await rm(file);
      await eventually(async () => (await send(port, 'product.example.com', '/deny-marker')).status !== 403);
    }
  });

  it('a sidecar refuses plaintext (PeerAuthentication STRICT)', async () => {
    const sidecarPort = mesh.sidecars[0]!.inboundPort;
    const answer = await new Promise<string>((resolve) => {
      const s = netConnect(sidecarPort, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nhost: user-service\r\n\r\n'));
      let data = '';
      s.on('data', (d: Buffer) => (data += d.toString()));
      s.on('close', () => resolve(data));
      s.on('error', () => undefined);
    });
    assert.equal(answer, '');
  });

  it('the control plane lists every proxy with the version it acknowledged', async () => {
    // Acknowledgements travel on their own; wait for them rather than for a fixed time.
    await eventually(async () => {
      const proxies = mesh.control.registry.list();
      return proxies.length === DEMO_WORKLOADS.length + 1 && proxies.every((p) => p.sentVersion !== null && p.acknowledgedVersion === p.sentVersion);
    });
  });
});
