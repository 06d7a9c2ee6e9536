// Integration: cancellations and resets cross the gateway in both directions, on every protocol pair
// (h1→h1, h1→h2, h2→h1, h2→h2, gRPC), and an upload the client gave up on, or sent malformed, never
// reaches the upstream as a complete request. Real clients (node:http, node:http2, @grpc/grpc-js)
// plus a bare-frame HTTP/2 client for the exact frame sequences (RST_STREAM mid-upload, a body
// shorter than its content-length). The access log says DC, UC or UR as Envoy would.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { connect as h2connect, constants, createServer as createH2cServer, type Http2Server, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { accessLogLine, eventually, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { echoClient, grpc, startEchoServer, type EchoServer } from './helpers/grpc.js';
import { Flag, FrameType, RawH2, frame, headerBlock, rstStream } from './helpers/h2-frames.js';

const H1_HOST = 'h1.example.com';
const H2_HOST = 'h2.example.com';
const GRPC_HOST = 'grpc.example.com';

/** What an upstream saw of each request, by x-request-id: 'complete', 'aborted' or 'closed'. */
type Seen = Map<string, string>;

async function h1Upstream(): Promise<{ server: Server; port: number; seen: Seen }> {
  const seen: Seen = new Map();
  const server = createHttpServer((req: IncomingMessage, res) => {
    const id = String(req.headers['x-request-id'] ?? '');
    if (req.url === '/hang') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: first\n\n');
      res.on('close', () => seen.set(id, 'closed'));
      return;
    }
    if (req.url === '/cut') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial', () => setTimeout(() => req.socket.destroy(), 20));
      return;
    }
    if (req.url === '/upload') {
      seen.set(id, 'started');
      req.resume();
      req.on('end', () => {
        seen.set(id, req.complete ? 'complete' : 'aborted');
        res.end('stored');
      });
      req.on('aborted', () => seen.set(id, 'aborted'));
      req.on('error', () => seen.set(id, 'aborted'));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, seen };
}

