// Security probes of a gateway's plaintext port over HTTP/2 with prior knowledge (h2c) and of upgrade
// requests, each compared with what Istio's Envoy does, with an upstream that records every byte it
// is sent (so "nothing reached it" is checked on the wire): CONNECT and extended CONNECT over h2c,
// `:path` values that are not origin-form or start with `//`, `:authority` and `host` that disagree
// or a `host` without `:authority` (the one that routes is the one the policy's `hosts` and the
// upstream see), header names and connection-specific headers node:http2 refuses, WebSocket upgrades
// against `requestPrincipals`, `notMethods` and `hosts`, or with a body, `Upgrade: h2c` beside `websocket`, HTTP/1.0
// without Host, and which path reaches the upstream after normalization. The h2c ones again at a
// sidecar's inbound side (PERMISSIVE: plaintext is admitted), which takes requests the same way.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { eventually, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { FileSource } from '../src/core/sources/file-source.js';
import { startSidecar, type RunningSidecar } from '../src/sidecar/main.js';
import { fixedIdentity, testAuthority, untilSnapshot } from './helpers/mesh.js';
import { authorizationPolicy, gatewayYaml, requestAuthentication, serviceYaml } from './helpers/cluster-yaml.js';
import { startRawUpstream, type RawUpstream } from './helpers/raw-upstream.js';
import { h2Request, rawExchange } from './helpers/raw-http.js';
import { Flag, FrameType, frame, headerBlock, RawH2, responseStatus, type SeenFrame } from './helpers/h2-frames.js';

const GATEWAY = '{matchLabels: {istio: ingressgateway}}';
const APP = 'app.example.com';
const INTERNAL = 'internal.example.com';
const ISS = 'https://issuer.example';
const WS = 'upgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n';

/** What `send` got back, and the request lines and Host values that reached the upstream meanwhile. */
async function onWire<T>(upstream: RawUpstream, send: () => Promise<T>): Promise<{ answer: T; lines: string[]; hosts: string[] }> {
  const mark = upstream.mark();
  const answer = await send();
  const seen = upstream.since(mark);
  return { answer, lines: seen.requestLines, hosts: [...seen.bytes.matchAll(/\r\nhost: ([^\r]*)/gi)].map((m) => m[1]!) };
}

/** One h2c stream of raw header fields to `port`: its status, or 'reset'; and the server's SETTINGS. */
async function h2cStream(port: number, fields: ReadonlyArray<readonly [string, string]>): Promise<{ status: number | 'reset' | 'closed'; settings: Buffer }> {
  const c = await RawH2.open(port);
  try {
    c.send(frame(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, headerBlock(fields)));
    const answered = (f: SeenFrame) => f.type === FrameType.RST_STREAM || f.type === FrameType.HEADERS;
    await c.until(() => c.on(1).some(answered) || c.frames.some((f) => f.type === FrameType.GOAWAY));
    const f = c.on(1).find(answered);
    const settings = c.frames.find((s) => s.type === FrameType.SETTINGS && (s.flags & Flag.ACK) === 0);
    return { status: f === undefined ? 'closed' : f.type === FrameType.RST_STREAM ? 'reset' : responseStatus(f), settings: settings?.payload ?? Buffer.alloc(0) };
  } finally {
    c.close();
  }
}

const get = (path: string, authority: string | null, extra: Array<[string, string]> = []): Array<[string, string]> => [
  [':method', 'GET'],
  [':scheme', 'http'],
  [':path', path],
  ...(authority === null ? [] : ([[':authority', authority]] as Array<[string, string]>)),
  ...extra,
];

