// Integration: TLS at the edge. Several certificates on one port chosen by SNI, 421 on HTTP/2
// connection reuse across certificates and for a Host whose own, more specific server is not the
// connection's, HTTP/2 and HTTP/1.1 by ALPN, client certificates (MUTUAL, OPTIONAL_MUTUAL) with
// x-forwarded-client-cert, passthrough to a TLS upstream, httpsRedirect and the port it names,
// minimum protocol version (and legacy TLS 1.1 when a server asks for it), and certificate
// replacement without restart.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect as http2Connect, type ClientHttp2Session } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, createServer as createTlsServer, type ConnectionOptions, type Server as TlsServer } from 'node:tls';
import { pino } from 'pino';
import { request, Agent } from 'undici';
import { startGateway, type RunningGateway } from '../src/gateway/main.js';
import { issueCertificate } from '../src/core/tls/issue-certificate.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { eventually } from './helpers/gateway.js';
import { seededRandom } from './helpers/random.js';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { writeCredential } from './helpers/credentials.js';

type Pem = { certPem: string; keyPem: string };

/** One GET on an open HTTP/2 session, with `authority` as :authority. */
function h2Get(session: ClientHttp2Session, authority: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':path': '/', ':authority': authority });
    let body = '';
    let status = 0;
    req.on('response', (h) => (status = Number(h[':status'])));
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => resolve({ status, body }));
    req.on('error', reject);
    req.end();
  });
}

