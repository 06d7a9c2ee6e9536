// Graceful drain, in process on real sockets: readiness fails at once and requests keep being served
// through the drain period; HTTP/1 responses then close their connection and idle keep-alive
// connections are closed with a FIN; every HTTP/2 session is told with a GOAWAY that still admits its
// streams, new sessions are served too; a request in flight when listeners close still completes, and
// afterwards nothing listens. (test/drain-processes.test.ts does the same to processes under SIGTERM.)

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect as http2Connect, type ClientHttp2Session } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { request } from 'undici';
import { startGateway, type RunningGateway } from '../src/gateway/main.js';
import { GATEWAY_HELP, runGatewayCommand } from '../src/cli/gateway.js';
import { SIDECAR_HELP, runSidecarCommand } from '../src/cli/sidecar.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { APP_HOST, writeEdgeConfig, type EdgeConfig } from './helpers/edge-config.js';
import { Http1Connection } from './helpers/raw-clients.js';

/** The last stream id of the GOAWAY that announces a shutdown without refusing anything. */
const NOTICE = 2 ** 31 - 1;

describe('gateway drain', () => {
  let dir: string;
  let app: Upstream;
  let edge: EdgeConfig;
  /** /hold/* requests wait here until released. */
  const held = new Map<string, () => void>();
  const running: RunningGateway[] = [];

  before(async () => {
    app = await startUpstream('app', (req, res, echo) => {
      if (!req.url?.startsWith('/hold/')) return false;
      held.set(req.url, () => res.end(JSON.stringify(echo)));
      return true;
    });
    dir = await mkdtemp(join(tmpdir(), 'meshgate-drain-'));
    edge = await writeEdgeConfig(dir, app.port);
  });
  after(async () => {
    await Promise.all(running.map((g) => g.destroy()));
    await app.close();
    await rm(dir, { recursive: true, force: true });
  });

  const startEdge = async () => {
    const gw = await startGateway({
      configDir: edge.configDir,
      certsDir: edge.certsDir,
      ports: new Map([[80, 0], [443, 0]]),
      listenHost: '127.0.0.1',
      statusPort: 0,
      adminPort: 0,
      accessLog: 'off',
      logger: pino({ level: 'silent' }),
    });
    running.push(gw);
    const ready = async () => {
      const r = await request(`http://127.0.0.1:${gw.statusPort}/healthz/ready`);
      await r.body.dump();
      return r.statusCode;
    };
    return { gw, http: gw.listenPorts.get(80)!, https: gw.listenPorts.get(443)!, ready };
  };
  const tls = { servername: APP_HOST, get ca() { return edge.caPem; } };
  const heldReached = async (path: string) => {
    while (!held.has(path)) await new Promise((r) => setTimeout(r, 10));
  };

  it('fails readiness at once, keeps serving, and an in-flight request finishes after listeners close', async () => {
    const { gw, http, ready } = await startEdge();
    assert.equal(await ready(), 200);
    const conn = await Http1Connection.open(http);
    const inFlight = conn.get(APP_HOST, '/hold/in-flight');
    await heldReached('/hold/in-flight');
    const drained = gw.drain(0.2);
    assert.equal(await ready(), 503);
    const during = await (await Http1Connection.open(http)).get(APP_HOST, '/during');
    assert.equal(during.status, 200);
    // The drain period ends while the request is still held: the listener closes, the request goes on.
    while ((await Http1Connection.open(http).then((c) => (c.close(), true), () => false))) await new Promise((r) => setTimeout(r, 20));
    held.get('/hold/in-flight')!();
    const r = await inFlight;
    assert.equal(r.status, 200);
    assert.equal(r.headers.connection, 'close', 'a response written during the drain closes its connection');
    await drained;
    assert.equal(await conn.ended, 'fin');
    await assert.rejects(Http1Connection.open(http));
  });

  it('HTTP/1: closes idle keep-alive connections with a FIN, answers the others with Connection: close', async () => {
    const { gw, http, ready } = await startEdge();
    const idle = await Http1Connection.open(http);
    const busy = await Http1Connection.open(http);
    const first = await idle.get(APP_HOST, '/before');
    assert.equal(first.status, 200);
    assert.equal(first.headers.connection, 'keep-alive');
    const slow = busy.get(APP_HOST, '/hold/busy');
    await heldReached('/hold/busy');

    void gw.drain(60);
    // The idle connection goes early in the drain period, while the gateway still serves.
    assert.equal(await idle.ended, 'fin');
    assert.equal(await ready(), 503);
    held.get('/hold/busy')!();
    const answered = await slow;
    assert.equal(answered.status, 200);
    assert.equal(answered.headers.connection, 'close', 'answered during the drain, though asked before it');
    assert.equal(await busy.ended, 'fin');

    // A client the load balancer still sends here is served, and told to go elsewhere next time.
    const fresh = await Http1Connection.open(http);
    const r = await fresh.get(APP_HOST, '/new-connection');
    assert.equal(r.status, 200);
    assert.equal(r.headers.connection, 'close');
    assert.equal(await fresh.ended, 'fin');
  });

  it('HTTP/2: every session gets a GOAWAY that refuses nothing, and new sessions are served', async () => {
    const { gw, https } = await startEdge();
    const h2get = (session: ClientHttp2Session, path: string) =>
      new Promise<number>((resolve, reject) => {
        const s = session.request({ ':path': path, ':authority': APP_HOST });
        let status = 0;
        s.on('response', (h) => (status = Number(h[':status'])));
        s.on('error', reject);
        s.resume();
        s.on('end', () => resolve(status));
      });
    const goaway = (session: ClientHttp2Session) => new Promise<number>((r) => session.once('goaway', (_code, last) => r(last)));
    const idle = http2Connect(`https://127.0.0.1:${https}`, tls);
    const busy = http2Connect(`https://127.0.0.1:${https}`, tls);
    assert.equal(await h2get(idle, '/before'), 200);
    const held2 = h2get(busy, '/hold/h2');
    await heldReached('/hold/h2');
    const idleTold = goaway(idle);
    const busyTold = goaway(busy);

    void gw.drain(60);
    assert.equal(await idleTold, NOTICE);
    assert.equal(await busyTold, NOTICE);
    // The stream that was open goes on to the end.
    held.get('/hold/h2')!();
    assert.equal(await held2, 200);
    // A new session during the drain is served; once used, it is told too.
    const fresh = http2Connect(`https://127.0.0.1:${https}`, tls);
    const freshTold = goaway(fresh);
    assert.equal(await h2get(fresh, '/during'), 200);
    assert.equal(await freshTold, NOTICE);
    // HTTP/1 over TLS on the same port: Connection: close.
    const h1 = await Http1Connection.open(https, tls);
    const r = await h1.get(APP_HOST, '/during-h1');
    assert.equal(r.status, 200);
    assert.equal(r.headers.connection, 'close');
    for (const s of [idle, busy, fresh]) s.destroy();
    h1.close();
  });

  it('refuses drain flags it cannot keep, before starting anything', async () => {
    await assert.rejects(runGatewayCommand(['--config', 'x', '--drain-seconds', '30']), /--drain-seconds 30 is longer than --drain-deadline-seconds 25 \(its default\)/);
    await assert.rejects(runGatewayCommand(['--config', 'x', '--drain-deadline-seconds', 'soon']), /--drain-deadline-seconds: 'soon' is not a number of seconds/);
    const sidecar = ['--control', 'https://127.0.0.1:1', '--token', 't', '--namespace', 'n', '--service-account', 's', '--workload', 'w', '--app-port', '1'];
    await assert.rejects(runSidecarCommand([...sidecar, '--drain-seconds', '10', '--drain-deadline-seconds', '8']), /--drain-seconds 10 is longer than --drain-deadline-seconds 8:/);
    for (const help of [GATEWAY_HELP, SIDECAR_HELP]) assert.match(help, /--drain-deadline-seconds N\n.*exit at the latest N seconds after SIGTERM/);
  });
});
