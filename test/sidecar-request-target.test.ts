// Security regressions for the sidecar's two sides, the parse and accept stages as at the gateway:
// inbound (plaintext under PERMISSIVE, mutual TLS over HTTP/1 and HTTP/2) and outbound (the app's
// HTTP proxy). A #fragment never gets past an AuthorizationPolicy DENY nor reaches the app, the
// authority is one, Envoy's header limits answer 431, and silent or slowloris connections are closed.
// Upgrades take the same stages on both sides: a WebSocket reaches the app as a tunnel (across the
// mesh, at the inbound side and passed through to a host the mesh does not know), after the policy;
// other protocols are 403 and h2c is plain HTTP/1.1. Before, both relays (to the app, and the
// passthrough) sent an upgrade on as a plain request: the app answered 200 and no tunnel opened.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { constants, type ClientHttp2Session } from 'node:http2';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { pino } from 'pino';
import type { CertificateAuthority } from '../src/core/pki/authority.js';
import { FileSource } from '../src/core/sources/file-source.js';
import { startSidecar, type RunningSidecar } from '../src/sidecar/main.js';
import { DEFAULT_HTTP_LIMITS } from '../src/core/proxy/http-limits.js';
import { permissiveDenyPathsYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { fixedIdentity, testAuthority, untilSnapshot, workloadCertificate } from './helpers/mesh.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { NO_APP } from './helpers/ports.js';
import { eventually } from './helpers/gateway.js';
import { answerHead, echoed, h2Request, h2Session, openSocket, rawExchange, readUntilClosed, type TlsClient } from './helpers/raw-http.js';

describe('sidecar inbound and outbound: one target, one authority, limits and timeouts', () => {
  let ca: CertificateAuthority;
  let dir: string;
  let userApp: Upstream;
  let user: RunningSidecar, product: RunningSidecar;
  let mtls: TlsClient;
  let h2: ClientHttp2Session;
  /** Upgrades the app saw: `<protocol> <path>`. */
  const upgrades: string[] = [];
  const quiet = pino({ level: 'silent' });
  // Short enough for the slowloris test, long enough that a TLS handshake on a loaded machine (a full
  // test run) still gets its request's headers in: at 400 ms a request now and then was closed unanswered.
  const limits = { ...DEFAULT_HTTP_LIMITS, requestHeadersTimeoutMs: 1500, idleTimeoutMs: 2500 };
  const common = { statusPort: 0, adminPort: 0, outboundPort: 0, listenHost: '127.0.0.1', accessLog: 'off', logger: quiet, namespace: 'default', limits };

  before(async () => {
    ca = await testAuthority();
    userApp = await startUpstream('user-app');
    // The app's WebSocket endpoint: 101, then every byte back.
    userApp.server.on('upgrade', (req, socket: Socket) => {
      upgrades.push(`${String(req.headers.upgrade)} ${req.url ?? ''}`);
      socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n');
      socket.pipe(socket);
    });
    dir = await mkdtemp(join(tmpdir(), 'meshgate-sidecar-target-'));
    await writeFile(join(dir, 'security.yaml'), permissiveDenyPathsYaml('user-service', ['/user/admin', '/admin/*']));
    user = await startSidecar({
      ...common,
      identity: fixedIdentity(ca, 'default', 'user-service'),
      source: new FileSource({ dir }),
      serviceAccount: 'user-service',
      labels: { app: 'user-service' },
      appPort: userApp.port,
      inboundPort: 0,
    });
    product = await startSidecar({
      ...common,
      identity: fixedIdentity(ca, 'default', 'product-service'),
      source: new FileSource({ dir }),
      serviceAccount: 'product-service',
      labels: { app: 'product-service' },
      appPort: NO_APP,
      inboundPort: 0,
    });
    // The service's endpoint is the user sidecar's inbound port, which it chose (port 0).
    await writeFile(join(dir, 'services.yaml'), serviceYaml('user-service', [{ pod: 'user-0', port: user.inboundPort, serviceAccount: 'user-service', labels: { 'security.istio.io/tlsMode': 'istio' } }]));
    await Promise.all([user, product].map((s) => untilSnapshot(s.holder, (snap) => snap.registry.lookup('user-service.default.svc.cluster.local') !== undefined)));
    const client = workloadCertificate(ca, 'default', 'product-service');
    // PERMISSIVE terminates TLS that offers Istio's ALPN, as a mesh peer does.
    mtls = { ca: ca.rootCertPem, servername: 'user-service', cert: client.certChainPem, key: client.keyPem, alpn: ['istio-http/1.1', 'http/1.1'] };
  });

  after(async () => {
    h2?.destroy();
    await Promise.all([user?.destroy(), product?.destroy()]);
    await userApp?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const get = (port: number, target: string, tls?: TlsClient, host = 'user-service', extra = ''): Promise<{ status: number; text: string }> =>
    rawExchange(port, `GET ${target} HTTP/1.1\r\nhost: ${host}\r\n${extra}connection: close\r\n\r\n`, tls ? { tls } : {});

  it('inbound: /user/admin#x is /user/admin to AuthorizationPolicy, on plaintext, mTLS HTTP/1 and HTTP/2', async () => {
    const before = userApp.seen.length;
    for (const tls of [undefined, mtls]) {
      assert.equal((await get(user.inboundPort, '/user/admin', tls)).status, 403);
      assert.equal((await get(user.inboundPort, '/user/admin#x', tls)).status, 403);
      assert.equal((await get(user.inboundPort, '/admin/x#y', tls)).status, 403);
    }
    // Opened now: a session with no stream is closed by the (short) header timeout of this test.
    h2 = await h2Session(user.inboundPort, { ...mtls, alpn: ['istio-h2', 'h2'] });
    assert.equal((await h2Request(h2, { ':path': '/user/admin#x', ':authority': 'user-service' })).status, 403);
    assert.equal(userApp.seen.length, before, 'the app saw none of them');
    // Right away: an idle session is closed by the (short) idle timeout of this test.
    assert.equal((await h2Request(h2, { ':path': '/ok#frag', ':authority': 'user-service', host: 'evil' })).status, 200);
    assert.equal((await get(user.inboundPort, '/ok?a=1#frag', mtls)).status, 200);
    assert.deepEqual(
      userApp.seen.slice(before).map((e) => [e.url, e.headers.host]),
      [
        ['/ok', 'user-service'],
        ['/ok?a=1', 'user-service'],
      ],
    );
  });

  it('outbound: the fragment is cut before routing and the policy at the other end', async () => {
    const before = userApp.seen.length;
    assert.equal((await get(product.outboundPort, 'http://user-service/user/admin#x')).status, 403);
    assert.equal((await get(product.outboundPort, 'http://user-service/ok#x', undefined, 'evil.example.com')).status, 200);
    assert.deepEqual(
      userApp.seen.slice(before).map((e) => e.url),
      ['/ok'],
    );
    assert.equal((await rawExchange(product.outboundPort, `GET / HTTP/1.1\r\nhost: user-service\r\nhost: evil\r\nconnection: close\r\n\r\n`)).status, 400);
  });

  it('answers more than 100 headers with 431 and a long URL with 414, inbound and outbound', async () => {
    const many = Array.from({ length: 101 }, (_, i) => `x-h${i}: v\r\n`).join('');
    for (const [port, tls] of [
      [user.inboundPort, mtls],
      [user.inboundPort, undefined],
      [product.outboundPort, undefined],
    ] as const) {
      assert.equal((await get(port, '/', tls, 'user-service', many)).status, 431);
      assert.equal((await get(port, `/${'u'.repeat(61 * 1024)}`, tls)).status, 414);
    }
  });

  it('closes silent and slowloris connections on both sides', async () => {
    for (const [port, tls] of [
      [user.inboundPort, undefined],
      [user.inboundPort, mtls],
      [product.outboundPort, undefined],
    ] as const) {
      const silent = await openSocket(port, tls);
      await readUntilClosed(silent);
      const slow = await openSocket(port, tls);
      const done = readUntilClosed(slow);
      slow.write('GET / HTTP/1.1\r\nhost: user-service\r\n');
      const drip = setInterval(() => slow.writable && slow.write('x-drip: 1\r\n'), 50);
      const answer = await done;
      clearInterval(drip);
      assert.equal(answer.status, 408, answer.text);
    }
    // Before its ClientHello, too.
    await readUntilClosed(await openSocket(user.inboundPort));
  });

  it('refuses the asterisk-form with 400 and closes HTTP/1.0 with Transfer-Encoding, inbound and outbound', async () => {
    const before = userApp.seen.length;
    for (const [port, tls] of [
      [user.inboundPort, mtls],
      [user.inboundPort, undefined],
      [product.outboundPort, undefined],
    ] as const) {
      assert.equal((await get(port, '*', tls)).status, 400);
      assert.equal((await rawExchange(port, `OPTIONS * HTTP/1.1\r\nhost: user-service\r\nconnection: close\r\n\r\n`, tls ? { tls } : {})).status, 400);
    }
    assert.equal(userApp.seen.length, before, 'the app saw none of them');
    for (const [port, tls, target] of [
      [user.inboundPort, undefined, '/te'],
      [product.outboundPort, undefined, 'http://user-service/te'],
    ] as const) {
      const r = await rawExchange(port, `POST ${target} HTTP/1.0\r\nhost: user-service\r\nconnection: keep-alive\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, tls ? { tls } : {});
      // rawExchange resolves only once the sidecar has closed the connection.
      assert.equal(r.status, 200, r.text);
      assert.match(r.text, /connection: close/i);
    }
  });

  const wsRequest = (target: string, host = 'user-service'): string =>
    `GET ${target} HTTP/1.1\r\nhost: ${host}\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;

  /** A WebSocket upgrade through `port`: the 101's head, then whether bytes come back through the tunnel. */
  const websocket = async (port: number, target: string, opts: { tls?: TlsClient; host?: string } = {}): Promise<{ head: string; echo?: string }> => {
    const s = await openSocket(port, opts.tls);
    try {
      const head = await answerHead(s, wsRequest(target, opts.host));
      if (!head.startsWith('HTTP/1.1 101')) return { head };
      return { head, echo: await echoed(s, 'over the tunnel').catch((err: Error) => err.message) };
    } finally {
      s.destroy();
    }
  };

  it('WebSocket: the app gets the upgrade and the tunnel carries bytes, inbound (plaintext, mTLS) and outbound across the mesh', async () => {
    const ways = [
      ['inbound plaintext', () => websocket(user.inboundPort, '/ws/plain')],
      ['inbound mTLS', () => websocket(user.inboundPort, '/ws/mtls', { tls: mtls })],
      ['outbound, across the mesh', () => websocket(product.outboundPort, 'http://user-service/ws/mesh')],
      // A host the mesh does not know is passed through (ALLOW_ANY), as a tunnel too.
      ['outbound passthrough', () => websocket(product.outboundPort, `http://127.0.0.1:${userApp.port}/ws/passthrough`, { host: `127.0.0.1:${userApp.port}` })],
    ] as const;
    for (const [way, open] of ways) {
      const { head, echo } = await open();
      assert.match(head, /^HTTP\/1\.1 101/, `${way}: ${head}`);
      assert.equal(echo, 'over the tunnel', way);
    }
    assert.deepEqual(upgrades, ['websocket /ws/plain', 'websocket /ws/mtls', 'websocket /ws/mesh', 'websocket /ws/passthrough']);
  });

  it('WebSocket: an upgrade to a path the inbound AuthorizationPolicy denies is 403, and the app sees none', async () => {
    const before = upgrades.length;
    assert.match((await websocket(user.inboundPort, '/admin/ws')).head, /^HTTP\/1\.1 403/);
    assert.match((await websocket(product.outboundPort, 'http://user-service/admin/ws')).head, /^HTTP\/1\.1 403/);
    assert.equal(upgrades.length, before);
  });

  it('only WebSocket upgrades by default, and h2c is served as plain HTTP/1.1: outbound, inbound plaintext and mTLS', async () => {
    for (const [port, target, tls] of [
      [product.outboundPort, 'http://user-service/up', undefined],
      [user.inboundPort, '/up', undefined],
      [user.inboundPort, '/up', mtls],
    ] as const) {
      const opts = tls ? { tls } : {};
      const refused = await rawExchange(port, `GET ${target} HTTP/1.1\r\nhost: user-service\r\nconnection: upgrade\r\nupgrade: foo\r\n\r\n`, opts);
      assert.equal(refused.status, 403, target);
      const before = userApp.seen.length;
      const h2c = await rawExchange(port, `GET ${target.replace('/up', '/h2c')} HTTP/1.1\r\nhost: user-service\r\nconnection: Upgrade, HTTP2-Settings, close\r\nupgrade: h2c\r\nhttp2-settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n`, opts);
      assert.equal(h2c.status, 200, h2c.text);
      const seen = userApp.seen.slice(before).find((e) => e.url === '/h2c');
      assert.ok(seen, 'the app got it as a plain request');
      assert.equal(seen.headers.upgrade, undefined);
      assert.equal(seen.headers['http2-settings'], undefined);
    }
  });

  it('inbound: an HTTP/2 upload the client resets mid-body never completes at the app', async () => {
    const state = new Map<string, 'started' | 'complete' | 'aborted'>();
    const track = (req: import('node:http').IncomingMessage): void => {
      if (req.url !== '/upload-abort') return;
      state.set('upload', 'started');
      req.on('end', () => state.set('upload', 'complete'));
      req.on('close', () => {
        if (state.get('upload') === 'started') state.set('upload', 'aborted');
      });
    };
    userApp.server.prependListener('request', track);
    const session = await h2Session(user.inboundPort, { ...mtls, alpn: ['istio-h2', 'h2'] });
    try {
      const stream = session.request({ ':method': 'PUT', ':path': '/upload-abort', ':authority': 'user-service', 'content-length': '100' }, { endStream: false });
      stream.on('error', () => undefined);
      stream.write('the first part of the body');
      await eventually(async () => state.get('upload') === 'started');
      stream.close(constants.NGHTTP2_CANCEL);
      await eventually(async () => state.get('upload') !== 'started');
      assert.equal(state.get('upload'), 'aborted');
    } finally {
      session.destroy();
      userApp.server.off('request', track);
    }
  });

  it('outbound: a CONNECT tunnel is a byte stream, not cut by the header or idle timeout', async () => {
    const echo = createNetServer((s) => s.pipe(s));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const echoPort = (echo.address() as AddressInfo).port;
    const tunnel = await openSocket(product.outboundPort);
    try {
      const established = new Promise<string>((resolve) => {
        let text = '';
        const onData = (b: Buffer): void => {
          text += b.toString('latin1');
          if (!text.includes('\r\n\r\n')) return;
          tunnel.off('data', onData);
          resolve(text);
        };
        tunnel.on('data', onData);
      });
      tunnel.write(`CONNECT 127.0.0.1:${echoPort} HTTP/1.1\r\nhost: 127.0.0.1:${echoPort}\r\n\r\n`);
      assert.match(await established, /^HTTP\/1\.1 200/);
      // Silent connections opened after the tunnel are closed by the header timeout, then (served
      // nothing for longer than the idle timeout) a second one: the tunnel is older than both.
      await readUntilClosed(await openSocket(product.outboundPort));
      await readUntilClosed(await openSocket(product.outboundPort));
      await readUntilClosed(await openSocket(product.outboundPort));
      const back = new Promise<string>((resolve) => {
        tunnel.once('data', (b: Buffer) => resolve(b.toString()));
        tunnel.once('close', () => resolve('(the tunnel was closed)'));
        if (tunnel.destroyed) resolve('(the tunnel was closed)');
      });
      tunnel.write('still here');
      assert.equal(await back, 'still here');
    } finally {
      tunnel.destroy();
      echo.close();
    }
  });

  it('outbound: a CONNECT tunnel carries a half-close, so a client done writing still gets the whole reply', async () => {
    // Reads until the client's FIN, then answers and closes: only works if the tunnel carries half-closes.
    const late = createNetServer({ allowHalfOpen: true }, (s) => {
      let got = '';
      s.on('data', (b: Buffer) => (got += b.toString()));
      s.on('end', () => s.end(`got ${got}`));
    });
    await new Promise<void>((resolve) => late.listen(0, '127.0.0.1', resolve));
    const port = (late.address() as AddressInfo).port;
    const tunnel = await openSocket(product.outboundPort);
    tunnel.allowHalfOpen = true;
    try {
      const established = await answerHead(tunnel, `CONNECT 127.0.0.1:${port} HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\n\r\n`);
      assert.match(established, /^HTTP\/1\.1 200/);
      const reply = readUntilClosed(tunnel);
      tunnel.end('request');
      assert.equal((await reply).text, 'got request');
    } finally {
      tunnel.destroy();
      late.close();
    }
  });
});
