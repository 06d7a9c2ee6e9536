// Gateway API listeners that speak TLS, against a real gateway on files: HTTPS with certificateRefs
// (the same credential files as Istio's credentialName), a Secret in another namespace refused until
// a ReferenceGrant allows it (GatewaySecretReferenceGrant), TLSRoute passthrough by SNI, and TCPRoute.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createNetServer, connect as netConnect, type Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { pino } from 'pino';
import { Agent, request } from 'undici';
import { startGateway, type RunningGateway } from '../src/gateway/main.js';
import { issueCertificate, type IssuedCertificate } from '../src/core/tls/issue-certificate.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { eventually } from './helpers/gateway.js';
import { seededRandom } from './helpers/random.js';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { writeCredential } from './helpers/credentials.js';

const NS = 'gateway-conformance-infra';

describe('Gateway API TLS listeners on files', () => {
  let root: IssuedCertificate;
  let app: Upstream;
  let tlsUpstream: TlsServer;
  let tcpUpstream: NetServer;
  let gw: RunningGateway;
  let dir: string, config: string;
  let httpsPort: number, tcpPort: number;

  const httpsGet = async (servername: string): Promise<{ status: number; body: string }> => {
    const dispatcher = new Agent({ connect: { servername, ca: root.certPem } });
    try {
      const r = await request(`https://127.0.0.1:${httpsPort}/`, { headers: { host: servername }, dispatcher });
      return { status: r.statusCode, body: await r.body.text() };
    } finally {
      await dispatcher.close();
    }
  };
  const rawTls = (servername: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port: httpsPort, servername, ca: root.certPem }, () => undefined);
      let text = '';
      s.setEncoding('utf8');
      s.on('data', (d: string) => (text += d));
      s.on('end', () => resolve(text));
      s.on('error', reject);
    });
  const listenerCondition = (gateway: string, listener: string, type: string): string => {
    const g = gw.holder.current()!.gatewayApi.gateways.find((x) => x.resource.metadata.name === gateway)!;
    const c = g.listeners.find((l) => l.name === listener)!.conditions.find((x) => x.type === type)!;
    return `${c.status}/${c.reason}`;
  };

  before(async () => {
    root = issueCertificate({ subjectCN: 'gateway api test root', isCA: true, issuer: 'self', days: 30 });
    app = await startUpstream('app');
    const passCert = issueCertificate({ subjectCN: 'pass.example.com', dnsNames: ['pass.example.com'], issuer: root, days: 30 });
    tlsUpstream = createTlsServer({ cert: passCert.certPem, key: passCert.keyPem }, (s) => s.end('hello from the passthrough upstream\n'));
    await new Promise<void>((r) => tlsUpstream.listen(0, '127.0.0.1', r));
    tcpUpstream = createNetServer((s) => s.end('hello over tcp\n'));
    await new Promise<void>((r) => tcpUpstream.listen(0, '127.0.0.1', r));

    dir = await mkdtemp(join(tmpdir(), 'meshgate-gwapi-tls-'));
    const certs = join(dir, 'certs');
    config = join(dir, 'config');
    await mkdir(config);
    await writeCredential(certs, 'secure-cert', issueCertificate({ subjectCN: 'secure.example.com', dnsNames: ['secure.example.com'], issuer: root, days: 30 }));
    await writeCredential(certs, 'other-cert', issueCertificate({ subjectCN: 'other.example.com', dnsNames: ['other.example.com'], issuer: root, days: 30 }));
    await writeFile(
      join(config, 'gateway.yaml'),
      `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: tls, namespace: ${NS}}
spec:
  gatewayClassName: istio
  listeners:
  - name: https
    port: 443
    protocol: HTTPS
    hostname: secure.example.com
    tls: {certificateRefs: [{name: secure-cert}]}
  - name: https-other
    port: 443
    protocol: HTTPS
    hostname: other.example.com
    tls: {certificateRefs: [{name: other-cert, namespace: certificates}]}
  - name: pass
    port: 443
    protocol: TLS
    hostname: pass.example.com
    tls: {mode: Passthrough}
  - name: tcp
    port: 9000
    protocol: TCP
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: ${NS}}
spec:
  parentRefs: [{name: tls, sectionName: https}, {name: tls, sectionName: https-other}]
  rules:
  - backendRefs: [{name: app, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata: {name: pass, namespace: ${NS}}
spec:
  parentRefs: [{name: tls, sectionName: pass}]
  hostnames: [pass.example.com]
  rules:
  - backendRefs: [{name: pass, port: 443}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: tcp, namespace: ${NS}}
spec:
  parentRefs: [{name: tls, port: 9000}]
  rules:
  - backendRefs: [{name: tcp-echo, port: 9000}]
`,
    );
    await writeFile(
      join(config, 'services.yaml'),
      [
        serviceYaml('app', [{ pod: 'app-1', port: app.port }], { namespace: NS }),
        serviceYaml('pass', [{ pod: 'pass-1', port: (tlsUpstream.address() as { port: number }).port }], { namespace: NS, port: 443, portName: 'tls' }),
        serviceYaml('tcp-echo', [{ pod: 'tcp-1', port: (tcpUpstream.address() as { port: number }).port }], { namespace: NS, port: 9000, portName: 'tcp' }),
      ].join('---\n'),
    );
    gw = await startGateway({
      configDir: config,
      certsDir: certs,
      ports: new Map([
        [443, 0],
        [9000, 0],
      ]),
      listenHost: '127.0.0.1',
      statusPort: 0,
      adminPort: 0,
      accessLog: 'off',
      logger: pino({ level: 'silent' }),
      random: seededRandom(7),
    });
    httpsPort = gw.listenPorts.get(443)!;
    tcpPort = gw.listenPorts.get(9000)!;
  });

  after(async () => {
    await gw?.destroy();
    await app?.close();
    tlsUpstream?.close();
    tcpUpstream?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('HTTPS listener: certificateRefs name the credential, the HTTPRoute serves behind it', async () => {
    const r = await httpsGet('secure.example.com');
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).name, 'app');
    assert.equal(listenerCondition('tls', 'https', 'Programmed'), 'True/Programmed');
  });

  it('TLSRoute passthrough: the connection goes, still encrypted, to the backend chosen by SNI', async () => {
    assert.equal(await rawTls('pass.example.com'), 'hello from the passthrough upstream\n');
  });

  it('TCPRoute: a TCP listener pipes to its backend', async () => {
    const text = await new Promise<string>((resolve, reject) => {
      const s = netConnect(tcpPort, '127.0.0.1');
      let t = '';
      s.setEncoding('utf8');
      s.on('data', (d: string) => (t += d));
      s.on('end', () => resolve(t));
      s.on('error', reject);
    });
    assert.equal(text, 'hello over tcp\n');
  });

  it('GatewaySecretReferenceGrant: a Secret in another namespace is refused until granted', async () => {
    assert.equal(listenerCondition('tls', 'https-other', 'ResolvedRefs'), 'False/RefNotPermitted');
    assert.equal(listenerCondition('tls', 'https-other', 'Programmed'), 'False/Invalid');
    await assert.rejects(httpsGet('other.example.com'));
    await writeFile(
      join(config, 'grant.yaml'),
      `apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: gateways-read-certs, namespace: certificates}
spec:
  from: [{group: gateway.networking.k8s.io, kind: Gateway, namespace: ${NS}}]
  to: [{group: "", kind: Secret}]
`,
    );
    await eventually(async () => listenerCondition('tls', 'https-other', 'ResolvedRefs') === 'True/ResolvedRefs');
    await eventually(async () => (await httpsGet('other.example.com').catch(() => ({ status: 0 }))).status === 200);
  });
});