describe('h2c and upgrade probes at a gateway (DENY /private, host internal.example.com, /ws-secure without a token, /post-only but POST)', () => {
  let upstream: RawUpstream;
  let gw: TestGateway;
  let token: string;

  before(async () => {
    const keys = await generateKeyPair('RS256', { extractable: true });
    const jwk = { ...(await exportJWK(keys.publicKey)), kid: 'k1', alg: 'RS256' };
    token = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setIssuer(ISS).setSubject('alice').setExpirationTime('10m').sign(keys.privateKey);
    upstream = await startRawUpstream();
    gw = await startTestGateway({
      'gateway.yaml': gatewayYaml(['*']),
      'services.yaml': serviceYaml('app', [{ pod: 'app-1', port: upstream.port }]),
      'routes.yaml': `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app, namespace: default}
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
  - route: [{destination: {host: app}}]
`,
      'jwt.yaml': requestAuthentication('jwt', 'istio-system', GATEWAY, `  - issuer: ${ISS}\n    jwks: '${JSON.stringify({ keys: [jwk] })}'`),
      'deny.yaml': authorizationPolicy('deny', 'istio-system', GATEWAY, `  action: DENY
  rules:
  - to: [{operation: {paths: [/private, /private/*]}}]
  - to: [{operation: {hosts: [${INTERNAL}, "${INTERNAL}:*"]}}]
  - to: [{operation: {paths: ["/ws-secure*"]}}]
    from: [{source: {notRequestPrincipals: ["*"]}}]
  - to: [{operation: {paths: ["/post-only*"], notMethods: [POST]}}]`),
    });
  });
  after(async () => {
    await gw?.close();
    await upstream?.close();
  });

  /** One HTTP/1 exchange (the request should end the connection): the status line. */
  const h1 = (request: string) => onWire(upstream, async () => (await rawExchange(gw.port, request)).text.split('\r\n')[0]!);
  const h2 = (fields: ReadonlyArray<readonly [string, string]>) => onWire(upstream, () => h2cStream(gw.port, fields));

  it('CONNECT over h2c meets AuthorizationPolicy, then 404, as over TLS (was 405 from node:http2, before any policy or log)', async () => {
    const denied = await h2([[':method', 'CONNECT'], [':authority', `${INTERNAL}:443`]]);
    assert.equal(denied.answer.status, 403);
    const allowed = await h2([[':method', 'CONNECT'], [':authority', `${APP}:443`]]);
    assert.equal(allowed.answer.status, 404);
    assert.deepEqual([...denied.lines, ...allowed.lines], []);
    // The same through node's own client, whose CONNECT is what a real h2c client sends.
    const session = connect(`http://127.0.0.1:${gw.port}`);
    try {
      assert.equal((await h2Request(session, { ':method': 'CONNECT', ':authority': `${INTERNAL}:443` })).status, 403);
    } finally {
      session.destroy();
    }
  });

  it('extended CONNECT (`:protocol: websocket`) is reset: no SETTINGS_ENABLE_CONNECT_PROTOCOL is offered, as Istio enables none', async () => {
    for (const path of ['/private', '/ok']) {
      const r = await h2([[':method', 'CONNECT'], [':protocol', 'websocket'], [':scheme', 'http'], [':path', path], [':authority', APP]]);
      assert.equal(r.answer.status, 'reset', path);
      assert.deepEqual(r.lines, [], path);
      for (let i = 0; i + 6 <= r.answer.settings.length; i += 6) assert.notEqual(r.answer.settings.readUInt16BE(i), 0x8, 'SETTINGS_ENABLE_CONNECT_PROTOCOL');
    }
  });

  it('`:path` not in origin-form (`admin`, `*`, absolute) is reset; `//host/private` is a path, never an authority', async () => {
    for (const path of ['admin', '*', `http://${INTERNAL}/ok`]) {
      const r = await h2(get(path, APP));
      assert.deepEqual([r.answer.status, r.lines], ['reset', []], path);
    }
    const r = await h2(get(`//${INTERNAL}/private`, APP));
    assert.deepEqual([r.answer.status, r.lines, r.hosts], [200, [`GET //${INTERNAL}/private HTTP/1.1`], [APP]]);
    const frag = await h2(get('/private#x', APP));
    assert.deepEqual([frag.answer.status, frag.lines], [403, []], 'the fragment is cut before the policy reads the path');
  });

  it('`:authority` routes and is what `hosts` and the upstream see; `host` counts only without `:authority`', async () => {
    const both = await h2(get('/ok', APP, [['host', INTERNAL]]));
    assert.deepEqual([both.answer.status, both.hosts], [200, [APP]], 'the upstream never sees the other host');
    assert.equal((await h2(get('/ok', INTERNAL, [['host', APP]]))).answer.status, 403);
    const hostOnly = await h2(get('/ok', null, [['host', INTERNAL]]));
    assert.deepEqual([hostOnly.answer.status, hostOnly.lines], [403, []]);
    assert.equal((await h2(get('/ok', null))).answer.status, 'reset', 'no authority at all');
  });

  it('upper-case names and connection-specific headers are reset; `te: trailers` is served', async () => {
    const refused: Array<[string, string]> = [['X-Upper', '1'], ['connection', 'close'], ['keep-alive', '1'], ['proxy-connection', 'x'], ['transfer-encoding', 'chunked'], ['upgrade', 'websocket'], ['te', 'gzip']];
    for (const field of refused) {
      const r = await h2(get('/ok', APP, [field]));
      assert.deepEqual([r.answer.status, r.lines], ['reset', []], field[0]);
    }
    assert.equal((await h2(get('/ok', APP, [['te', 'trailers']]))).answer.status, 200);
  });

  it('a WebSocket upgrade meets requestPrincipals: no token 403; a verified token (header or access_token) goes on', async () => {
    const none = await h1(`GET /ws-secure HTTP/1.1\r\nhost: ${APP}\r\n${WS}\r\n`);
    assert.deepEqual([none.answer, none.lines], ['HTTP/1.1 403 Forbidden', []]);
    const forged = await h1(`GET /ws-secure HTTP/1.1\r\nhost: ${APP}\r\nauthorization: Bearer ${token.slice(0, -4)}AAAA\r\n${WS}\r\n`);
    assert.deepEqual([forged.answer, forged.lines], ['HTTP/1.1 401 Unauthorized', []]);
    const header = await h1(`GET /ws-secure HTTP/1.1\r\nhost: ${APP}\r\nauthorization: Bearer ${token}\r\n${WS}\r\n`);
    assert.deepEqual(header.lines, ['GET /ws-secure HTTP/1.1']);
    const param = await h1(`GET /ws-secure?access_token=${token} HTTP/1.1\r\nhost: ${APP}\r\n${WS}\r\n`);
    assert.equal(param.lines.length, 1);
  });

  it('a WebSocket upgrade is a GET to `methods`, and meets `hosts` and normalized `paths`', async () => {
    for (const [request, what] of [
      [`GET /post-only HTTP/1.1\r\nhost: ${APP}\r\n${WS}\r\n`, 'notMethods: [POST]'],
      [`GET /ok HTTP/1.1\r\nhost: ${INTERNAL}:8080\r\n${WS}\r\n`, 'hosts'],
      [`GET /x/%2e%2E/private HTTP/1.1\r\nhost: ${APP}\r\n${WS}\r\n`, 'paths'],
      [`GET /private HTTP/1.1\r\nhost: ${APP}\r\nupgrade: h2c, websocket\r\nconnection: upgrade\r\n\r\n`, 'h2c listed first'],
    ] as const) {
      const r = await h1(request);
      assert.deepEqual([r.answer, r.lines], ['HTTP/1.1 403 Forbidden', []], what);
    }
  });

  it('a WebSocket upgrade with a Content-Length body (a denied request): answered, closed; the body never reaches the upstream', async () => {
    // Before, the upgrade went up with the client's content-length and no body (the bytes after the
    // head wait for a 101): the upstream waited for it, and both connections hung until the stream idle timeout.
    const smuggled = `GET /private HTTP/1.1\r\nhost: ${APP}\r\n\r\n`;
    const mark = upstream.mark();
    const r = await rawExchange(gw.port, `GET /ok HTTP/1.1\r\nhost: ${APP}\r\n${WS}content-length: ${smuggled.length}\r\n\r\n${smuggled}`);
    assert.match(r.text, /^HTTP\/1\.1 200 /);
    const seen = upstream.since(mark);
    assert.deepEqual(seen.requestLines, ['GET /ok HTTP/1.1']);
    assert.doesNotMatch(seen.bytes, /content-length|\/private/i);
  });

  it('a refused WebSocket upgrade (denied path) with a frame and a request pipelined behind it: answered, closed; nothing goes up', async () => {
    const frame = Buffer.from([0x81, 0x85, 1, 2, 3, 4, 0x69, 0x67, 0x6f, 0x68, 0x6e]);
    const mark = upstream.mark();
    const r = await rawExchange(gw.port, Buffer.concat([Buffer.from(`GET /private HTTP/1.1\r\nhost: ${APP}\r\n${WS}\r\n`), frame, Buffer.from(`GET /ok HTTP/1.1\r\nhost: ${APP}\r\n\r\n`)]));
    assert.deepEqual(r.statuses, [403]);
    assert.deepEqual(upstream.since(mark).requestLines, []);
  });

  it('HTTP/1.0 without Host reaches only a `*` host, with an empty authority (Envoy, as Istio configures it, answers 426)', async () => {
    const r = await h1('GET /ok HTTP/1.0\r\n\r\n');
    assert.deepEqual([r.answer, r.lines, r.hosts], ['HTTP/1.1 200 OK', ['GET /ok HTTP/1.1'], ['']]);
    const abs = await h1(`GET http://${INTERNAL}/ok HTTP/1.0\r\n\r\n`);
    assert.deepEqual([abs.answer, abs.lines], ['HTTP/1.1 403 Forbidden', []], 'an absolute-form authority is the host');
  });

  it('the path the upstream gets is the one the policy saw (Istio BASE): escapes of unreserved characters decoded, others kept', async () => {
    const forwarded = async (path: string): Promise<string[]> => (await h1(`GET ${path} HTTP/1.1\r\nhost: ${APP}\r\nconnection: close\r\n\r\n`)).lines;
    assert.deepEqual(await forwarded('/%70RIVATE'), ['GET /pRIVATE HTTP/1.1'], 'another path to the policy, and to the app');
    assert.deepEqual(await forwarded('/x%2F%2E%2E%2Fprivate'), ['GET /x%2F..%2Fprivate HTTP/1.1'], '%2F stays (DECODE_AND_MERGE_SLASHES decodes it)');
    assert.deepEqual(await forwarded('/x/%c0%ae%c0%ae/private'), ['GET /x/%c0%ae%c0%ae/private HTTP/1.1'], 'overlong UTF-8 is no dot');
    assert.deepEqual(await forwarded('/x/%2E%2e/private'), [], 'a dot segment in any case');
  });
});

