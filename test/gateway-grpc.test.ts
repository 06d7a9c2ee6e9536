// Integration: gRPC and HTTP/2 through the gateway's plaintext listener with real clients and servers
// (@grpc/grpc-js on both ends, node:http2, curl, nghttp) and a frame-level check for each defect that
// was found: h2c with prior knowledge on a plaintext port; trailers-only answers as one HEADERS frame;
// status, message and binary metadata intact; gRPC-shaped local replies; retryOn gRPC conditions;
// grpc-timeout bounding the route; request trailers to an HTTP/2 upstream.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { connect as h2connect, constants, createServer as createH2cServer, type Http2Server, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { accessLogLine, eventually, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { echoClient, grpc, startEchoServer, unary, type EchoServer } from './helpers/grpc.js';

const run = promisify(execFile);
const GRPC_HOST = 'grpc.example.com';
const RETRY_HOST = 'retry.example.com';
const RAW_HOST = 'raw.example.com';
const HOSTS = [GRPC_HOST, RETRY_HOST, RAW_HOST];

/** A node:http2 upstream that answers by path the ways a gRPC server can (and misbehaves on request). */
interface RawUpstream {
  readonly port: number;
  /** Streams of `/silent` that ended, with the RST code they ended with. */
  readonly silentClosed: number[];
  /** Trailers the upstream received on `/trailers-echo`. */
  readonly trailers: Array<Record<string, string>>;
  /** `/upload` streams: 'end' when the body ended cleanly, 'reset' when the stream was reset. */
  readonly uploads: string[];
  close(): Promise<void>;
}

async function rawUpstream(): Promise<RawUpstream> {
  const server: Http2Server = createH2cServer();
  const u = { port: 0, silentClosed: [] as number[], trailers: [] as Array<Record<string, string>>, uploads: [] as string[], close: () => new Promise<void>((r) => server.close(() => r())) };
  server.on('stream', (stream: ServerHttp2Stream, headers) => {
    stream.on('error', () => undefined);
    const path = String(headers[':path']);
    if (path === '/trailers-only') {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '5', 'grpc-message': 'no%20such%20thing', 'err-bin': Buffer.from([1, 2, 3]).toString('base64') }, { endStream: true });
      stream.resume();
    } else if (path === '/reset-mid') {
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.write('partial', () => setTimeout(() => stream.close(constants.NGHTTP2_INTERNAL_ERROR), 20));
      stream.resume();
    } else if (path === '/silent') {
      stream.resume();
      stream.on('close', () => u.silentClosed.push(stream.rstCode ?? -1));
    } else if (path === '/trailers-echo') {
      stream.on('trailers', (t) => {
        const out: Record<string, string> = {};
        for (const [k, v] of Object.entries(t)) if (!k.startsWith(':')) out[k] = String(v);
        u.trailers.push(out);
      });
      stream.resume();
      stream.on('end', () => {
        stream.respond({ ':status': 200 }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'x-upstream-trailer': 'yes' }));
        stream.end('echoed');
      });
    } else if (path === '/upload') {
      stream.resume();
      let ended = false;
      stream.on('end', () => {
        ended = true;
      });
      stream.on('close', () => u.uploads.push(ended && (stream.rstCode ?? 0) === 0 ? 'end' : 'reset'));
      stream.on('end', () => {
        if (!stream.destroyed) {
          stream.respond({ ':status': 200 });
          stream.end('stored');
        }
      });
    } else {
      stream.respond({ ':status': 404 }, { endStream: true });
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  u.port = (server.address() as AddressInfo).port;
  return u;
}

