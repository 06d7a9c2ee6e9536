// Integration: an upgrade request (WebSocket, or any `Upgrade:` protocol) takes every decision any
// request takes — TLS redirect, redirect and direct-response routes, rate limits, faults, circuit
// breakers, the access log — and its local replies are real HTTP/1.1 answers from respond.ts, with
// the reason phrase of their status. Only a 101 from the upstream turns the connection into a pipe.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { accessLogLine, eventually, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { serviceYaml } from './helpers/cluster-yaml.js';

const WS = 'ws.example.com';
const SECURE = 'secure.example.com';

const CONFIG = {
  'gateway.yaml': `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [${WS}]
  - port: {number: 80, name: http-secure, protocol: HTTP}
    hosts: [${SECURE}]
    tls: {httpsRedirect: true}
`,
  'vs.yaml': `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ws, namespace: default}
spec:
  hosts: [${WS}, ${SECURE}]
  gateways: [gw]
  http:
  - match: [{uri: {exact: /moved}}]
    redirect: {uri: /new}
  - match: [{uri: {exact: /direct}}]
    directResponse: {status: 418, body: {string: direct}}
  - match: [{uri: {prefix: /abort}}]
    fault: {abort: {httpStatus: 503, percentage: {value: 100}}}
    route: [{destination: {host: app}}]
  - name: limited
    match: [{uri: {prefix: /limited}}]
    route: [{destination: {host: app}}]
  - match: [{uri: {prefix: /capped}}]
    route: [{destination: {host: capped}}]
  - name: chat
    route: [{destination: {host: app}}]
`,
  'limit.yaml': `apiVersion: meshgate.io/v1
kind: RateLimitPolicy
metadata: {name: two-an-hour, namespace: default}
spec:
  targetRef: {kind: VirtualService, name: ws, route: limited}
  limits:
  - {key: {clientIp: {}}, requests: 2, interval: 1h}
  store: memory
`,
  'dr.yaml': `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: capped, namespace: default}
spec:
  host: capped
  trafficPolicy: {connectionPool: {http: {http2MaxRequests: 1}}}
`,
};

interface Answer {
  /** Everything received: the head, and the body of an answer that ended the connection. */
  text: string;
  status: number;
  socket: Socket;
}

