// Security regressions for the accept stage and the upgrade policy at the gateway: connections that
// never finish their request headers (slowloris), or say nothing, or sit idle, are closed on
// plaintext, TLS and HTTP/2 alike — listeners hand sockets over, so node:http's own timeouts never
// ran; only the configured Upgrade protocols become tunnels, `Upgrade: h2c` is served as plain
// HTTP/1.1, and tunnels are not cut by the idle timeout.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { connect as connectH2 } from 'node:http2';
import type { RunningGateway } from '../src/gateway/main.js';
import { DEFAULT_HTTP_LIMITS } from '../src/core/proxy/http-limits.js';
import { MAX_PIPELINED_HTTP1 } from '../src/core/proxy/connection-limits.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { h2Request, h2Session, openSocket, rawExchange, readUntilClosed } from './helpers/raw-http.js';
import { startTargetGateway, type TargetGateway } from './helpers/target-config.js';
import { captureHello } from './helpers/client-hello.js';

const HOST = 'app.example.com';

/** Reads from `s` until `pattern` has been seen. */
function readUntil(s: Socket, pattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (d: Buffer): void => {
      text += d.toString('latin1');
      if (pattern.test(text)) {
        s.off('data', onData);
        resolve(text);
      }
    };
    s.on('data', onData);
    s.once('close', () => reject(new Error(`closed before ${pattern}: ${JSON.stringify(text)}`)));
  });
}