describe('gRPC and HTTP/2 through the gateway', () => {
  let echo: EchoServer;
  let raw: RawUpstream;
  let gw: TestGateway;
  const logFile = join(process.env.TMPDIR ?? '/tmp', `meshgate-grpc-log-${process.pid}.jsonl`);

  before(async () => {
    echo = await startEchoServer();
    raw = await rawUpstream();
    gw = await startTestGateway(
      {
        'gateway.yaml': gatewayYaml(HOSTS),
        'services.yaml': [serviceYaml('echo', [{ pod: 'echo-1', port: echo.port }], { portName: 'grpc' }), serviceYaml('raw', [{ pod: 'raw-1', port: raw.port }], { portName: 'http2' })].join('---\n'),
        'vs.yaml': `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo}
spec:
  hosts: [${GRPC_HOST}]
  gateways: [gw]
  http:
  - route: [{destination: {host: echo}}]
    retries: {attempts: 0}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: retry}
spec:
  hosts: [${RETRY_HOST}]
  gateways: [gw]
  http:
  - route: [{destination: {host: echo}}]
    retries: {attempts: 2, retryOn: unavailable}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: raw}
spec:
  hosts: [${RAW_HOST}]
  gateways: [gw]
  http:
  - route: [{destination: {host: raw}}]
    timeout: 20s
    retries: {attempts: 0}
`,
      },
      { accessLog: logFile },
    );
  });

  after(async () => {
    await gw?.close();
    await echo?.close();
    await raw?.close();
  });

  const logLine = (id: string): Promise<Record<string, unknown>> => accessLogLine(logFile, id);

  it('serves HTTP/1.1 and h2c with prior knowledge on the same plaintext port (curl)', async () => {
    const h2 = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', '--http2-prior-knowledge', '-H', `host: ${RAW_HOST}`, `http://127.0.0.1:${gw.port}/nothing`]);
    assert.equal(h2.stdout, '2 404');
    const h1 = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_version} %{http_code}', '--http1.1', '-H', `host: ${RAW_HOST}`, `http://127.0.0.1:${gw.port}/nothing`]);
    assert.equal(h1.stdout, '1.1 404');
  });

  it('carries a plaintext gRPC call with its status, message and binary metadata both ways', async () => {
    const client = echoClient(gw.port, GRPC_HOST);
    try {
      const md = new grpc.Metadata();
      md.set('trace-bin', Buffer.from([0, 255, 1, 128]));
      const ok = await unary(client, { message: 'hello' }, md);
      assert.equal(ok.err, null);
      assert.equal(ok.reply?.message, 'hello');
      assert.deepEqual(ok.headers?.get('echo-bin')[0], Buffer.from([0, 255, 1, 128]));
      assert.deepEqual(ok.trailers?.get('trailer-bin')[0], Buffer.from([9, 8, 7]));
      assert.deepEqual(echo.lastMetadata?.get('trace-bin')[0], Buffer.from([0, 255, 1, 128]));

      // An error before any message: grpc-js answers trailers-only; the client must read it intact.
      const failed = await unary(client, { message: 'not found: caf\u00e9 50%', failWith: grpc.status.NOT_FOUND });
      assert.equal(failed.err?.code, grpc.status.NOT_FOUND);
      assert.equal(failed.err?.details, 'not found: caf\u00e9 50%');
      assert.deepEqual(failed.trailers?.get('err-bin')[0], Buffer.from([0, 1, 2, 255]));
      assert.equal(failed.trailers?.get('err-text')[0], 'details');
    } finally {
      client.close();
    }
  });

  it('forwards a trailers-only answer as one HEADERS frame with END_STREAM (node:http2 client)', async () => {
    const session = h2connect(`http://127.0.0.1:${gw.port}`);
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/trailers-only', ':authority': RAW_HOST, 'content-type': 'application/grpc' }, { endStream: true });
      let dataFrames = 0;
      stream.on('data', () => dataFrames++);
      const [headers, flags] = await new Promise<[Record<string, unknown>, number]>((resolve) => stream.on('response', (h, f) => resolve([h, f])));
      await new Promise((r) => stream.on('close', r));
      assert.equal(flags & constants.NGHTTP2_FLAG_END_STREAM, constants.NGHTTP2_FLAG_END_STREAM);
      assert.equal(dataFrames, 0);
      assert.equal(headers[':status'], 200);
      assert.equal(headers['grpc-status'], '5');
      assert.equal(headers['grpc-message'], 'no%20such%20thing');
      assert.equal(stream.rstCode, constants.NGHTTP2_NO_ERROR);
    } finally {
      session.close();
    }
  });

  it('nghttp sees the trailers-only answer as HEADERS flags 0x05 and no DATA frame', async () => {
    const out = await run('nghttp', ['-v', '-H', `:authority: ${RAW_HOST}`, '-H', 'content-type: application/grpc', `http://127.0.0.1:${gw.port}/trailers-only`]);
    const received = out.stdout.split('\n').filter((l) => l.includes('recv ') && l.includes('stream_id=13'));
    assert.ok(received.some((l) => /recv HEADERS frame <length=\d+, flags=0x05, stream_id=13>/.test(l)), out.stdout);
    assert.ok(!received.some((l) => l.includes('recv DATA frame')), out.stdout);
  });

  it('answers a gRPC request it cannot route the gRPC way: HTTP 200, grpc-status 12, one HEADERS frame', async () => {
    const client = echoClient(gw.port, 'unknown.example.com');
    try {
      const r = await unary(client, { message: 'x' });
      assert.equal(r.err?.code, grpc.status.UNIMPLEMENTED);
    } finally {
      client.close();
    }
    const session = h2connect(`http://127.0.0.1:${gw.port}`);
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/meshgate.test.Echo/Unary', ':authority': 'unknown.example.com', 'content-type': 'application/grpc' }, { endStream: true });
      const [headers, flags] = await new Promise<[Record<string, unknown>, number]>((resolve) => stream.on('response', (h, f) => resolve([h, f])));
      assert.equal(headers[':status'], 200);
      assert.equal(headers['grpc-status'], '12');
      assert.equal(headers['content-type'], 'application/grpc');
      assert.ok(String(headers['grpc-message']).length > 0);
      assert.equal(flags & constants.NGHTTP2_FLAG_END_STREAM, constants.NGHTTP2_FLAG_END_STREAM);
    } finally {
      session.close();
    }
  });

  it('retries a trailers-only UNAVAILABLE under retryOn unavailable', async () => {
    const client = echoClient(gw.port, RETRY_HOST);
    try {
      const before = echo.calls.get('unary') ?? 0;
      echo.failNext.push(grpc.status.UNAVAILABLE);
      const r = await unary(client, { message: 'again' });
      assert.equal(r.err, null);
      assert.equal(r.reply?.message, 'again');
      assert.equal((echo.calls.get('unary') ?? 0) - before, 2);
      // Out of retries, the last answer goes to the client intact.
      echo.failNext.push(grpc.status.UNAVAILABLE, grpc.status.UNAVAILABLE, grpc.status.UNAVAILABLE);
      const exhausted = await unary(client, { message: 'still down' });
      assert.equal(exhausted.err?.code, grpc.status.UNAVAILABLE);
      assert.equal(exhausted.err?.details, 'still down');
    } finally {
      client.close();
    }
  });

  it('lets grpc-timeout bound the route: DEADLINE_EXCEEDED, and the upstream stream is reset', async () => {
    const session = h2connect(`http://127.0.0.1:${gw.port}`);
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/silent', ':authority': RAW_HOST, 'content-type': 'application/grpc', 'grpc-timeout': '300m', 'x-request-id': 'grpc-timeout-1' }, { endStream: true });
      const [headers, flags] = await new Promise<[Record<string, unknown>, number]>((resolve) => stream.on('response', (h, f) => resolve([h, f])));
      assert.equal(headers[':status'], 200);
      assert.equal(headers['grpc-status'], '4');
      assert.equal(flags & constants.NGHTTP2_FLAG_END_STREAM, constants.NGHTTP2_FLAG_END_STREAM);
      await eventually(async () => raw.silentClosed.length > 0);
      assert.notEqual(raw.silentClosed[0], constants.NGHTTP2_NO_ERROR);
      assert.equal((await logLine('grpc-timeout-1')).response_flags, 'UT');
    } finally {
      session.close();
    }
  });

  it('sends request trailers on to an HTTP/2 upstream and its response trailers back', async () => {
    const session = h2connect(`http://127.0.0.1:${gw.port}`);
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/trailers-echo', ':authority': RAW_HOST }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': 'abc123' }));
      stream.end('payload');
      const trailers = await new Promise<Record<string, unknown>>((resolve) => stream.on('trailers', (t) => resolve(t)));
      stream.resume();
      assert.equal(trailers['x-upstream-trailer'], 'yes');
      assert.deepEqual(raw.trailers.at(-1), { 'x-checksum': 'abc123' });
    } finally {
      session.close();
    }
  });
});