/** Sends an upgrade request on a new connection; resolves with a 101 head, or with a whole answer. */
function upgrade(port: number, host: string, path: string, opts: { protocol?: string; id?: string } = {}): Promise<Answer> {
  const socket = connect(port, '127.0.0.1');
  const protocol = opts.protocol ?? 'websocket';
  socket.write(
    `GET ${path} HTTP/1.1\r\nhost: ${host}\r\nconnection: Upgrade\r\nupgrade: ${protocol}\r\n` +
      `${opts.id ? `x-request-id: ${opts.id}\r\n` : ''}sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
  );
  return new Promise((resolve, reject) => {
    let text = '';
    const status = (): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
    const onData = (d: Buffer): void => {
      text += d.toString('latin1');
      if (text.includes('\r\n\r\n') && status() === 101) {
        socket.off('data', onData);
        resolve({ text, status: 101, socket });
      }
    };
    socket.on('data', onData);
    socket.once('end', () => resolve({ text, status: status(), socket }));
    socket.once('error', reject);
  });
}

function header(text: string, name: string): string | undefined {
  const m = new RegExp(`^${name}: (.*)$`, 'mi').exec(text.slice(0, text.indexOf('\r\n\r\n')));
  return m?.[1];
}

const body = (text: string): string => text.slice(text.indexOf('\r\n\r\n') + 4);

describe('upgrade requests take the same path as any request', () => {
  let app: Upstream, capped: Upstream;
  let gw: TestGateway;
  let logDir: string;
  const open: Socket[] = [];

  before(async () => {
    const echo = (u: Upstream): void => {
      u.server.on('upgrade', (req, socket) => {
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: ${req.headers.upgrade}\r\nconnection: Upgrade\r\n\r\n`);
        socket.on('data', (d: Buffer) => socket.write(Buffer.concat([Buffer.from('echo:'), d])));
      });
    };
    app = await startUpstream('app');
    capped = await startUpstream('capped');
    echo(app);
    echo(capped);
    logDir = await mkdtemp(join(tmpdir(), 'meshgate-upgrade-'));
    gw = await startTestGateway(
      {
        ...CONFIG,
        'svc.yaml': [serviceYaml('app', [{ pod: 'app-1', port: app.port }]), serviceYaml('capped', [{ pod: 'capped-1', port: capped.port }])].join('---\n'),
      },
      { accessLog: join(logDir, 'access.log') },
    );
  });

  after(async () => {
    for (const s of open) s.destroy();
    await gw?.close();
    await Promise.all([app?.close(), capped?.close()]);
    await rm(logDir, { recursive: true, force: true });
  });

  const logLine = (id: string): Promise<Record<string, unknown>> => accessLogLine(join(logDir, 'access.log'), id);

  it('pipes the connection after the upstream 101, and logs the request', async () => {
    const a = await upgrade(gw.port, WS, '/chat', { id: 'ws-101' });
    open.push(a.socket);
    assert.equal(a.status, 101);
    assert.equal(header(a.text, 'upgrade'), 'websocket');
    assert.equal(header(a.text, 'server'), 'istio-envoy');
    let echoed = '';
    a.socket.on('data', (d: Buffer) => (echoed += d.toString()));
    a.socket.write('ping');
    await eventually(async () => echoed.includes('echo:ping'));
    a.socket.end();
    const line = await logLine('ws-101');
    assert.equal(line.response_code, 101);
    assert.equal(line.response_flags, '-');
    assert.equal(line.route_name, 'chat');
    assert.equal(line.upstream_host, `127.0.0.1:${app.port}`);
    assert.equal(line.bytes_received, 4, 'the tunnelled bytes are the body: ping');
    assert.equal(line.bytes_sent, 9, 'echo:ping');
  });

  it('httpsRedirect answers 301 to https', async () => {
    const a = await upgrade(gw.port, SECURE, '/chat?x=1');
    assert.match(a.text, /^HTTP\/1\.1 301 Moved Permanently\r\n/);
    assert.equal(header(a.text, 'location'), `https://${SECURE}/chat?x=1`);
  });

  it('a redirect route redirects and a direct-response route answers', async () => {
    const moved = await upgrade(gw.port, WS, '/moved');
    assert.match(moved.text, /^HTTP\/1\.1 301 Moved Permanently\r\n/);
    assert.equal(header(moved.text, 'location'), `http://${WS}/new`);
    const direct = await upgrade(gw.port, WS, '/direct');
    assert.match(direct.text, /^HTTP\/1\.1 418 I'm a Teapot\r\n/);
    assert.equal(body(direct.text), 'direct');
  });

  it('local replies carry the reason phrase of their status and the request is logged', async () => {
    const bad = await upgrade(gw.port, WS, '/%00');
    assert.match(bad.text, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.equal(body(bad.text), 'Bad Request');
    const unknown = await upgrade(gw.port, 'nobody.example.com', '/chat', { id: 'ws-404' });
    assert.match(unknown.text, /^HTTP\/1\.1 404 Not Found\r\n/);
    const line = await logLine('ws-404');
    assert.equal(line.response_code, 404);
    assert.equal(line.response_flags, 'NR');
  });

  it('a request Node cannot parse gets the same 400 local reply', async () => {
    const socket = connect(gw.port, '127.0.0.1');
    socket.write(`GET /chat HTTP/1.1\r\nhost: ${WS}\r\nnot a header\r\n\r\n`);
    let text = '';
    for await (const d of socket) text += (d as Buffer).toString('latin1');
    assert.match(text, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.equal(header(text, 'server'), 'istio-envoy');
    assert.equal(body(text), 'Bad Request');
  });

  it('a fault abort answers instead of the upstream', async () => {
    const a = await upgrade(gw.port, WS, '/abort');
    assert.match(a.text, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
    assert.equal(body(a.text), 'fault filter abort');
  });

  it('a RateLimitPolicy counts upgrade requests like any other', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const a = await upgrade(gw.port, WS, '/limited');
      a.socket.destroy();
      statuses.push(a.status);
    }
    assert.deepEqual(statuses, [101, 101, 429]);
  });

  it('an open tunnel holds its circuit-breaker slot until it closes', async () => {
    const first = await upgrade(gw.port, WS, '/capped');
    assert.equal(first.status, 101);
    const second = await upgrade(gw.port, WS, '/capped', { id: 'ws-overflow' });
    assert.match(second.text, /^HTTP\/1\.1 503 Service Unavailable\r\n/);
    assert.equal((await logLine('ws-overflow')).response_flags, 'UO');
    first.socket.destroy();
    await eventually(async () => {
      const again = await upgrade(gw.port, WS, '/capped');
      again.socket.destroy();
      return again.status === 101;
    });
  });
});