describe('h2c probes at a sidecar\'s inbound side (PERMISSIVE; DENY /private and host internal.example.com)', () => {
  let upstream: RawUpstream;
  let sidecar: RunningSidecar;
  let dir: string;

  before(async () => {
    const ca = await testAuthority();
    upstream = await startRawUpstream();
    dir = await mkdtemp(join(tmpdir(), 'meshgate-h2c-probes-'));
    const config = join(dir, 'config');
    await mkdir(config);
    sidecar = await startSidecar({
      statusPort: 0,
      adminPort: 0,
      outboundPort: 0,
      inboundPort: 0,
      listenHost: '127.0.0.1',
      accessLog: 'off',
      logger: pino({ level: 'silent' }),
      namespace: 'default',
      identity: fixedIdentity(ca, 'default', 'app'),
      source: new FileSource({ dir: config }),
      serviceAccount: 'app',
      labels: { app: 'app' },
      appPort: upstream.port,
    });
    await writeFile(join(config, 'services.yaml'), serviceYaml('app', [{ pod: 'app-0', port: sidecar.inboundPort, serviceAccount: 'app' }]));
    await writeFile(join(config, 'policy.yaml'), authorizationPolicy('deny', 'default', '{matchLabels: {app: app}}', `  action: DENY
  rules:
  - to: [{operation: {paths: [/private, /private/*]}}]
  - to: [{operation: {hosts: [${INTERNAL}, "${INTERNAL}:*"]}}]`));
    await untilSnapshot(sidecar.holder, (snap) => snap.registry.lookup('app.default.svc.cluster.local') !== undefined);
    await eventually(async () => (await rawExchange(sidecar.inboundPort, 'GET /private HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n')).status === 403);
  });
  after(async () => {
    await sidecar?.destroy();
    await upstream?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const h2 = (fields: ReadonlyArray<readonly [string, string]>) => onWire(upstream, () => h2cStream(sidecar.inboundPort, fields));

  it('CONNECT is 403 where denied (was 405 from node:http2); extended CONNECT is reset', async () => {
    assert.equal((await h2([[':method', 'CONNECT'], [':authority', `${INTERNAL}:443`]])).answer.status, 403);
    const ext = await h2([[':method', 'CONNECT'], [':protocol', 'websocket'], [':scheme', 'http'], [':path', '/private'], [':authority', 'app']]);
    assert.deepEqual([ext.answer.status, ext.lines], ['reset', []]);
  });

  it('`:authority` is what `hosts` and the app see; `host` alone is the authority; `//host/x` is a path', async () => {
    const both = await h2(get('/ok', 'app', [['host', INTERNAL]]));
    assert.deepEqual([both.answer.status, both.hosts], [200, ['app']]);
    assert.equal((await h2(get('/ok', INTERNAL, [['host', 'app']]))).answer.status, 403);
    assert.equal((await h2(get('/ok', null, [['host', INTERNAL]]))).answer.status, 403);
    const slashes = await h2(get(`//${INTERNAL}/private`, 'app'));
    assert.deepEqual([slashes.answer.status, slashes.lines, slashes.hosts], [200, [`GET //${INTERNAL}/private HTTP/1.1`], ['app']]);
    assert.equal((await h2(get('/private#x', 'app'))).answer.status, 403);
  });
});