describe('accept stage: header and idle timeouts on every listener; the upgrade policy', () => {
  let app: Upstream;
  let target: TargetGateway;
  let gw: RunningGateway;
  let plain: number, tlsPort: number;
  let tls: { ca: string; servername: string };

  /** Answers to `/hold` requests, sent when a test says. */
  const held: Array<() => void> = [];

  before(async () => {
    app = await startUpstream('app', (req, res) => {
      if (req.url !== '/hold') return false;
      held.push(() => res.end('released'));
      return true;
    });
    app.server.on('upgrade', (req, socket: Socket) => {
      app.seen.push({ name: 'app', method: req.method ?? '', url: req.url ?? '', headers: req.headers, bodyBytes: 0 });
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: ${req.headers.upgrade}\r\nconnection: Upgrade\r\n\r\n`);
      socket.on('data', (d: Buffer) => socket.write(Buffer.concat([Buffer.from('echo:'), d])));
    });
    target = await startTargetGateway(app.port, { ...DEFAULT_HTTP_LIMITS, requestHeadersTimeoutMs: 400, idleTimeoutMs: 800, upgradeTypes: ['websocket', 'x-custom'] });
    ({ gw, plain, tlsPort, tls } = target);
  });

  after(async () => {
    await target?.close();
    await app?.close();
  });

  it('closes a connection that says nothing, plaintext or before its ClientHello', async () => {
    const s = await openSocket(plain);
    assert.equal((await readUntilClosed(s)).text, '');
    const t = await openSocket(tlsPort);
    assert.equal((await readUntilClosed(t)).text, '');
  });

  it('closes a TLS connection whose handshake stalls after its ClientHello', async () => {
    // The accept step bounds the handshake by the header timeout, long before node:tls's own 120 s.
    const hello = await captureHello({ servername: tls.servername, rejectUnauthorized: false });
    const s = await openSocket(tlsPort);
    s.write(hello);
    // The server answers with its flight and waits for the client's Finished, which never comes.
    const { text } = await readUntilClosed(s);
    assert.ok(text.length > 0, 'no server flight');
  });

  it('closes a TLS connection whose handshake finished but whose request never comes', async () => {
    const s = await openSocket(tlsPort, tls);
    await readUntilClosed(s);
  });

  it('answers slowloris headers with 408 and closes, on plaintext and TLS', async () => {
    for (const opts of [undefined, tls]) {
      const s = await openSocket(opts ? tlsPort : plain, opts);
      const done = readUntilClosed(s);
      s.write(`GET / HTTP/1.1\r\nhost: ${HOST}\r\n`);
      // A header line now and then, never the blank line that ends them.
      const drip = setInterval(() => s.writable && s.write('x-drip: 1\r\n'), 50);
      const answer = await done;
      clearInterval(drip);
      assert.equal(answer.status, 408, answer.text);
    }
  });

  it('after a response: a next request that never completes gets 408; a quiet keep-alive connection is closed', async () => {
    const s = await openSocket(plain);
    s.write(`GET /first HTTP/1.1\r\nhost: ${HOST}\r\n\r\n`);
    await readUntil(s, /"url":"\/first"/);
    const done = readUntilClosed(s);
    s.write(`GET /second HTTP/1.1\r\nhost: ${HOST}\r\n`);
    const drip = setInterval(() => s.writable && s.write('x-drip: 1\r\n'), 50);
    const answer = await done;
    clearInterval(drip);
    assert.equal(answer.status, 408, answer.text);

    const quiet = await openSocket(tlsPort, tls);
    quiet.write(`GET /q HTTP/1.1\r\nhost: ${HOST}\r\n\r\n`);
    await readUntil(quiet, /"url":"\/q"/);
    const closed = await readUntilClosed(quiet);
    assert.equal(closed.status, 0, 'closed without an answer');
  });

  it('HTTP/2: a session with no stream is closed, and one that goes quiet after its streams', async () => {
    const idle = await h2Session(tlsPort, tls);
    await new Promise<void>((resolve) => idle.once('close', () => resolve()));
    const used = await h2Session(tlsPort, tls);
    assert.equal((await h2Request(used, { ':path': '/h2', ':authority': HOST })).status, 200);
    const goaway = new Promise<void>((resolve) => used.once('goaway', () => resolve()));
    await new Promise<void>((resolve) => used.once('close', () => resolve()));
    await goaway;
  });

  it('h2c with prior knowledge: a stream outlives the header timeout; the session, once quiet, gets GOAWAY', { timeout: 20_000 }, async () => {
    const session = connectH2(`http://127.0.0.1:${plain}`);
    session.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => session.once('close', () => resolve())).then(() => void (sessionGone = true));
    const goaway = new Promise<void>((resolve) => session.once('goaway', () => resolve()));
    assert.equal((await h2Request(session, { ':path': '/first', ':authority': HOST })).status, 200);
    const answer = h2Request(session, { ':path': '/hold', ':authority': HOST });
    await Promise.race([eventuallyHeld(), closed]);
    assert.equal(held.length, 1, 'the session was closed before its stream reached the upstream');
    // A connection opened after the held stream began is closed by the header timeout: it has passed for the stream too.
    await readUntilClosed(await openSocket(plain));
    held.shift()!();
    const r = await answer;
    assert.equal(r.status, 200);
    assert.equal(r.body, 'released');
    await goaway;
    await closed;
  });

  /** Until the upstream holds a request. */
  let sessionGone = false;
  const eventuallyHeld = async (): Promise<void> => {
    while (held.length === 0 && !sessionGone) await new Promise((r) => setImmediate(r));
  };

  it('refuses an Upgrade protocol that is not configured (403) and tunnels one that is', async () => {
    const refused = await rawExchange(plain, `GET /ws HTTP/1.1\r\nhost: ${HOST}\r\nconnection: upgrade\r\nupgrade: spdy/3.1\r\n\r\n`);
    assert.equal(refused.status, 403, refused.text);
    const s = await openSocket(plain);
    s.write(`GET /custom HTTP/1.1\r\nhost: ${HOST}\r\nconnection: upgrade\r\nupgrade: x-custom\r\n\r\n`);
    await readUntil(s, /^HTTP\/1\.1 101 /);
    // The tunnel outlives the idle timeout: an idle connection opened now closes first.
    const idle = await openSocket(plain);
    await readUntilClosed(idle);
    s.write('ping');
    assert.match(await readUntil(s, /echo:ping/), /echo:ping/);
    s.destroy();
  });

  it('an upgrade to a path a route denies is denied before any 101', async () => {
    const r = await rawExchange(plain, `GET /user/admin#x HTTP/1.1\r\nhost: ${HOST}\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
    assert.equal(r.status, 403);
    assert.deepEqual(r.statuses, [403]);
  });

  it('serves Upgrade: h2c as plain HTTP/1.1: headers stripped, no tunnel, body and keep-alive intact', async () => {
    for (const opts of [undefined, tls]) {
      const before = app.seen.length;
      const h2c = 'connection: Upgrade, HTTP2-Settings\r\nupgrade: h2c\r\nhttp2-settings: AAMAAABkAARAAAAAAAIAAAAA\r\n';
      const r = await rawExchange(
        opts ? tlsPort : plain,
        `POST /h2c HTTP/1.1\r\nhost: ${HOST}\r\n${h2c}content-length: 5\r\n\r\nhello` + `GET /after HTTP/1.1\r\nhost: ${HOST}\r\nconnection: close\r\n\r\n`,
        opts ? { tls: opts } : {},
      );
      assert.deepEqual(r.statuses, [200, 200], r.text);
      // Pipelined: the two may reach the app in either order.
      const seen = app.seen.slice(before).sort((a, b) => a.url.localeCompare(b.url));
      assert.deepEqual(
        seen.map((e) => [e.method, e.url, e.bodyBytes]),
        [
          ['GET', '/after', 0],
          ['POST', '/h2c', 5],
        ],
      );
      assert.equal(seen[1]!.headers.upgrade, undefined);
      assert.equal(seen[1]!.headers['http2-settings'], undefined);
      // A route that denies still denies.
      const denied = await rawExchange(plain, `GET /user/admin HTTP/1.1\r\nhost: ${HOST}\r\n${h2c}connection: close\r\n\r\n`);
      assert.equal(denied.status, 403);
    }
  });
});


describe('stream idle timeout: a request in flight that moves no byte is cut', () => {
  let app: Upstream;
  let target: TargetGateway;

  /** Answers to `/hold` requests, sent when a test says. */
  const held: Array<() => void> = [];

  before(async () => {
    app = await startUpstream('app', (req, res) => {
      if (req.url !== '/hold') return false;
      held.push(() => res.end('released'));
      return true;
    });
    target = await startTargetGateway(app.port, { ...DEFAULT_HTTP_LIMITS, streamIdleTimeoutMs: 1500 });
  });

  after(async () => {
    await target?.close();
    await app?.close();
  });

  it('closes a connection whose upload stalls after its headers, plaintext and TLS', async () => {
    for (const opts of [undefined, target.tls]) {
      const s = await openSocket(opts ? target.tlsPort : target.plain, opts);
      const done = readUntilClosed(s);
      s.write(`POST /upload HTTP/1.1\r\nhost: ${HOST}\r\ncontent-length: 100\r\n\r\n0123456789`);
      const answer = await done;
      assert.equal(answer.text, '', 'no answer: the connection is cut');
    }
  });

  it('keeps an upload that keeps moving, however long it takes', async () => {
    const s = await openSocket(target.plain);
    const answer = readUntil(s, /\r\n\r\n/);
    s.write(`POST /upload HTTP/1.1\r\nhost: ${HOST}\r\ncontent-length: 30\r\n\r\n`);
    let sent = 0;
    // A byte every 100 ms: 3 s in all, twice the timeout, never 1.5 s without one.
    await new Promise<void>((resolve) => {
      const drip = setInterval(() => {
        s.write('x');
        if (++sent === 30) {
          clearInterval(drip);
          resolve();
        }
      }, 100);
    });
    assert.match(await answer, /^HTTP\/1\.1 200 /);
    s.destroy();
  });
});

describe('HTTP/1 pipelining: served in order, but not without bound', () => {
  let app: Upstream;
  let target: TargetGateway;

  /** Answers to `/hold` requests, sent when a test says. */
  const held: Array<() => void> = [];

  before(async () => {
    app = await startUpstream('app', (req, res) => {
      if (req.url !== '/hold') return false;
      held.push(() => res.end('released'));
      return true;
    });
    target = await startTargetGateway(app.port, DEFAULT_HTTP_LIMITS);
  });

  after(async () => {
    await target?.close();
    await app?.close();
  });

  const requests = (n: number, last = 'keep-alive'): string =>
    Array.from({ length: n }, (_, i) => `GET /p/${i} HTTP/1.1\r\nhost: ${HOST}\r\nconnection: ${i === n - 1 ? last : 'keep-alive'}\r\n\r\n`).join('');

  it('answers a few pipelined requests, each in its turn', async () => {
    const s = await openSocket(target.plain);
    const done = readUntilClosed(s);
    s.write(requests(10, 'close'));
    const answer = await done;
    assert.equal(answer.text.match(/HTTP\/1\.1 200 /g)?.length, 10, answer.text.slice(0, 300));
  });

  it(`closes a connection that pipelines more than ${MAX_PIPELINED_HTTP1} requests without reading the answers`, async () => {
    const s = await openSocket(target.plain);
    const done = readUntilClosed(s);
    s.write(requests(2000));
    const answer = await done;
    assert.ok((answer.text.match(/HTTP\/1\.1 200 /g)?.length ?? 0) < 2000, 'not every request was taken');
  });
});
