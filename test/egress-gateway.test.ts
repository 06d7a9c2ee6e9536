// Istio's "Egress Gateways" task on real sockets: the sleep app's sidecar sends edition.cnn.com to a
// gateway run as istio-egressgateway, which sends it on to the external host (a loopback server
// standing in for it). The YAML is the task's (test/fixtures/egress-gateway/); the ServiceEntry's
// endpoint is the one change: 127.0.0.1 here, where the task lets DNS find the host.
// docs/tasks/egress-gateway.md.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import type { CertificateAuthority } from '../src/core/pki/authority.js';
import { issueCertificate } from '../src/core/tls/issue-certificate.js';
import { readFile } from 'node:fs/promises';
import { accessLogLine, completeJsonLines, eventually } from './helpers/gateway.js';
import { X509Certificate } from 'node:crypto';
import { testAuthority, viaProxy, workloadCertificate } from './helpers/mesh.js';
import { newRoot, startTlsUpstream, type TlsSeen, type TlsUpstream } from './helpers/mesh-tls.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { httpsViaProxy, startEgressMesh, taskYaml, type EgressMesh } from './helpers/egress-gateway.js';

describe('Egress Gateways: HTTP through the egress gateway', () => {
  let cnn: Upstream;
  let mesh: EgressMesh;

  before(async () => {
    const ca = await testAuthority();
    cnn = await startUpstream('edition.cnn.com');
    mesh = await startEgressMesh(ca, { 'task.yaml': await taskYaml('http.yaml', { entries: { 'edition.cnn.com': { 'http-port': cnn.port } } }) });
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
    // The egress gateway's Service names port 80 http2: the sidecar speaks HTTP/2 to it, as in Istio's log line.
    assert.equal(atGateway.protocol, 'HTTP/2');
  });

  it("counts the request at the sidecar under the egress gateway's name, and at the gateway under the external host's", async () => {
    const requests = async (port: number): Promise<string[]> =>
      (await (await fetch(`http://127.0.0.1:${port}/stats/prometheus`)).text()).split('\n').filter((l) => l.startsWith('istio_requests_total{'));
    const atSidecar = await requests(mesh.sidecar.metricsPort);
    assert.ok(atSidecar.some((l) => /reporter="source",source_workload="sleep".*destination_service="istio-egressgateway\.istio-system\.svc\.cluster\.local",destination_service_name="istio-egressgateway".*response_code="200"/.test(l)), atSidecar.join('\n'));
    const atGateway = await requests(mesh.gateway.metricsPort);
    assert.ok(atGateway.some((l) => /reporter="source",source_workload="istio-egressgateway".*destination_service="edition\.cnn\.com",destination_service_name="edition\.cnn\.com".*response_code="200"/.test(l)), atGateway.join('\n'));
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
    mesh = await startEgressMesh(ca, { 'task.yaml': await taskYaml('https.yaml', { entries: { 'edition.cnn.com': { tls: cnn.port } } }) });
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
    await eventually(async () => {
      line = completeJsonLines(await readFile(mesh.gatewayLog, 'utf8').catch(() => '')).find((l) => l.requested_server_name === 'edition.cnn.com');
      return line !== undefined;
    });
    assert.ok(line, 'the egress gateway logs the passed-through connection');
    assert.equal(line.upstream_cluster, 'outbound|443||edition.cnn.com');
    assert.equal(line.upstream_host, `127.0.0.1:${cnn.port}`);
  });
});