describe('edge TLS', () => {
  let root: Pem, clientRoot: Pem, otherRoot: Pem;
  let app: Upstream;
  let tlsUpstream: TlsServer;
  let gw: RunningGateway;
  let dir: string;
  let certs: string;
  let httpsPort: number;
  let httpPort: number;

  /** TLS options for a client that trusts the test root and asks for `servername`. */
  const trust = (servername: string, extra: ConnectionOptions = {}): ConnectionOptions => ({ host: '127.0.0.1', port: httpsPort, servername, ca: root.certPem, ...extra });

  const peerCN = (servername: string, extra: ConnectionOptions = {}) =>
    new Promise<string>((resolve, reject) => {
      const s = tlsConnect(trust(servername, extra), () => {
        const cn = s.getPeerCertificate().subject?.CN as string;
        s.destroy();
        resolve(cn);
      });
      s.once('error', reject);
    });

  const httpsGet = async (servername: string, host: string, path = '/', headers: Record<string, string> = {}, tlsExtra: ConnectionOptions = {}) => {
    const dispatcher = new Agent({ connect: { servername, ca: root.certPem, ...(tlsExtra as object) } });
    try {
      const r = await request(`https://127.0.0.1:${httpsPort}${path}`, { headers: { host, ...headers }, dispatcher });
      const text = await r.body.text();
      return { status: r.statusCode, headers: r.headers, text };
    } finally {
      await dispatcher.close();
    }
  };

  before(async () => {
    root = issueCertificate({ subjectCN: 'meshgate test root', isCA: true, issuer: 'self', days: 30 });
    clientRoot = issueCertificate({ subjectCN: 'client root', isCA: true, issuer: 'self', days: 30 });
    otherRoot = issueCertificate({ subjectCN: 'other root', isCA: true, issuer: 'self', days: 30 });
    app = await startUpstream('app');
    const upstreamCert = issueCertificate({ subjectCN: 'passthrough upstream', dnsNames: ['pass.example.com'], issuer: root, days: 30 });
    tlsUpstream = createTlsServer({ cert: upstreamCert.certPem, key: upstreamCert.keyPem }, (s) => s.end('hello from the passthrough upstream\n'));
    await new Promise<void>((r) => tlsUpstream.listen(0, '127.0.0.1', r));
    const passPort = (tlsUpstream.address() as { port: number }).port;

    dir = await mkdtemp(join(tmpdir(), 'meshgate-tls-'));
    certs = join(dir, 'certs');
    const config = join(dir, 'config');
    await mkdir(config);
    await writeCredential(certs, 'a-cert', issueCertificate({ subjectCN: 'a.example.com', dnsNames: ['a.example.com'], issuer: root, days: 30 }));
    await writeCredential(certs, 'b-cert', issueCertificate({ subjectCN: 'b.example.com', dnsNames: ['b.example.com'], issuer: root, days: 30 }));
    await writeCredential(certs, 'wild-cert', issueCertificate({ subjectCN: 'wild', dnsNames: ['*.wild.example.com'], issuer: root, days: 30 }));
    await writeCredential(certs, 'mtls-cert', issueCertificate({ subjectCN: 'mtls.example.com', dnsNames: ['mtls.example.com', 'opt.example.com'], issuer: root, days: 30 }), clientRoot.certPem);
    await writeCredential(certs, 'exact-wild-cert', issueCertificate({ subjectCN: 'exact.wild.example.com', dnsNames: ['exact.wild.example.com'], issuer: root, days: 30 }), clientRoot.certPem);
    await writeCredential(certs, 'v13-cert', issueCertificate({ subjectCN: 'v13.example.com', dnsNames: ['v13.example.com'], issuer: root, days: 30 }));
    await writeCredential(certs, 'legacy-cert', issueCertificate({ subjectCN: 'legacy.example.com', dnsNames: ['legacy.example.com'], issuer: root, days: 30 }));

    await writeFile(
      join(config, 'gw.yaml'),
      `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [a.example.com]
    tls: {httpsRedirect: true}
  - port: {number: 443, name: https-a, protocol: HTTPS}
    hosts: [a.example.com]
    tls: {mode: SIMPLE, credentialName: a-cert}
  - port: {number: 443, name: https-b, protocol: HTTPS}
    hosts: [b.example.com]
    tls: {mode: SIMPLE, credentialName: b-cert}
  - port: {number: 443, name: https-wild, protocol: HTTPS}
    hosts: ['*.wild.example.com']
    tls: {mode: SIMPLE, credentialName: wild-cert}
  - port: {number: 443, name: https-mtls, protocol: HTTPS}
    hosts: [mtls.example.com]
    tls: {mode: MUTUAL, credentialName: mtls-cert}
  - port: {number: 443, name: https-exact-wild, protocol: HTTPS}
    hosts: [exact.wild.example.com]
    tls: {mode: MUTUAL, credentialName: exact-wild-cert}
  - port: {number: 443, name: https-opt, protocol: HTTPS}
    hosts: [opt.example.com]
    tls: {mode: OPTIONAL_MUTUAL, credentialName: mtls-cert}
  - port: {number: 443, name: https-v13, protocol: HTTPS}
    hosts: [v13.example.com]
    tls: {mode: SIMPLE, credentialName: v13-cert, minProtocolVersion: TLSV1_3}
  - port: {number: 443, name: https-legacy, protocol: HTTPS}
    hosts: [legacy.example.com]
    tls: {mode: SIMPLE, credentialName: legacy-cert, minProtocolVersion: TLSV1_1, cipherSuites: [ECDHE-RSA-AES128-SHA, ECDHE-RSA-AES128-GCM-SHA256]}
  - port: {number: 443, name: tls-pass, protocol: TLS}
    hosts: [pass.example.com]
    tls: {mode: PASSTHROUGH}
`,
    );
    await writeFile(
      join(config, 'routes.yaml'),
      `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web}
spec:
  hosts: [a.example.com, b.example.com, '*.wild.example.com', mtls.example.com, opt.example.com, v13.example.com, legacy.example.com]
  gateways: [edge]
  http:
  - route: [{destination: {host: app}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: pass}
spec:
  hosts: [pass.example.com]
  gateways: [edge]
  tls:
  - match: [{sniHosts: [pass.example.com]}]
    route: [{destination: {host: pass, port: {number: 443}}}]
`,
    );
    await writeFile(
      join(config, 'svc.yaml'),
      serviceYaml('app', [{ pod: 'app-1', port: app.port }]) + '---\n' + serviceYaml('pass', [{ pod: 'pass-1', port: passPort }], { port: 443, portName: 'tls' }),
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
      random: seededRandom(7),
    });
    httpsPort = gw.listenPorts.get(443)!;
    httpPort = gw.listenPorts.get(80)!;
  });

  after(async () => {
    await gw?.destroy();
    await app?.close();
    tlsUpstream?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('picks the certificate by SNI, several on one port', async () => {
    assert.equal(await peerCN('a.example.com'), 'a.example.com');
    assert.equal(await peerCN('b.example.com'), 'b.example.com');
    assert.equal(await peerCN('x.wild.example.com'), 'wild');
  });

  it('routes HTTPS requests and tells the upstream the scheme', async () => {
    const r = await httpsGet('b.example.com', 'b.example.com', '/hi');
    assert.equal(r.status, 200);
    const echo = JSON.parse(r.text) as { url: string; headers: Record<string, string> };
    assert.equal(echo.url, '/hi');
    assert.equal(echo.headers['x-forwarded-proto'], 'https');
  });

  it('closes a connection whose SNI matches no server', async () => {
    await assert.rejects(peerCN('nobody.example.org'));
  });

  it('speaks HTTP/2 by ALPN and answers 421 for a host of another certificate on the same connection', async () => {
    const session: ClientHttp2Session = http2Connect(`https://127.0.0.1:${httpsPort}`, { servername: 'a.example.com', ca: root.certPem });
    try {
      const ok = await h2Get(session, 'a.example.com');
      assert.equal(ok.status, 200);
      assert.equal((JSON.parse(ok.body) as { name: string }).name, 'app');
      assert.equal((await h2Get(session, 'b.example.com')).status, 421);
    } finally {
      session.close();
    }
  });

  // SNI x.wild.example.com picks the SIMPLE wildcard server; exact.wild.example.com has its own
  // MUTUAL server. Routing that Host through the wildcard connection would skip the client certificate.
  it('answers 421 over HTTP/2 for a Host whose more specific server is not the connection\'s (no bypass of its client-certificate policy)', async () => {
    const session: ClientHttp2Session = http2Connect(`https://127.0.0.1:${httpsPort}`, { servername: 'x.wild.example.com', ca: root.certPem });
    try {
      assert.equal((await h2Get(session, 'x.wild.example.com')).status, 200);
      assert.equal((await h2Get(session, 'y.wild.example.com')).status, 200, 'another name of the same server is fine');
      assert.equal((await h2Get(session, 'exact.wild.example.com')).status, 421);
    } finally {
      session.close();
    }
  });

  it('answers 421 over HTTP/1.1 for the same bypass, and serves that Host on its own server with a client certificate', async () => {
    // node:https, because undici takes the SNI from the Host header.
    const h1 = (servername: string, host: string) =>
      new Promise<number>((resolve, reject) => {
        const req = httpsRequest({ host: '127.0.0.1', port: httpsPort, servername, ca: root.certPem, headers: { host }, agent: false }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end();
      });
    assert.equal(await h1('x.wild.example.com', 'x.wild.example.com'), 200);
    assert.equal(await h1('x.wild.example.com', 'exact.wild.example.com'), 421);
    assert.equal(await h1('x.wild.example.com', 'exact.wild.example.com:443'), 421, 'the port does not change which server a Host belongs to');
    await assert.rejects(httpsGet('exact.wild.example.com', 'exact.wild.example.com'), 'its own server wants a client certificate');
    const alice = issueCertificate({ subjectCN: 'alice', dnsNames: ['alice.example.com'], issuer: clientRoot, days: 1, extKeyUsage: ['clientAuth'] });
    const r = await httpsGet('exact.wild.example.com', 'exact.wild.example.com', '/', {}, { cert: alice.certPem, key: alice.keyPem });
    assert.equal(r.status, 200);
    assert.match((JSON.parse(r.text) as { headers: Record<string, string> }).headers['x-forwarded-client-cert'] ?? '', /Subject="CN=alice"/);
  });

  it('requires a client certificate signed by the configured CA (MUTUAL)', async () => {
    const good = issueCertificate({ subjectCN: 'alice', dnsNames: ['alice.example.com'], uris: ['spiffe://cluster.local/ns/default/sa/alice'], issuer: clientRoot, days: 1, extKeyUsage: ['clientAuth'] });
    const bad = issueCertificate({ subjectCN: 'mallory', dnsNames: ['mallory.example.com'], issuer: otherRoot, days: 1, extKeyUsage: ['clientAuth'] });
    await assert.rejects(httpsGet('mtls.example.com', 'mtls.example.com'));
    await assert.rejects(httpsGet('mtls.example.com', 'mtls.example.com', '/', {}, { cert: bad.certPem, key: bad.keyPem }));
    const r = await httpsGet('mtls.example.com', 'mtls.example.com', '/', { 'x-forwarded-client-cert': 'By=spoofed;URI=spiffe://evil' }, { cert: good.certPem, key: good.keyPem });
    assert.equal(r.status, 200);
    const xfcc = (JSON.parse(r.text) as { headers: Record<string, string> }).headers['x-forwarded-client-cert'] ?? '';
    assert.match(xfcc, /^Hash=[0-9a-f]{64};Cert="-----BEGIN%20CERTIFICATE-----/);
    assert.match(xfcc, /;Subject="CN=alice";URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/alice;DNS=alice\.example\.com$/);
    assert.doesNotMatch(xfcc, /spoofed|evil/);
  });

  it('puts the whole client subject in XFCC, RFC 2253 order and escaping (emailAddress, DC)', async () => {
    const run = (args: string[]) => new Promise<void>((resolve, reject) => execFile('openssl', args, (err) => (err ? reject(err) : resolve())));
    const f = (name: string) => join(dir, name);
    await writeFile(f('client-root.crt'), clientRoot.certPem);
    await writeFile(f('client-root.key'), clientRoot.keyPem, { mode: 0o600 });
    await writeFile(f('client.ext'), 'extendedKeyUsage = clientAuth\n');
    await run(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('bob.key'), '-out', f('bob.csr'),
      '-subj', '/DC=com/DC=example/O=Example, Inc./CN=bob/emailAddress=bob@example.com']);
    await run(['x509', '-req', '-in', f('bob.csr'), '-CA', f('client-root.crt'), '-CAkey', f('client-root.key'), '-set_serial', '7', '-days', '1', '-extfile', f('client.ext'), '-out', f('bob.crt')]);
    const r = await httpsGet('mtls.example.com', 'mtls.example.com', '/', {}, { cert: await readFile(f('bob.crt'), 'utf8'), key: await readFile(f('bob.key'), 'utf8') });
    assert.equal(r.status, 200);
    const xfcc = (JSON.parse(r.text) as { headers: Record<string, string> }).headers['x-forwarded-client-cert'] ?? '';
    assert.match(xfcc, /;Subject="emailAddress=bob@example\.com,CN=bob,O=Example\\, Inc\.,DC=example,DC=com"$/);
  });

  it('accepts a connection without client certificate under OPTIONAL_MUTUAL, and strips a spoofed XFCC', async () => {
    const r = await httpsGet('opt.example.com', 'opt.example.com', '/', { 'x-forwarded-client-cert': 'URI=spiffe://evil' });
    assert.equal(r.status, 200);
    assert.equal((JSON.parse(r.text) as { headers: Record<string, string> }).headers['x-forwarded-client-cert'], undefined);
  });

  it('refuses a protocol version below minProtocolVersion', async () => {
    await assert.rejects(peerCN('v13.example.com', { maxVersion: 'TLSv1.2' }));
    assert.equal(await peerCN('v13.example.com'), 'v13.example.com');
  });

  it('speaks TLS 1.1 on a server whose minProtocolVersion allows it, and only there', async () => {
    // OpenSSL 3 refuses TLS 1.1 at its default security level, on either side: the client lowers its own.
    const sClient = (servername: string) =>
      new Promise<string>((resolve) => {
        const args = ['s_client', '-connect', `127.0.0.1:${httpsPort}`, '-servername', servername, '-tls1_1', '-cipher', 'ECDHE-RSA-AES128-SHA:@SECLEVEL=0'];
        const child = execFile('openssl', args, { timeout: 10_000 }, (_err, stdout, stderr) => resolve(stdout + stderr));
        child.stdin?.end();
      });
    const legacy = await sClient('legacy.example.com');
    assert.match(legacy, /Protocol\s*: TLSv1\.1/, legacy);
    assert.match(legacy, /Cipher is ECDHE-RSA-AES128-SHA/, legacy);
    assert.match(legacy, /subject=CN ?= ?legacy\.example\.com/, legacy);
    const modern = await sClient('b.example.com');
    assert.match(modern, /Cipher is \(NONE\)|alert protocol version|no protocols available/, modern);
    // Node's client, which the same security level governs.
    assert.equal(await peerCN('legacy.example.com', { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'ECDHE-RSA-AES128-SHA:@SECLEVEL=0' }), 'legacy.example.com');
  });

  it('passes TLS through untouched by SNI: the client sees the upstream certificate', async () => {
    const { cn, text } = await new Promise<{ cn: string; text: string }>((resolve, reject) => {
      const s = tlsConnect(trust('pass.example.com'), () => {
        const cn = s.getPeerCertificate().subject?.CN as string;
        let text = '';
        s.setEncoding('utf8');
        s.on('data', (d: string) => (text += d));
        s.on('end', () => resolve({ cn, text }));
      });
      s.once('error', reject);
    });
    assert.equal(cn, 'passthrough upstream');
    assert.equal(text, 'hello from the passthrough upstream\n');
  });

  it('redirects plaintext to HTTPS with 301 (httpsRedirect)', async () => {
    const r = await request(`http://127.0.0.1:${httpPort}/path?q=1`, { headers: { host: 'a.example.com' } });
    await r.body.dump();
    assert.equal(r.statusCode, 301);
    assert.equal(r.headers.location, 'https://a.example.com/path?q=1');
  });

  it('redirects a Host naming the listen port to the HTTPS listen port, and one naming the Gateway port to 443', async () => {
    const location = async (host: string) => {
      const r = await request(`http://127.0.0.1:${httpPort}/path?q=1`, { headers: { host } });
      await r.body.dump();
      assert.equal(r.statusCode, 301);
      return r.headers.location;
    };
    // Came straight to the gateway's port (as in the demo, 8080): the HTTPS server listens on its own port.
    assert.equal(await location(`a.example.com:${httpPort}`), `https://a.example.com:${httpsPort}/path?q=1`);
    // Came through the Service (port 80): HTTPS is its port 443.
    assert.equal(await location('a.example.com:80'), 'https://a.example.com/path?q=1');
    // And a redirect followed from the listen port reaches the HTTPS server.
    const followed = await httpsGet('a.example.com', `a.example.com:${httpsPort}`, '/path');
    assert.equal(followed.status, 200);
  });

  it('serves a replaced certificate to new handshakes without restart, failing no request meanwhile', async () => {
    let failures = 0;
    let total = 0;
    let stop = false;
    // New connections (handshakes) and requests on each, all through the swap.
    const load = (async () => {
      while (!stop) {
        const rs = await Promise.all(Array.from({ length: 4 }, () => httpsGet('b.example.com', 'b.example.com').catch(() => undefined)));
        for (const r of rs) {
          total++;
          if (!r || r.status !== 200) failures++;
        }
      }
    })();
    // Load runs before, during and after the swap: counted in requests, not in time.
    try {
      await eventually(async () => total >= 8, 20_000);
      await writeCredential(certs, 'b-cert', issueCertificate({ subjectCN: 'b.example.com renewed', dnsNames: ['b.example.com'], issuer: root, days: 30 }));
      await eventually(async () => (await peerCN('b.example.com')) === 'b.example.com renewed');
      const afterSwap = total;
      await eventually(async () => total >= afterSwap + 8, 20_000);
    } finally {
      // Also when a wait fails: the loop would keep the test file running for ever.
      stop = true;
      await load;
    }
    assert.equal(failures, 0, `${failures} of ${total} requests failed during the certificate swap`);
  });

  it('keeps the old certificate when the replacement does not match its key', async () => {
    const other = issueCertificate({ subjectCN: 'mismatch', dnsNames: ['a.example.com'], issuer: root, days: 30 });
    const current = issueCertificate({ subjectCN: 'unused', dnsNames: ['a.example.com'], issuer: root, days: 30 });
    await writeFile(join(certs, 'a-cert', 'tls.crt'), other.certPem);
    await writeFile(join(certs, 'a-cert', 'tls.key'), current.keyPem);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await peerCN('a.example.com'), 'a.example.com');
  });
});
