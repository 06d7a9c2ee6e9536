// Integration: the access-log fields Istio's default format carries (docs/observability.md), as Envoy fills
// them: bytes_received and bytes_sent count body bytes only (however the body was framed), protocol
// is HTTP/1.1 or HTTP/2, x_forwarded_for is the header as sent upstream (client address appended),
// and route_name is null when the route has no name. Over HTTP/1.1 and over HTTP/2 with TLS.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect as h2connect } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issueCertificate } from '../src/core/tls/issue-certificate.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { accessLogLine, chunked, eventually, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { serviceYaml } from './helpers/cluster-yaml.js';

const HOST = 'log.example.com';

const routes = (gateway: string): string => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: log, namespace: default}
spec:
  hosts: [${HOST}]
  gateways: [${gateway}]
  http:
  - name: named
    match: [{uri: {prefix: /named}}]
    route: [{destination: {host: app}}]
  - match: [{uri: {prefix: /empty}}]
    route: [{destination: {host: nobody}}]
  - match: [{uri: {prefix: /app}}]
    route: [{destination: {host: app}}]
`;

describe('access-log fields', () => {
  let app: Upstream;
  let dir: string;
  let plain: TestGateway, secure: TestGateway;
  const root = issueCertificate({ subjectCN: 'access log test root', isCA: true, issuer: 'self', days: 1 });

  before(async () => {
    app = await startUpstream('app');
    dir = await mkdtemp(join(tmpdir(), 'meshgate-access-log-'));
    const cred = join(dir, 'certs', 'log-cert');
    await mkdir(cred, { recursive: true });
    const cert = issueCertificate({ subjectCN: HOST, dnsNames: [HOST], issuer: root, days: 1 });
    await writeFile(join(cred, 'tls.crt'), cert.certPem);
    await writeFile(join(cred, 'tls.key'), cert.keyPem, { mode: 0o600 });
    const services = [serviceYaml('app', [{ pod: 'app-1', port: app.port }]), serviceYaml('nobody', [])].join('---\n');
    plain = await startTestGateway(
      {
        'gw.yaml': `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [${HOST}]}]
`,
        'svc.yaml': services,
        'vs.yaml': routes('gw'),
      },
      { accessLog: join(dir, 'plain.log') },
    );
    secure = await startTestGateway(
      {
        'gw.yaml': `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw-tls, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 443, name: https, protocol: HTTPS}, hosts: [${HOST}], tls: {mode: SIMPLE, credentialName: log-cert}}]
`,
        'svc.yaml': services,
        'vs.yaml': routes('gw-tls'),
      },
      { gatewayPort: 443, certsDir: join(dir, 'certs'), accessLog: join(dir, 'secure.log') },
    );
  });

  after(async () => {
    await plain?.close();
    await secure?.close();
    await app?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const line = (file: string, id: string): Promise<Record<string, unknown>> => accessLogLine(join(dir, file), id);

  it('counts body bytes of an upload and of its answer, not the headers', async () => {
    const r = await plain.get(HOST, '/app/upload', { 'x-request-id': 'upload' }, 'POST', Buffer.alloc(3_000_000, 1));
    assert.equal(r.status, 200);
    const l = await line('plain.log', 'upload');
    assert.equal(l.bytes_received, 3_000_000);
    assert.equal(l.bytes_sent, Buffer.byteLength(r.text));
    assert.equal(l.protocol, 'HTTP/1.1');
  });

  it('counts a chunked body by its content', async () => {
    await plain.get(HOST, '/app/chunked', { 'x-request-id': 'chunked' }, 'POST', chunked('hello'));
    assert.equal((await line('plain.log', 'chunked')).bytes_received, 5);
  });

  it('a local reply counts its body: none for 404 NR, the text for 503 UH', async () => {
    await plain.get('unknown.example.com', '/', { 'x-request-id': 'no-route' });
    const nr = await line('plain.log', 'no-route');
    assert.deepEqual([nr.response_code, nr.bytes_received, nr.bytes_sent, nr.route_name], [404, 0, 0, null]);
    const r = await plain.get(HOST, '/empty', { 'x-request-id': 'no-healthy' });
    assert.equal(r.text, 'no healthy upstream');
    assert.equal((await line('plain.log', 'no-healthy')).bytes_sent, 19);
  });

  it('route_name is the route name, or null when the route has none', async () => {
    await plain.get(HOST, '/named', { 'x-request-id': 'named' });
    await plain.get(HOST, '/app', { 'x-request-id': 'unnamed' });
    assert.equal((await line('plain.log', 'named')).route_name, 'named');
    assert.equal((await line('plain.log', 'unnamed')).route_name, null);
  });

  it('x_forwarded_for is the header sent upstream, with the client address appended', async () => {
    const r = await plain.get(HOST, '/app', { 'x-request-id': 'xff', 'x-forwarded-for': '203.0.113.9' });
    assert.equal(r.json<{ headers: Record<string, string> }>().headers['x-forwarded-for'], '203.0.113.9,127.0.0.1');
    assert.equal((await line('plain.log', 'xff')).x_forwarded_for, '203.0.113.9,127.0.0.1');
    await plain.get(HOST, '/app', { 'x-request-id': 'no-xff' });
    assert.equal((await line('plain.log', 'no-xff')).x_forwarded_for, '127.0.0.1');
  });

  it('over HTTP/2: protocol HTTP/2 and body bytes counted', async () => {
    const session = h2connect(`https://127.0.0.1:${secure.port}`, { ca: root.certPem, servername: HOST });
    try {
      const answer = await new Promise<string>((resolve, reject) => {
        const stream = session.request({ ':method': 'POST', ':path': '/app/h2', ':authority': HOST, 'x-request-id': 'h2' });
        let text = '';
        stream.setEncoding('utf8');
        stream.on('data', (d: string) => (text += d));
        stream.on('end', () => resolve(text));
        stream.on('error', reject);
        stream.end(Buffer.alloc(1234, 2));
      });
      const l = await line('secure.log', 'h2');
      assert.equal(l.protocol, 'HTTP/2');
      assert.equal(l.bytes_received, 1234);
      assert.equal(l.bytes_sent, Buffer.byteLength(answer));
    } finally {
      session.close();
    }
  });
});