describe('Egress Gateways: mutual TLS from the sidecar to the egress gateway (ISTIO_MUTUAL)', () => {
  let cnn: Upstream;
  let mesh: EgressMesh;
  let ca: CertificateAuthority;

  before(async () => {
    ca = await testAuthority();
    cnn = await startUpstream('edition.cnn.com');
    mesh = await startEgressMesh(ca, { 'task.yaml': await taskYaml('mtls.yaml', { entries: { 'edition.cnn.com': { 'http-port': cnn.port } } }) });
  });
  after(async () => {
    await mesh?.close();
    await cnn?.close();
  });

  it('the sidecar reaches the gateway over mTLS, with the SNI the rule names, and the gateway sends on plain HTTP', async () => {
    const r = await viaProxy(mesh.sidecar.outboundPort, 'http://edition.cnn.com/politics');
    assert.equal(r.status, 200, r.text);
    const seen = cnn.seen.at(-1)!;
    assert.equal(seen.url, '/politics');
    const id = String(seen.headers['x-request-id']);
    const atSidecar = await accessLogLine(mesh.sidecarLog, id);
    assert.equal(atSidecar.upstream_cluster, 'outbound|443|cnn|istio-egressgateway.istio-system.svc.cluster.local');
    assert.equal(atSidecar.upstream_host, `127.0.0.1:${mesh.gatewayHttps}`);
    const atGateway = await accessLogLine(mesh.gatewayLog, id);
    assert.equal(atGateway.upstream_cluster, 'outbound|80||edition.cnn.com');
    // The gateway saw the sleep workload's identity: its XFCC names it to the external host.
    assert.match(String(seen.headers['x-forwarded-client-cert'] ?? ''), /URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/sleep/);
  });

  it("presents the gateway's rotated workload certificate from the next handshake on", async () => {
    const client = workloadCertificate(ca, 'default', 'sleep');
    const presented = (): Promise<string> =>
      new Promise((resolve, reject) => {
        const s = tlsConnect({ host: '127.0.0.1', port: mesh.gatewayHttps, servername: 'edition.cnn.com', cert: client.certChainPem, key: client.keyPem, ca: client.rootCertPem, checkServerIdentity: () => undefined });
        s.on('secureConnect', () => {
          resolve(s.getPeerCertificate().fingerprint256);
          s.destroy();
        });
        s.on('error', reject);
      });
    const fingerprint = (pem: string): string => new X509Certificate(pem).fingerprint256;
    assert.equal(await presented(), fingerprint(mesh.gatewayIdentity.current().certChainPem));
    const next = workloadCertificate(ca, 'istio-system', 'istio-egressgateway-service-account');
    mesh.gatewayIdentity.rotate(next);
    await eventually(async () => (await presented()) === fingerprint(next.certChainPem));
    const r = await viaProxy(mesh.sidecar.outboundPort, 'http://edition.cnn.com/politics');
    assert.equal(r.status, 200, r.text);
  });

  it("lets an AuthorizationPolicy on the egress gateway allow workloads by the identity of their mTLS", async () => {
    const policy = (principal: string): string => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-egress, namespace: istio-system}
spec:
  selector: {matchLabels: {istio: egressgateway}}
  action: ALLOW
  rules:
  - from: [{source: {principals: ["${principal}"]}}]
`;
    await mesh.write('policy.yaml', policy('cluster.local/ns/default/sa/other'));
    assert.equal((await viaProxy(mesh.sidecar.outboundPort, 'http://edition.cnn.com/politics')).status, 403);
    await mesh.write('policy.yaml', policy('cluster.local/ns/default/sa/sleep'));
    assert.equal((await viaProxy(mesh.sidecar.outboundPort, 'http://edition.cnn.com/politics')).status, 200);
  });

  it('refuses a client without a mesh certificate on that port', async () => {
    const refused = await new Promise<string>((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port: mesh.gatewayHttps, servername: 'edition.cnn.com', rejectUnauthorized: false });
      s.on('secureConnect', () => s.write('GET /politics HTTP/1.1\r\nHost: edition.cnn.com\r\n\r\n'));
      s.on('data', () => resolve('answered'));
      s.on('error', (e) => resolve(e.message));
      s.on('close', () => resolve('closed'));
    });
    assert.notEqual(refused, 'answered');
  });
});
