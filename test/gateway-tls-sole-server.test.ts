// Integration: a port whose only TLS server terminates TLS for every host (`hosts: ['*']`), as most
// single-certificate gateways are. Its connections skip the ClientHello peek (port-listener.ts):
// they must be served exactly as peeked ones are, with or without SNI, and a client that does not
// speak TLS must be closed without an HTTP answer. Once a second server shares the port, SNI
// chooses between them again.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { pino } from 'pino';
import { startGateway, type RunningGateway } from '../src/gateway/main.js';
import { issueCertificate } from '../src/core/tls/issue-certificate.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { eventually } from './helpers/gateway.js';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { writeCredential } from './helpers/credentials.js';
import { seededRandom } from './helpers/random.js';

const ROUTES = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web}
spec:
  hosts: ['*']
  gateways: [edge]
  http:
  - route: [{destination: {host: app}}]
`;

function gatewayYaml(extraServer: string): string {
  return `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ['*']
    tls: {mode: SIMPLE, credentialName: any-cert}
${extraServer}`;
}

/** One HTTP/1.1 request over TLS, no certificate check; the whole answer as text, until the server closes. */
function tlsGet(port: number, servername: string | undefined, ca: string): Promise<{ text: string; cn: string }> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca, checkServerIdentity: () => undefined, ...(servername ? { servername } : {}) }, () => {
      s.write('GET / HTTP/1.1\r\nHost: any.example.com\r\nConnection: close\r\n\r\n');
    });
    let text = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (text += d));
    s.once('end', () => resolve({ text, cn: String(s.getPeerCertificate().subject?.CN ?? '') }));
    s.once('error', reject);
  });
}

describe('a port with one TLS server for every host', () => {
  let app: Upstream;
  let gw: RunningGateway;
  let dir: string;
  let config: string;
  let port: number;
  let root: { certPem: string; keyPem: string };

  before(async () => {
    root = issueCertificate({ subjectCN: 'sole server root', isCA: true, issuer: 'self', days: 30 });
    app = await startUpstream('app');
    dir = await mkdtemp(join(tmpdir(), 'meshgate-tls-sole-'));
    const certs = join(dir, 'certs');
    config = join(dir, 'config');
    await mkdir(config);
    await writeCredential(certs, 'any-cert', issueCertificate({ subjectCN: 'any', dnsNames: ['any.example.com'], issuer: root, days: 30 }));
    await writeCredential(certs, 'b-cert', issueCertificate({ subjectCN: 'b', dnsNames: ['b.example.com'], issuer: root, days: 30 }));
    await writeFile(join(config, 'gw.yaml'), gatewayYaml(''));
    await writeFile(join(config, 'routes.yaml'), ROUTES);
    await writeFile(join(config, 'svc.yaml'), serviceYaml('app', [{ pod: 'app-1', port: app.port }]));
    gw = await startGateway({
      configDir: config,
      certsDir: certs,
      ports: new Map([[443, 0]]),
      listenHost: '127.0.0.1',
      statusPort: 0,
      adminPort: 0,
      accessLog: 'off',
      logger: pino({ level: 'silent' }),
      random: seededRandom(3),
    });
    port = gw.listenPorts.get(443)!;
  });

  after(async () => {
    await gw?.destroy();
    await app?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('serves a client that sends no SNI and one that sends any name', async () => {
    for (const servername of [undefined, 'any.example.com', 'elsewhere.example.org']) {
      const r = await tlsGet(port, servername, root.certPem);
      assert.match(r.text, /^HTTP\/1\.1 200 /, `SNI ${servername ?? '(none)'}`);
      assert.equal(r.cn, 'any');
    }
  });

  it('closes a client that speaks plaintext HTTP to the TLS port, without an HTTP answer', async () => {
    const answer = await new Promise<string>((resolve) => {
      const s = netConnect({ host: '127.0.0.1', port }, () => s.write('GET / HTTP/1.1\r\nHost: any.example.com\r\n\r\n'));
      let got = '';
      s.setEncoding('latin1');
      s.on('data', (d: string) => (got += d));
      s.once('close', () => resolve(got));
      s.once('error', () => undefined);
    });
    assert.doesNotMatch(answer, /HTTP\//);
  });

  it('chooses by SNI again once a second server shares the port', async () => {
    await writeFile(join(config, 'gw.yaml'), gatewayYaml(`  - port: {number: 443, name: https-b, protocol: HTTPS}
    hosts: [b.example.com]
    tls: {mode: SIMPLE, credentialName: b-cert}
`));
    // The file source sees the edit and swaps in a snapshot with both servers.
    await eventually(async () => (await tlsGet(port, 'b.example.com', root.certPem)).cn === 'b', 20_000);
    assert.equal((await tlsGet(port, 'any.example.com', root.certPem)).cn, 'any');
  });
});
