// Istio's "Egress Gateways" task on real sockets: the sleep app's sidecar sends edition.cnn.com to a
// gateway run as istio-egressgateway, which sends it on to the external host (a loopback server
// standing in for it). The YAML is the task's; the ServiceEntry's endpoint is the one change: the
// external host's address is 127.0.0.1 here, where the task lets DNS find it. docs/tasks/egress-gateway.md.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issueCertificate } from '../src/core/tls/issue-certificate.js';
import { accessLogLine } from './helpers/gateway.js';
import { testAuthority, viaProxy } from './helpers/mesh.js';
import { newRoot, startTlsUpstream, type TlsSeen, type TlsUpstream } from './helpers/mesh-tls.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { httpsViaProxy, startEgressMesh, type EgressMesh } from './helpers/egress-gateway.js';

const cnnEntry = (http: number, https: number): string => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: cnn
spec:
  hosts:
  - edition.cnn.com
  ports:
  - number: 80
    name: http-port
    protocol: HTTP
  - number: 443
    name: https
    protocol: HTTPS
  resolution: STATIC
  endpoints:
  - address: 127.0.0.1
    ports: {http-port: ${http}, https: ${https}}
`;

const HTTP_GATEWAY = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: istio-egressgateway
spec:
  selector:
    istio: egressgateway
  servers:
  - port:
      number: 80
      name: http
      protocol: HTTP
    hosts:
    - edition.cnn.com
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: egressgateway-for-cnn
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets:
  - name: cnn
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: direct-cnn-through-egress-gateway
spec:
  hosts:
  - edition.cnn.com
  gateways:
  - istio-egressgateway
  - mesh
  http:
  - match:
    - gateways:
      - mesh
      port: 80
    route:
    - destination:
        host: istio-egressgateway.istio-system.svc.cluster.local
        subset: cnn
        port:
          number: 80
      weight: 100
  - match:
    - gateways:
      - istio-egressgateway
      port: 80
    route:
    - destination:
        host: edition.cnn.com
        port:
          number: 80
      weight: 100
`;

const HTTPS_GATEWAY = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: cnn
spec:
  hosts:
  - edition.cnn.com
  ports:
  - number: 443
    name: tls
    protocol: TLS
  resolution: STATIC
  endpoints: [{address: 127.0.0.1, ports: {tls: TLS_PORT}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: istio-egressgateway
spec:
  selector:
    istio: egressgateway
  servers:
  - port:
      number: 443
      name: tls
      protocol: TLS
    hosts:
    - edition.cnn.com
    tls:
      mode: PASSTHROUGH
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: egressgateway-for-cnn
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets:
  - name: cnn
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: direct-cnn-through-egress-gateway
spec:
  hosts:
  - edition.cnn.com
  gateways:
  - mesh
  - istio-egressgateway
  tls:
  - match:
    - gateways:
      - mesh
      port: 443
      sniHosts:
      - edition.cnn.com
    route:
    - destination:
        host: istio-egressgateway.istio-system.svc.cluster.local
        subset: cnn
        port:
          number: 443
  - match:
    - gateways:
      - istio-egressgateway
      port: 443
      sniHosts:
      - edition.cnn.com
    route:
    - destination:
        host: edition.cnn.com
        port:
          number: 443
      weight: 100
`;

describe('Egress Gateways: HTTP through the egress gateway', () => {
  let cnn: Upstream;
  let mesh: EgressMesh;

  before(async () => {
    const ca = await testAuthority();
    cnn = await startUpstream('edition.cnn.com');
    mesh = await startEgressMesh(ca, { 'cnn.yaml': cnnEntry(cnn.port, 1), 'egress.yaml': HTTP_GATEWAY });
  });
  after(async () => {
    await mesh?.close();
    await cnn?.close();
  });

  it('reaches the external host through the egress gateway, which logs the hop as Istio does', async () => {
    const r = await viaProxy(mesh.sidecar.outboundPort, 'http://edition.cnn.com/politics', { 'user-agent': 'curl/8.5.0' });
    assert.equal(r.status, 200, r.text);
    const seen = cnn.seen.at(-1)!;
    assert.equal(seen.url, '/politics');
    assert.equal(seen.headers.host, 'edition.cnn.com');
    const id = String(r.headers['x-request-id'] ?? seen.headers['x-request-id']);
    const atSidecar = await accessLogLine(mesh.sidecarLog, id);
    assert.equal(atSidecar.upstream_cluster, 'outbound|80|cnn|istio-egressgateway.istio-system.svc.cluster.local');
    assert.equal(atSidecar.upstream_host, `127.0.0.1:${mesh.gatewayHttp}`);
    const atGateway = await accessLogLine(mesh.gatewayLog, id);
    assert.equal(atGateway.upstream_cluster, 'outbound|80||edition.cnn.com');
    assert.equal(atGateway.upstream_host, `127.0.0.1:${cnn.port}`);
    assert.equal(atGateway.authority, 'edition.cnn.com');
    assert.equal(atGateway.path, '/politics');
    assert.equal(atGateway.response_code, 200);
  });
});

describe('Egress Gateways: HTTPS passed through the egress gateway by SNI', () => {
  let cnn: TlsUpstream;
  let mesh: EgressMesh;
  let root: ReturnType<typeof newRoot>;

  before(async () => {
    const ca = await testAuthority();
    root = newRoot('public web root');
    cnn = await startTlsUpstream('edition.cnn.com', { cert: issueCertificate({ subjectCN: 'edition.cnn.com', dnsNames: ['edition.cnn.com'], issuer: root, days: 1, keyType: 'ec' }) });
    mesh = await startEgressMesh(ca, { 'egress.yaml': HTTPS_GATEWAY.replace('TLS_PORT', String(cnn.port)) });
  });
  after(async () => {
    await mesh?.close();
    await cnn?.close();
  });

  it("the app's own TLS reaches the external host unread, and the gateway logs the connection by its SNI", async () => {
    const r = await httpsViaProxy(mesh.sidecar.outboundPort, 'edition.cnn.com', '/politics', root.certPem);
    assert.equal(r.status, 200, r.head + r.body);
    const seen = JSON.parse(r.body) as TlsSeen;
    assert.equal(seen.sni, 'edition.cnn.com');
    assert.equal(seen.path, '/politics');
    let line: Record<string, unknown> | undefined;
    const { readFile } = await import('node:fs/promises');
    for (let i = 0; i < 400 && !line; i++) {
      const text = await readFile(mesh.gatewayLog, 'utf8').catch(() => '');
      line = text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.requested_server_name === 'edition.cnn.com');
      if (!line) await new Promise((res) => setTimeout(res, 25));
    }
    assert.ok(line, 'the egress gateway logs the passed-through connection');
    assert.equal(line.upstream_cluster, 'outbound|443||edition.cnn.com');
    assert.equal(line.upstream_host, `127.0.0.1:${cnn.port}`);
  });
});

void mkdtemp;
void rm;
void writeFile;
void tmpdir;
void join;
