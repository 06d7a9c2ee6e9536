// SIGTERM to real processes, the way Kubernetes stops a pod: an idle HTTP/2 client is told with a
// GOAWAY and the gateway still exits; WebSocket and TCP connections keep working through the drain
// and are closed at the deadline; a load run of HTTP/1 and HTTP/2 on keep-alive connections across a
// rolling restart (a second gateway takes over) fails no request; a sidecar fails readiness at once
// and serves its in-flight requests, inbound and outbound, to the end.
//
// The load clients behave as clients in front of a rolling restart do, and no more: the next request
// goes on a new connection, to where the load balancer points now, after `Connection: close` or a
// GOAWAY; a request is never retried after a reset.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect as http2Connect, type ClientHttp2Session } from 'node:http2';
import { connect as netConnect, createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { loadOrCreateAuthority } from '../src/core/pki/authority.js';
import { meshAlpn } from '../src/core/tls/upstream-connector.js';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { APP_HOST, writeEdgeConfig, type EdgeConfig } from './helpers/edge-config.js';
import { eventually } from './helpers/gateway.js';
import { workloadCertificate } from './helpers/mesh.js';
import { exited, meshgate, ready, type MeshgateProcess } from './helpers/processes.js';
import { Http1Connection, IdleH2Client } from './helpers/raw-clients.js';
import { echoed } from './helpers/raw-http.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

const NOTICE = 2 ** 31 - 1;

interface EdgePorts {
  readonly http: number;
  readonly https: number;
  readonly tcp: number;
  readonly status: number;
}

/** The gateway on ports it binds itself (port 0), read from its `gateway serving` line. */
async function startEdgeGateway(edge: EdgeConfig, drain: string[], track: (c: MeshgateProcess) => MeshgateProcess): Promise<{ proc: MeshgateProcess; ports: EdgePorts }> {
  const proc = track(meshgate([
    'gateway', '--config', edge.configDir, '--certs', edge.certsDir,
    '--ports', '80=0,443=0,9000=0',
    '--status-port', '0', '--admin-port', '0', '--listen-host', '127.0.0.1',
    '--access-log', 'off', '--metrics-port', '0', '--workers', '1', ...drain,
  ]));
  const line = await proc.serving();
  const listen = line.ports as Record<string, number>;
  return { proc, ports: { http: Number(listen['80']), https: Number(listen['443']), tcp: Number(listen['9000']), status: Number(line.statusPort) } };
}

/** Nothing accepts connections on `port` any more. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(false)));
    s.once('error', () => resolve(true));
  });
}

type H2Result = { status: number } | { notSent: true } | { error: string; code?: string };

/** One GET on an HTTP/2 session; `notSent` when the session took no new stream (after a GOAWAY). */
function h2get(session: ClientHttp2Session, path: string): Promise<H2Result> {
  return new Promise((resolve) => {
    let stream;
    try {
      stream = session.request({ ':path': path, ':authority': APP_HOST });
    } catch {
      return resolve({ notSent: true });
    }
    let status = 0;
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.message, ...(e.code ? { code: e.code } : {}) }));
    stream.resume();
    stream.on('end', () => resolve({ status }));
  });
}

