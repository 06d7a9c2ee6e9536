// Integration: the upstream side of an access-log line as Envoy fills it, which Istio's default
// formats print: %UPSTREAM_LOCAL_ADDRESS% is the proxy's end of the connection the request went out
// on (the address the upstream saw the request come from), %UPSTREAM_REMOTE_ADDRESS% its other end;
// %UPSTREAM_TRANSPORT_FAILURE_REASON% says why a connection could not be made in Envoy's words (a
// refused connect, a certificate that did not verify); after a VirtualService rewrite %REQ(:PATH)%
// is the path sent upstream and x-envoy-original-path the one asked for, sent upstream too, never
// the client's own. Requests note their socket only while a format in force reads it. Real sockets.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createH2Server, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issueCertificate } from '../src/core/tls/issue-certificate.js';
import { watchingUpstreamSockets } from '../src/core/proxy/upstream-socket.js';
import { closedPort, startUpstream, type Upstream } from './helpers/upstream.js';
import { accessLogLine, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { meshConfigYaml, serviceYaml } from './helpers/cluster-yaml.js';

const HOST = 'up.example.com';

const FORMAT = JSON.stringify({
  request_id: '%REQ(X-REQUEST-ID)%',
  path: '%REQ(:PATH)%',
  shown_path: '%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%',
  upstream_host: '%UPSTREAM_HOST%',
  upstream_local: '%UPSTREAM_LOCAL_ADDRESS%',
  upstream_local_port: '%UPSTREAM_LOCAL_PORT%',
  upstream_remote: '%UPSTREAM_REMOTE_ADDRESS%',
  failure: '%UPSTREAM_TRANSPORT_FAILURE_REASON%',
  flags: '%RESPONSE_FLAGS%',
});

const GATEWAY = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: [${HOST}]}]
`;

const ROUTES = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: up, namespace: default}
spec:
  hosts: [${HOST}]
  gateways: [gw]
  http:
  - match: [{uri: {prefix: /old}}]
    rewrite: {uri: /new}
    route: [{destination: {host: app}}]
  - match: [{uri: {prefix: /gone}}]
    route: [{destination: {host: gone}}]
  - match: [{uri: {prefix: /secure}}]
    route: [{destination: {host: secure}}]
  - match: [{uri: {prefix: /h2}}]
    route: [{destination: {host: h2app}}]
  - route: [{destination: {host: app}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: secure, namespace: default}
spec:
  host: secure
  trafficPolicy: {tls: {mode: SIMPLE}}
`;