async function h2Upstream(): Promise<{ server: Http2Server; port: number; seen: Seen }> {
  const seen: Seen = new Map();
  const server = createH2cServer();
  server.on('stream', (stream: ServerHttp2Stream, headers) => {
    stream.on('error', () => undefined);
    const id = String(headers['x-request-id'] ?? '');
    const path = String(headers[':path']);
    if (path === '/hang') {
      stream.respond({ ':status': 200, 'content-type': 'text/event-stream' });
      stream.write('data: first\n\n');
      stream.resume();
      stream.on('close', () => seen.set(id, `closed:${stream.rstCode}`));
    } else if (path === '/reset-mid') {
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      // destroy(err) resets without a clean END_STREAM first (close(code) would end the stream first).
      stream.write('partial', () => setTimeout(() => stream.destroy(new Error('upstream gives up')), 20));
      stream.resume();
    } else if (path === '/upload') {
      seen.set(id, 'started');
      let ended = false;
      stream.resume();
      stream.on('end', () => {
        ended = true;
        if (!stream.destroyed) {
          stream.respond({ ':status': 200 });
          stream.end('stored');
        }
      });
      stream.on('close', () => seen.set(id, ended && stream.rstCode === constants.NGHTTP2_NO_ERROR ? 'complete' : 'aborted'));
    } else {
      stream.respond({ ':status': 404 }, { endStream: true });
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, seen };
}

describe('cancellation and resets through the gateway', () => {
  let h1: Awaited<ReturnType<typeof h1Upstream>>;
  let h2: Awaited<ReturnType<typeof h2Upstream>>;
  let echo: EchoServer;
  let gw: TestGateway;
  const logFile = join(process.env.TMPDIR ?? '/tmp', `meshgate-cancel-log-${process.pid}.jsonl`);

  before(async () => {
    h1 = await h1Upstream();
    h2 = await h2Upstream();
    echo = await startEchoServer();
    gw = await startTestGateway(
      {
        'gateway.yaml': gatewayYaml([H1_HOST, H2_HOST, GRPC_HOST]),
        'services.yaml': [
          serviceYaml('h1', [{ pod: 'h1-1', port: h1.port }]),
          serviceYaml('h2', [{ pod: 'h2-1', port: h2.port }], { portName: 'http2' }),
          serviceYaml('echo', [{ pod: 'echo-1', port: echo.port }], { portName: 'grpc-echo' }),
        ].join('---\n'),
        'vs.yaml': [
          [H1_HOST, 'h1'],
          [H2_HOST, 'h2'],
          [GRPC_HOST, 'echo'],
        ]
          .map(
            ([host, svc]) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${svc}}
spec:
  hosts: [${host}]
  gateways: [gw]
  http:
  - route: [{destination: {host: ${svc}}}]
    retries: {attempts: 0}
`,
          )
          .join('---\n'),
      },
      { accessLog: logFile },
    );
  });

  after(async () => {
    await gw?.close();
    await echo?.close();
    h1?.server.close();
    h2?.server.close();
  });

  const logLine = (id: string): Promise<Record<string, unknown>> => accessLogLine(logFile, id);

  /** An HTTP/2 client's stream that is reset (RST_STREAM CANCEL) once its first bytes arrive. */
  async function h2CancelAfterFirstBytes(host: string, id: string): Promise<void> {
    const session = h2connect(`http://127.0.0.1:${gw.port}`);
    session.on('error', () => undefined);
    const stream = session.request({ ':path': '/hang', ':authority': host, 'x-request-id': id }, { endStream: true });
    stream.on('error', () => undefined);
    await new Promise<void>((resolve) => stream.once('data', () => resolve()));
    stream.close(constants.NGHTTP2_CANCEL);
    await new Promise((r) => stream.on('close', r));
    session.close();
  }

  /** An HTTP/1.1 client that drops its connection once the first bytes arrive. */
  async function h1DropAfterFirstBytes(host: string, id: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: gw.port, path: '/hang', headers: { host, 'x-request-id': id } }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => undefined);
      req.on('close', () => resolve());
      req.setTimeout(10_000, () => reject(new Error('no first bytes')));
      req.end();
    });
  }

  it('h2 → h1: a client RST_STREAM closes the upstream request, logged DC', async () => {
    await h2CancelAfterFirstBytes(H1_HOST, 'c-h2-h1');
    await eventually(async () => h1.seen.get('c-h2-h1') === 'closed');
    assert.equal((await logLine('c-h2-h1')).response_flags, 'DC');
  });

  it('h2 → h2: a client RST_STREAM resets the upstream stream (CANCEL), logged DC', async () => {
    await h2CancelAfterFirstBytes(H2_HOST, 'c-h2-h2');
    await eventually(async () => h2.seen.has('c-h2-h2'));
    assert.notEqual(h2.seen.get('c-h2-h2'), `closed:${constants.NGHTTP2_NO_ERROR}`);
    assert.equal((await logLine('c-h2-h2')).response_flags, 'DC');
  });

  it('h1 → h2: a client that drops its connection resets the upstream stream, logged DC', async () => {
    await h1DropAfterFirstBytes(H2_HOST, 'c-h1-h2');
    await eventually(async () => h2.seen.has('c-h1-h2'));
    assert.notEqual(h2.seen.get('c-h1-h2'), `closed:${constants.NGHTTP2_NO_ERROR}`);
    assert.equal((await logLine('c-h1-h2')).response_flags, 'DC');
  });

  it('h1 → h1: a client that drops its connection closes the upstream request, logged DC', async () => {
    await h1DropAfterFirstBytes(H1_HOST, 'c-h1-h1');
    await eventually(async () => h1.seen.get('c-h1-h1') === 'closed');
    assert.equal((await logLine('c-h1-h1')).response_flags, 'DC');
  });

  it('gRPC: cancelling server streams and a client stream reaches the grpc-js server every time', async () => {
    const client = echoClient(gw.port, GRPC_HOST);
    try {
      const before = echo.cancelled;
      for (let i = 0; i < 5; i++) {
        const md = new grpc.Metadata();
        md.set('x-request-id', `grpc-cancel-${i}`);
        const call = client.serverStream({ count: 0, intervalMs: 20 }, md);
        call.on('error', () => undefined);
        await new Promise<void>((resolve) => call.once('data', () => resolve()));
        call.cancel();
      }
      const upload = client.clientStream(new grpc.Metadata(), {}, () => undefined);
      upload.write({ message: 'one' });
      upload.write({ message: 'two' });
      await eventually(async () => (echo.calls.get('clientStream') ?? 0) > 0);
      upload.cancel();
      await eventually(async () => echo.cancelled - before >= 6 && echo.open === 0);
      // (Node's HTTP/2 client, which grpc-js uses, half-closes a stream before it resets it, so the
      // client stream may well have ended first: exactly what the server would see without a proxy.)
      assert.equal((await logLine('grpc-cancel-4')).response_flags, 'DC');
    } finally {
      client.close();
    }
  });

  for (const [path, host, flag, what] of [
    ['/reset-mid', H2_HOST, 'UR', 'an upstream RST_STREAM'],
    ['/cut', H1_HOST, 'UC', 'an upstream HTTP/1 connection cut'],
  ] as const) {
    it(`${what} mid-response resets the HTTP/2 client stream, logged ${flag}`, async () => {
      const id = `u-${flag}-h2`;
      const session = h2connect(`http://127.0.0.1:${gw.port}`);
      try {
        const stream = session.request({ ':path': path, ':authority': host, 'x-request-id': id }, { endStream: true });
        stream.on('error', () => undefined);
        stream.resume();
        await new Promise((r) => stream.on('close', r));
        assert.notEqual(stream.rstCode, constants.NGHTTP2_NO_ERROR);
        assert.equal((await logLine(id)).response_flags, flag);
      } finally {
        session.close();
      }
    });
  }

  it('an upstream RST_STREAM mid-response cuts the HTTP/1 client response (no clean end)', async () => {
    const outcome = await new Promise<string>((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port: gw.port, path: '/reset-mid', headers: { host: H2_HOST, 'x-request-id': 'u-h2-h1' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.complete ? 'complete' : 'cut'));
        res.on('aborted', () => resolve('cut'));
        res.on('error', () => resolve('cut'));
      });
      req.on('error', () => resolve('cut'));
      req.end();
    });
    assert.equal(outcome, 'cut');
    assert.equal((await logLine('u-h2-h1')).response_flags, 'UR');
  });

  for (const [host, upstream] of [
    [H1_HOST, 'HTTP/1'],
    [H2_HOST, 'HTTP/2'],
  ] as const) {
    it(`an upload reset mid-body (HEADERS, DATA, RST_STREAM) never completes at an ${upstream} upstream`, async () => {
      const id = `abort-${upstream}`;
      const c = await RawH2.open(gw.port);
      try {
        c.send(uploadHeaders(host, id), frame(FrameType.DATA, 0, 1, Buffer.from('first part of the body')));
        // The upstream has the request in hand, its body streaming; then the client gives up.
        await eventually(async () => seenOf(upstream).get(id) === 'started');
        c.send(rstStream(1, constants.NGHTTP2_CANCEL));
        assert.equal((await logLine(id)).response_flags, 'DC');
        await eventually(async () => seenOf(upstream).get(id) !== 'started');
        assert.equal(seenOf(upstream).get(id), 'aborted');
      } finally {
        c.close();
      }
    });

    it(`a body shorter than its content-length never completes at an ${upstream} upstream`, async () => {
      const id = `short-${upstream}`;
      const c = await RawH2.open(gw.port);
      try {
        c.send(uploadHeaders(host, id, [['content-length', '100']]), frame(FrameType.DATA, Flag.END_STREAM, 1, Buffer.from('only this')));
        await c.until(() => c.on(1).some((f) => f.type === FrameType.RST_STREAM || (f.flags & Flag.END_STREAM) !== 0));
        await logLine(id);
        // Whether or not it got as far as the upstream, it never arrived there whole.
        await eventually(async () => seenOf(upstream).get(id) !== 'started');
        assert.notEqual(seenOf(upstream).get(id), 'complete');
      } finally {
        c.close();
      }
    });
  }

  function seenOf(upstream: 'HTTP/1' | 'HTTP/2'): Seen {
    return upstream === 'HTTP/1' ? h1.seen : h2.seen;
  }
});

/** HEADERS (without END_STREAM) of a PUT /upload on stream 1. */
function uploadHeaders(host: string, id: string, extra: ReadonlyArray<readonly [string, string]> = []): Buffer {
  const fields: Array<readonly [string, string]> = [
    [':method', 'PUT'],
    [':scheme', 'http'],
    [':path', '/upload'],
    [':authority', host],
    ['x-request-id', id],
    ...extra,
  ];
  return frame(FrameType.HEADERS, Flag.END_HEADERS, 1, headerBlock(fields));
}
