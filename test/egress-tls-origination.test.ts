// Istio's "Egress TLS Origination" and "Egress Gateways with TLS Origination" tasks on real sockets:
// the sleep app sends plain HTTP; its sidecar, or the egress gateway it is routed through, opens TLS
// (mutual TLS with the client-credential secret) to a loopback server standing in for the external
// host. The YAML is the tasks' (test/fixtures/egress-gateway/), pointed at loopback; the stand-in's
// CA stands in for the public roots a SIMPLE rule trusts. docs/tasks/egress-gateway.md.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issueCertificate } from '../src/core/tls/issue-certificate.js';
import { accessLogLine } from './helpers/gateway.js';
import { testAuthority, viaProxy } from './helpers/mesh.js';
import { newRoot, startTlsUpstream, type Pem, type TlsSeen, type TlsUpstream } from './helpers/mesh-tls.js';
import { httpsViaProxy, startEgressMesh, taskYaml, type EgressMesh } from './helpers/egress-gateway.js';
import type { CertificateAuthority } from '../src/core/pki/authority.js';
import { UpstreamConnector } from '../src/core/tls/upstream-connector.js';
import type { SecretReader } from '../src/core/tls/types.js';

const NGINX = 'my-nginx.mesh-external.svc.cluster.local';

describe('TLS origination', () => {
  let ca: CertificateAuthority;
  let publicRoot: Pem, nginxRoot: Pem;
  let cnn: TlsUpstream, nginx: TlsUpstream;
  let dir: string, publicRoots: string;
  const meshes: EgressMesh[] = [];

  before(async () => {
    ca = await testAuthority();
    publicRoot = newRoot('public web root');
    nginxRoot = newRoot('example.com');
    cnn = await startTlsUpstream('edition.cnn.com', { cert: issueCertificate({ subjectCN: 'edition.cnn.com', dnsNames: ['edition.cnn.com'], issuer: publicRoot, days: 1, keyType: 'ec' }) });
    nginx = await startTlsUpstream('my-nginx', {
      cert: issueCertificate({ subjectCN: NGINX, dnsNames: [NGINX], issuer: nginxRoot, days: 1, keyType: 'ec' }),
      clientCa: nginxRoot.certPem,
    });
    dir = await mkdtemp(join(tmpdir(), 'meshgate-egress-tls-'));
    publicRoots = join(dir, 'public-roots.pem');
    await writeFile(publicRoots, publicRoot.certPem);
    // kubectl create secret generic client-credential --from-file=tls.key=… --from-file=tls.crt=… --from-file=ca.crt=example.com.crt
    const client = issueCertificate({ subjectCN: 'client.example.com', issuer: nginxRoot, days: 1, keyType: 'ec', extKeyUsage: ['clientAuth'] });
    await mkdir(join(dir, 'certs', 'client-credential'), { recursive: true });
    await writeFile(join(dir, 'certs', 'client-credential', 'tls.crt'), client.certPem);
    await writeFile(join(dir, 'certs', 'client-credential', 'tls.key'), client.keyPem, { mode: 0o600 });
    await writeFile(join(dir, 'certs', 'client-credential', 'ca.crt'), nginxRoot.certPem);
  });
  after(async () => {
    await Promise.all(meshes.map((m) => m.close()));
    await Promise.all([cnn?.close(), nginx?.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  const start = async (files: Record<string, string>): Promise<EgressMesh> => {
    const mesh = await startEgressMesh(ca, files, { gateway: join(dir, 'certs'), sidecar: join(dir, 'certs') });
    meshes.push(mesh);
    return mesh;
  };

  it('Egress TLS Origination: the sidecar turns http://edition.cnn.com into HTTPS to port 443; https:// still passes', async () => {
    const mesh = await start({ 'task.yaml': await taskYaml('tls-origination.yaml', { entries: { 'edition.cnn.com': { 'http-port': cnn.port, 'https-port': cnn.port } }, publicRoots }) });
    const r = await viaProxy(mesh.sidecar.outboundPort, 'http://edition.cnn.com/politics', { 'x-request-id': 'origination-1' });
    assert.equal(r.status, 200, r.text);
    const seen = JSON.parse(r.text) as TlsSeen;
    assert.equal(seen.sni, 'edition.cnn.com');
    assert.equal(seen.path, '/politics');
    const line = await accessLogLine(mesh.sidecarLog, 'origination-1');
    assert.equal(line.upstream_cluster, 'outbound|80||edition.cnn.com');
    assert.equal(line.upstream_host, `127.0.0.1:${cnn.port}`);
    const https = await httpsViaProxy(mesh.sidecar.outboundPort, 'edition.cnn.com', '/politics', publicRoot.certPem);
    assert.equal(https.status, 200, https.head);
  });

  it('mutual TLS origination at the sidecar: client-credential is presented to the server outside the mesh', async () => {
    const mesh = await start({ 'task.yaml': await taskYaml('mutual-tls-origination.yaml', { services: { 'mesh-external/my-nginx': nginx.port } }) });
    const r = await viaProxy(mesh.sidecar.outboundPort, `http://${NGINX}:443/`);
    assert.equal(r.status, 200, r.text);
    const seen = JSON.parse(r.text) as TlsSeen;
    assert.equal(seen.peerCN, 'client.example.com');
    assert.equal(seen.sni, NGINX);
  });

  it('Egress Gateways with TLS Origination: mTLS to the egress gateway, TLS from it to edition.cnn.com:443', async () => {
    const mesh = await start({ 'task.yaml': await taskYaml('gateway-tls-origination.yaml', { entries: { 'edition.cnn.com': { 'https-port-for-tls-origination': cnn.port } }, publicRoots }) });
    const id = 'gateway-origination-1';
    const r = await viaProxy(mesh.sidecar.outboundPort, 'http://edition.cnn.com/politics', { 'x-request-id': id });
    assert.equal(r.status, 200, r.text);
    const seen = JSON.parse(r.text) as TlsSeen;
    assert.equal(seen.sni, 'edition.cnn.com');
    assert.deepEqual(seen.peerUris, [], 'the external host sees no mesh certificate');
    const atSidecar = await accessLogLine(mesh.sidecarLog, id);
    assert.equal(atSidecar.upstream_cluster, 'outbound|80|cnn|istio-egressgateway.istio-system.svc.cluster.local');
    const atGateway = await accessLogLine(mesh.gatewayLog, id);
    assert.equal(atGateway.upstream_cluster, 'outbound|443||edition.cnn.com');
    assert.equal(atGateway.upstream_host, `127.0.0.1:${cnn.port}`);
    assert.equal(atGateway.path, '/politics');
  });

  it('Egress Gateways with mutual TLS Origination: the egress gateway presents client-credential', async () => {
    const mesh = await start({ 'task.yaml': await taskYaml('gateway-mtls-origination.yaml', { services: { 'mesh-external/my-nginx': nginx.port } }) });
    const r = await viaProxy(mesh.sidecar.outboundPort, `http://${NGINX}/`, { 'x-request-id': 'gateway-mtls-origination-1' });
    assert.equal(r.status, 200, r.text);
    const seen = JSON.parse(r.text) as TlsSeen;
    assert.equal(seen.peerCN, 'client.example.com');
    assert.equal(seen.sni, NGINX);
    const atGateway = await accessLogLine(mesh.gatewayLog, 'gateway-mtls-origination-1');
    assert.equal(atGateway.upstream_cluster, `outbound|443||${NGINX}`);
  });

  it('in a cluster, credentialName is the Secret of the proxy\'s namespace (kubectl create -n istio-system secret generic client-credential)', async () => {
    const client = issueCertificate({ subjectCN: 'secret.client.example.com', issuer: nginxRoot, days: 1, keyType: 'ec', extKeyUsage: ['clientAuth'] });
    const data: Record<string, string> = { 'tls.crt': client.certPem, 'tls.key': client.keyPem, 'ca.crt': nginxRoot.certPem };
    const secrets: SecretReader = { namespace: 'istio-system', get: (name) => (name === 'client-credential' ? { type: 'Opaque', data } : undefined), onChange: () => () => undefined };
    // The folder is not read in cluster mode: it holds another client certificate.
    const connector = new UpstreamConnector({ certsDir: join(dir, 'certs'), secrets });
    const profile = { kind: 'MUTUAL' as const, key: 'k', sni: NGINX, verifyNames: [NGINX], insecureSkipVerify: false, credentialName: 'client-credential' };
    const seen = await new Promise<TlsSeen>((resolve, reject) => {
      const opened = connector.open(profile, '127.0.0.1', nginx.port, ['http/1.1'], reject);
      if (!opened.ok) return reject(opened.error);
      let raw = '';
      opened.socket.on('secureConnect', () => opened.socket.write(`GET / HTTP/1.1\r\nHost: ${NGINX}\r\nConnection: close\r\n\r\n`));
      opened.socket.on('data', (d: Buffer) => (raw += d.toString()));
      opened.socket.on('close', () => resolve(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as TlsSeen));
    });
    assert.equal(seen.peerCN, 'secret.client.example.com');
  });
});