describe('access log: the upstream connection, its failures and a rewritten path', () => {
  let app: Upstream;
  let secure: HttpsServer;
  let h2app: Http2Server;
  let dir: string;
  let gw: TestGateway;
  /** The client address the app saw each request come from, by x-request-id. */
  const from = new Map<string, string>();

  before(async () => {
    app = await startUpstream('app', (req) => {
      from.set(String(req.headers['x-request-id']), `${req.socket.remoteAddress}:${req.socket.remotePort}`);
      return false;
    });
    const cert = issueCertificate({ subjectCN: 'secure', dnsNames: ['secure'], issuer: 'self', days: 1 });
    secure = createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, (_req, res) => res.end('never'));
    await new Promise<void>((r) => secure.listen(0, '127.0.0.1', r));
    // An upstream whose port speaks HTTP/2 (cleartext, prior knowledge): the proxy's own HTTP/2 client, not undici.
    h2app = createH2Server((req, res) => {
      from.set(String(req.headers['x-request-id']), `${req.socket.remoteAddress}:${req.socket.remotePort}`);
      res.end('h2');
    });
    await new Promise<void>((r) => h2app.listen(0, '127.0.0.1', r));
    dir = await mkdtemp(join(tmpdir(), 'meshgate-upstream-log-'));
  });

  after(async () => {
    await gw?.close();
    await app?.close();
    secure?.close();
    h2app?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('notes no socket while no log is written (--access-log off), nor for a format that does not print one', async () => {
    const quiet = await startTestGateway({ 'gw.yaml': GATEWAY, 'svc.yaml': serviceYaml('app', [{ pod: 'app-1', port: app.port }]), 'vs.yaml': ROUTES });
    try {
      assert.equal((await quiet.get(HOST, '/', { 'x-request-id': 'quiet' })).status, 200);
      assert.equal(watchingUpstreamSockets, false, "--access-log off: Istio's JSON keys are never formatted");
    } finally {
      await quiet.close();
    }
    const plain = await startTestGateway(
      { 'gw.yaml': GATEWAY, 'svc.yaml': serviceYaml('app', [{ pod: 'app-1', port: app.port }]), 'vs.yaml': ROUTES, 'mesh.yaml': meshConfigYaml(`accessLogFile: /dev/stdout\naccessLogFormat: "%REQ(X-REQUEST-ID)% %UPSTREAM_HOST%"`) },
      { accessLog: join(dir, 'plain.log') },
    );
    try {
      assert.equal((await plain.get(HOST, '/', { 'x-request-id': 'plain' })).status, 200);
      assert.equal(watchingUpstreamSockets, false, 'a format without the upstream connection operators');
    } finally {
      await plain.close();
    }
  });

  describe('with a format that prints them', () => {
    before(async () => {
      const services = [
        serviceYaml('app', [{ pod: 'app-1', port: app.port }]),
        serviceYaml('gone', [{ pod: 'gone-1', port: await closedPort() }]),
        serviceYaml('secure', [{ pod: 'secure-1', port: (secure.address() as AddressInfo).port }]),
        serviceYaml('h2app', [{ pod: 'h2app-1', port: (h2app.address() as AddressInfo).port }], { portName: 'http2' }),
      ].join('---\n');
      const mesh = meshConfigYaml(`accessLogFile: /dev/stdout\naccessLogEncoding: JSON\naccessLogFormat: '${FORMAT}'`);
      gw = await startTestGateway({ 'gw.yaml': GATEWAY, 'svc.yaml': services, 'vs.yaml': ROUTES, 'mesh.yaml': mesh }, { accessLog: join(dir, 'gw.log') });
    });

    const line = (id: string): Promise<Record<string, unknown>> => accessLogLine(join(dir, 'gw.log'), id);

    it('UPSTREAM_LOCAL_ADDRESS is where the upstream saw the request come from; the remote end is the endpoint', async () => {
      assert.equal((await gw.get(HOST, '/a', { 'x-request-id': 'first' })).status, 200);
      assert.equal(watchingUpstreamSockets, true);
      const l = await line('first');
      assert.equal(l.upstream_local, from.get('first'));
      assert.equal(l.upstream_local_port, Number(from.get('first')!.split(':')[1]));
      assert.equal(l.upstream_remote, `127.0.0.1:${app.port}`);
      assert.equal(l.upstream_host, `127.0.0.1:${app.port}`);
      assert.equal(l.failure, null);
      // Each request names its own connection, whichever of the pool's it went out on.
      await Promise.all(['c1', 'c2', 'c3'].map((id) => gw.get(HOST, '/b', { 'x-request-id': id })));
      for (const id of ['c1', 'c2', 'c3']) assert.equal((await line(id)).upstream_local, from.get(id), id);
    });

    it('over an HTTP/2 upstream too: the session the stream went out on', async () => {
      assert.equal((await gw.get(HOST, '/h2', { 'x-request-id': 'h2' })).text, 'h2');
      const l = await line('h2');
      assert.equal(l.upstream_local, from.get('h2'));
      assert.equal(l.upstream_remote, `127.0.0.1:${(h2app.address() as AddressInfo).port}`);
    });

    it('a refused connect: 503 UF, "delayed connect error: 111" as Envoy says it', async () => {
      const r = await gw.get(HOST, '/gone', { 'x-request-id': 'refused' });
      assert.equal(r.status, 503);
      assert.equal(r.text, 'upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: delayed connect error: 111');
      const l = await line('refused');
      assert.match(String(l.flags), /^UF(,URX)?$/, "retried as Istio's default policy does, then given up");
      assert.equal(l.failure, 'delayed connect error: 111');
      assert.equal(l.upstream_local, null, 'no connection was made');
    });

    it("a server certificate that does not verify: BoringSSL's CERTIFICATE_VERIFY_FAILED, as Envoy prints it", async () => {
      const r = await gw.get(HOST, '/secure', { 'x-request-id': 'untrusted' });
      assert.equal(r.status, 503);
      assert.match(r.text, /, transport failure reason: TLS_error:\|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end$/);
      const l = await line('untrusted');
      assert.match(String(l.flags), /^UF(,URX)?$/, "retried as Istio's default policy does, then given up");
      assert.equal(l.failure, 'TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end');
    });

    it('a rewritten path: REQ(:PATH) as sent upstream, x-envoy-original-path (query included) as asked, and sent upstream', async () => {
      const r = await gw.get(HOST, '/old/page?q=1', { 'x-request-id': 'rewritten' });
      const seen = r.json<{ url: string; headers: Record<string, string> }>();
      assert.equal(seen.url, '/new/page?q=1');
      assert.equal(seen.headers['x-envoy-original-path'], '/old/page?q=1');
      const l = await line('rewritten');
      assert.equal(l.path, '/new/page?q=1');
      assert.equal(l.shown_path, '/old/page?q=1');
    });

    it("a client's own x-envoy-original-path is dropped at the edge: neither logged nor sent", async () => {
      const r = await gw.get(HOST, '/plain', { 'x-request-id': 'spoofed', 'x-envoy-original-path': '/admin' });
      assert.equal(r.json<{ headers: Record<string, string> }>().headers['x-envoy-original-path'], undefined);
      const l = await line('spoofed');
      assert.deepEqual([l.path, l.shown_path], ['/plain', '/plain']);
    });
  });
});