describe('drain of processes under SIGTERM', () => {
  let dir: string;
  let app: Upstream;
  let echo: NetServer;
  let edge: EdgeConfig;
  const children: MeshgateProcess[] = [];
  const spawned = (c: MeshgateProcess) => (children.push(c), c);
  /** /hold/* requests wait here until released. */
  const held = new Map<string, () => void>();

  before(async () => {
    app = await startUpstream('app', (req, res, e) => {
      if (!req.url?.includes('/hold/')) return false;
      held.set(req.url.slice(req.url.indexOf('/hold/')), () => res.end(JSON.stringify(e)));
      return true;
    });
    // The WebSocket endpoint: 101, then every byte back.
    app.server.on('upgrade', (_req, socket: Socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n');
      socket.pipe(socket);
    });
    echo = createNetServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    dir = await mkdtemp(join(tmpdir(), 'meshgate-drain-proc-'));
    edge = await writeEdgeConfig(dir, app.port, { tcpEchoPort: (echo.address() as { port: number }).port });
  });
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await Promise.all(children.map((c) => exited(c)));
    await app.close();
    echo.close();
    await rm(dir, { recursive: true, force: true });
  });
  const tls = () => ({ servername: APP_HOST, ca: edge.caPem });
  const heldReached = (path: string) => eventually(async () => held.has(path));

  it('an idle HTTP/2 client gets GOAWAY at drain start, the final one later, and the gateway exits', async () => {
    const { proc: gw, ports } = await startEdgeGateway(edge, ['--drain-seconds', '1'], spawned);
    await eventually(() => ready(ports.status), 60_000);
    const client = await IdleH2Client.open(ports.https, tls());
    gw.kill('SIGTERM');
    const [notice] = await client.goawaysReceived(1);
    assert.deepEqual(notice, { lastStreamId: NOTICE, errorCode: 0 }, 'the shutdown notice refuses no stream');
    // The client never leaves on its own: the gateway closes the session when the drain period ends.
    await client.closed;
    assert.deepEqual(client.goaways[1], { lastStreamId: 0, errorCode: 0 }, 'the final GOAWAY names the last stream processed');
    assert.equal(await exited(gw), 0, gw.log());
  });

  it('WebSocket and TCP connections keep working while draining, are closed at the deadline, and the gateway exits', async () => {
    const { proc: gw, ports } = await startEdgeGateway(edge, ['--drain-seconds', '2', '--drain-deadline-seconds', '6'], spawned);
    await eventually(() => ready(ports.status), 60_000);
    const ws = netConnect({ host: '127.0.0.1', port: ports.http });
    await new Promise((r) => ws.once('connect', r));
    const switched = await echoed(ws, `GET /ws HTTP/1.1\r\nhost: ${APP_HOST}\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n`, '\r\n\r\n');
    assert.match(switched, /^HTTP\/1\.1 101/);
    const tcp = netConnect({ host: '127.0.0.1', port: ports.tcp });
    assert.equal(await echoed(tcp, 'tcp-before'), 'tcp-before');
    const closedBy = (s: Socket) => new Promise<boolean>((r) => s.once('close', () => r(true)));
    const wsClosed = closedBy(ws);
    const tcpClosed = closedBy(tcp);

    gw.kill('SIGTERM');
    await eventually(async () => !(await ready(ports.status)));
    // Draining: the long-lived connections still carry bytes.
    assert.equal(await echoed(ws, 'ws-during'), 'ws-during');
    assert.equal(await echoed(tcp, 'tcp-during'), 'tcp-during');
    // Neither side ends them; the deadline does, and the process exits on its own.
    assert.ok(await wsClosed);
    assert.ok(await tcpClosed);
    assert.equal(await exited(gw), 0, gw.log());
  });

  it('a load run across SIGTERM, with a second gateway taking over, fails no request', async (t) => {
    const [{ proc: a, ports: portsA }, { proc: b, ports: portsB }] = await Promise.all([startEdgeGateway(edge, ['--drain-seconds', '6'], spawned), startEdgeGateway(edge, [], spawned)]);
    await eventually(async () => (await ready(portsA.status)) && (await ready(portsB.status)), 60_000);

    // Where the load balancer sends new connections: the old gateway, until its endpoint is removed.
    let target = portsA;
    let stop = false;
    const failures: string[] = [];
    const served = new Map<number, number>(); // per gateway's status port
    let connectionClose = 0;
    let goaways = 0;
    const count = (ports: EdgePorts) => served.set(ports.status, (served.get(ports.status) ?? 0) + 1);
    const total = () => [...served.values()].reduce((x, y) => x + y, 0);

    const http1Client = async () => {
      let conn: Http1Connection | undefined;
      let at = target;
      while (!stop) {
        if (!conn?.open) {
          at = target;
          conn = await Http1Connection.open(at.http).catch((e: Error) => (failures.push(`h1 connect: ${e.message}`), undefined));
          if (!conn) continue;
        }
        try {
          const r = await conn.get(APP_HOST, '/load');
          if (r.status !== 200) failures.push(`h1 ${r.status}`);
          else count(at);
          if (r.headers.connection === 'close') {
            connectionClose++;
            conn = undefined;
          }
        } catch (e) {
          failures.push(`h1 ${(e as Error).message}`);
          conn = undefined;
        }
      }
      conn?.close();
    };

    let session: { s: ClientHttp2Session; at: EdgePorts; told: boolean } | undefined;
    const currentSession = () => {
      if (!session || session.told || session.s.closed || session.s.destroyed) {
        const s = http2Connect(`https://127.0.0.1:${target.https}`, tls());
        const entry = { s, at: target, told: false };
        s.on('goaway', () => {
          goaways++;
          entry.told = true;
        });
        s.on('error', (e) => failures.push(`h2 session: ${e.message}`));
        session = entry;
      }
      return session;
    };
    let refusedAfterGoaway = 0;
    const http2Stream = async () => {
      while (!stop) {
        const entry = currentSession();
        const { s, at } = entry;
        const r = await h2get(s, '/load');
        if ('notSent' in r) continue; // the session had been told to go away: the next one takes it
        // A stream the GOAWAY kept from being sent (or from being processed) is refused: HTTP/2 says
        // it was never acted on, and a client sends it again on its next connection.
        if ('error' in r && entry.told && /REFUSED_STREAM/.test(r.error)) {
          refusedAfterGoaway++;
          continue;
        }
        if ('error' in r) failures.push(`h2 ${r.code ?? ''} ${r.error}`);
        else if (r.status !== 200) failures.push(`h2 ${r.status}`);
        else count(at);
      }
    };

    const load = Promise.all([...Array.from({ length: 3 }, http1Client), ...Array.from({ length: 3 }, http2Stream)]);
    try {
      await eventually(async () => total() >= 100, 30_000);
      a.kill('SIGTERM');
      await eventually(async () => !(await ready(portsA.status)));
      // The endpoint removal takes a while to reach the load balancer: new connections still land on A.
      const atRemoval = served.get(portsA.status) ?? 0;
      await eventually(async () => (served.get(portsA.status) ?? 0) >= atRemoval + 30);
      target = portsB;
      assert.equal(await exited(a), 0, a.log());
      await eventually(async () => (served.get(portsB.status) ?? 0) >= 100 && total() >= 400, 30_000);
    } finally {
      stop = true;
      await load;
      session?.s.close();
    }
    assert.deepEqual(failures, [], `${failures.length} of ${total() + failures.length} requests failed`);
    assert.ok(connectionClose > 0 && goaways > 0, `clients were told to move: ${connectionClose} Connection: close, ${goaways} GOAWAY`);
    // Seen in the report of a run: how much moved, and how much HTTP/2 had to send again.
    t.diagnostic(`load: ${total()} served (${served.get(portsA.status)} by the old gateway), ${connectionClose} Connection: close, ${goaways} GOAWAY, ${refusedAfterGoaway} streams refused after a GOAWAY and sent again`);
    b.kill('SIGTERM');
    assert.equal(await exited(b), 0, b.log());
  });

  it('a sidecar fails readiness at once and serves its in-flight requests, inbound and outbound, to the end', async () => {
    const mesh = join(dir, 'mesh');
    await mkdir(join(mesh, 'config'), { recursive: true });
    await writeFile(join(mesh, 'tokens.yaml'), '- {token: tok-user, namespace: default, serviceAccount: user-service}\n');
    await writeFile(join(mesh, 'user.token'), 'tok-user\n');
    const caDir = join(mesh, 'ca');
    // Each process binds port 0 and names the ports it got in its `… serving` line.
    const control = spawned(meshgate(['control', '--config', join(mesh, 'config'), '--tokens', join(mesh, 'tokens.yaml'), '--ca-dir', caDir, '--port', '0', '--status-port', '0', '--debug-port', '0', '--listen-host', '127.0.0.1']));
    const cp = await control.serving();
    await eventually(() => ready(Number(cp.statusPort)), 60_000);
    const sidecar = spawned(meshgate([
      'sidecar', '--control', `https://127.0.0.1:${Number(cp.port)}`, '--root-cert', join(caDir, 'root-cert.pem'), '--token', join(mesh, 'user.token'),
      '--namespace', 'default', '--service-account', 'user-service', '--workload', 'user-0', '--labels', 'app=user-service',
      '--app-port', String(app.port), '--inbound-port', '0', '--outbound-port', '0',
      '--status-port', '0', '--admin-port', '0', '--listen-host', '127.0.0.1', '--access-log', 'off', '--metrics-port', '0', '--drain-seconds', '4',
    ]));
    const sc = await sidecar.serving();
    const ports = { inbound: Number(sc.inbound), outbound: Number(sc.outbound), status: Number(sc.status) };
    await writeFile(join(mesh, 'config', 'svc.yaml'), serviceYaml('user-service', [{ pod: 'user-0', port: ports.inbound, serviceAccount: 'user-service' }]));
    await eventually(() => ready(ports.status), 60_000);

    // A mesh peer calls in over mutual TLS and HTTP/2; the app calls out through its proxy.
    const authority = loadOrCreateAuthority(caDir);
    assert.ok(authority.ok);
    const peer = workloadCertificate(authority.ca, 'default', 'caller');
    // A mesh peer offers Istio's ALPN first: PERMISSIVE passes other TLS through to the app untouched.
    // (node:http2 would replace ALPNProtocols with its own ['h2'], so the connection is made here.)
    const inboundTls = { host: '127.0.0.1', port: ports.inbound, cert: peer.certChainPem, key: peer.keyPem, ca: peer.rootCertPem, checkServerIdentity: () => undefined, ALPNProtocols: meshAlpn(['h2']) };
    const inSession = http2Connect(`https://127.0.0.1:${ports.inbound}`, { createConnection: () => tlsConnect(inboundTls) });
    inSession.on('error', () => undefined);
    const inboundGoaway = new Promise<number>((r) => inSession.once('goaway', (_c, last) => r(last)));
    const inFlightIn = h2get(inSession, '/hold/inbound');
    const outConn = await Http1Connection.open(ports.outbound);
    const appAuthority = `127.0.0.1:${app.port}`;
    const inFlightOut = outConn.get(appAuthority, `http://${appAuthority}/hold/outbound`);
    await heldReached('/hold/inbound');
    await heldReached('/hold/outbound');

    sidecar.kill('SIGTERM');
    await eventually(async () => !(await ready(ports.status)));
    assert.equal(await inboundGoaway, NOTICE);
    // New requests are still served while the endpoint removal spreads.
    const during = await (await Http1Connection.open(ports.outbound)).get(appAuthority, `http://${appAuthority}/during`);
    assert.equal(during.status, 200);
    assert.equal(during.headers.connection, 'close');
    // The drain period ends, the listeners close; the held requests are still being answered.
    await eventually(async () => (await refused(ports.inbound)) && (await refused(ports.outbound)));
    held.get('/hold/inbound')!();
    held.get('/hold/outbound')!();
    assert.deepEqual(await inFlightIn, { status: 200 });
    const out = await inFlightOut;
    assert.equal(out.status, 200);
    assert.equal(JSON.parse(out.body).url, '/hold/outbound');
    assert.equal(await exited(sidecar), 0, sidecar.log());
    inSession.destroy();
    control.kill('SIGTERM');
    await exited(control);
  });
});
