// Integration: route timeouts, retries and fault injection through a real gateway, in front of
// faulty upstreams on loopback (one answering 503 every other time, one that never answers, one
// that resets the connection, an HTTP/2 one that refuses every other stream) next to healthy ones.
// No timing assertions: outcomes are read from status codes, headers and access-log flags.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createH2cServer, constants as h2, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { closedPort, startUpstream, type Upstream } from './helpers/upstream.js';
import { chunked, completeJsonLines, eventually, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';

const HOST = 'r.example.com';

/** Answers 503 to every other request (the first included). */
function flaky(name: string): Promise<Upstream> {
  let n = 0;
  return startUpstream(name, (_req, res) => {
    if (n++ % 2 !== 0) return false;
    res.writeHead(503, { 'content-length': '0' });
    res.end();
    return true;
  });
}

/** An HTTP/2 cleartext upstream that resets every other stream with REFUSED_STREAM before answering. */
async function refusingH2(): Promise<{ server: Http2Server; port: number; answered: () => number; close(): Promise<void> }> {
  let n = 0;
  let answered = 0;
  const server = createH2cServer();
  server.on('stream', (stream) => {
    // Closing with an error code also errors the server's own stream object.
    stream.on('error', () => undefined);
    if (n++ % 2 === 0) return stream.close(h2.NGHTTP2_REFUSED_STREAM);
    answered++;
    stream.respond({ ':status': 200, 'content-type': 'text/plain' });
    stream.end('h2 ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, answered: () => answered, close: () => new Promise((r) => server.close(() => r())) };
}

const ROUTES = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: resilience}
spec:
  hosts: [${HOST}]
  gateways: [gw]
  http:
  - match: [{uri: {prefix: /retry-5xx}}]
    retries: {attempts: 2, retryOn: 5xx}
    route: [{destination: {host: flaky-pair}}]
  - match: [{uri: {prefix: /default-5xx}}]
    route: [{destination: {host: flaky-only}}]
  - match: [{uri: {prefix: /codes}}]
    retries: {attempts: 3, retryOn: "503,connect-failure"}
    route: [{destination: {host: flaky-codes}}]
  - match: [{uri: {prefix: /attempts-zero}}]
    retries: {attempts: 0}
    route: [{destination: {host: half-dead}}]
  - match: [{uri: {prefix: /connect-default}}]
    route: [{destination: {host: half-dead}}]
  - match: [{uri: {prefix: /per-try-pair}}]
    retries: {attempts: 2, perTryTimeout: 100ms, retryOn: reset}
    route: [{destination: {host: hang-pair}}]
  - match: [{uri: {prefix: /per-try-only}}]
    retries: {attempts: 1, perTryTimeout: 200ms, retryOn: reset}
    route: [{destination: {host: hang-a}}]
  - match: [{uri: {prefix: /per-try-not-retriable}}]
    retries: {attempts: 2, perTryTimeout: 200ms, retryOn: connect-failure}
    route: [{destination: {host: hang-b}}]
  - match: [{uri: {prefix: /timeout}}]
    timeout: 100ms
    route: [{destination: {host: hang-c}}]
  - match: [{uri: {prefix: /reset-pair}}]
    retries: {attempts: 2, retryOn: reset}
    route: [{destination: {host: reset-pair}}]
  - match: [{uri: {prefix: /reset-default}}]
    route: [{destination: {host: reset-only}}]
  - match: [{uri: {prefix: /body}}]
    retries: {attempts: 1, retryOn: 5xx}
    route: [{destination: {host: always-503}}]
  - match: [{uri: {prefix: /refused}}]
    route: [{destination: {host: refuser}}]
  - match: [{uri: {prefix: /fault-mix}}]
    fault:
      delay: {fixedDelay: 1ms, percentage: {value: 20}}
      abort: {httpStatus: 418, percentage: {value: 25}}
    route: [{destination: {host: healthy}}]
  - match: [{uri: {prefix: /delay-always}}]
    fault: {delay: {fixedDelay: 5ms, percentage: {value: 100}}}
    route: [{destination: {host: healthy}}]
  - match: [{uri: {prefix: /abort-always}}]
    fault: {abort: {httpStatus: 503, percentage: {value: 100}}}
    route: [{destination: {host: healthy}}]
  - match: [{uri: {prefix: /backoff-timeout}}]
    timeout: 300ms
    retries: {attempts: 3, retryOn: connect-failure, backoff: 24h}
    route: [{destination: {host: dead-only}}]
  - match: [{uri: {prefix: /hashed}}]
    retries: {attempts: 2, retryOn: "503"}
    route: [{destination: {host: hashed-pair}}]
  - match: [{uri: {prefix: /abort-no-percentage}}]
    fault: {abort: {httpStatus: 500}}
    route: [{destination: {host: healthy}}]
`;

describe('gateway resilience: timeouts, retries, faults', () => {
  let healthy: Upstream, flakyPair: Upstream, flakyOnly: Upstream, flakyCodes: Upstream, always503: Upstream, also503: Upstream;
  let hang: Upstream, hangA: Upstream, hangB: Upstream, hangC: Upstream, reset: Upstream, resetOnly: Upstream;
  let refuser: Awaited<ReturnType<typeof refusingH2>>;
  let gw: TestGateway;
  let logDir: string;
  let logFile: string;

  before(async () => {
    healthy = await startUpstream('healthy');
    flakyPair = await flaky('flaky-pair');
    flakyOnly = await flaky('flaky-only');
    flakyCodes = await flaky('flaky-codes');
    always503 = await startUpstream('always-503', (_req, res) => {
      res.writeHead(503, { 'content-length': '0' });
      res.end();
      return true;
    });
    also503 = await startUpstream('also-503', (_req, res) => {
      res.writeHead(503, { 'content-length': '0' });
      res.end();
      return true;
    });
    [hang, hangA, hangB, hangC] = await Promise.all(['hang', 'hang-a', 'hang-b', 'hang-c'].map((n) => startUpstream(n, () => true)));
    const resetter = (_req: unknown, res: import('node:http').ServerResponse): boolean => {
      res.socket?.destroy();
      return true;
    };
    reset = await startUpstream('reset', resetter);
    resetOnly = await startUpstream('reset-only', resetter);
    refuser = await refusingH2();
    const dead = await closedPort();
    logDir = await mkdtemp(join(tmpdir(), 'meshgate-resilience-'));
    logFile = join(logDir, 'access.log');
    gw = await startTestGateway(
      {
        'gateway.yaml': gatewayYaml([HOST]),
        'services.yaml': [
          serviceYaml('healthy', [{ pod: 'healthy-1', port: healthy.port }]),
          serviceYaml('flaky-pair', [{ pod: 'fp-1', port: flakyPair.port }, { pod: 'fp-2', port: healthy.port }]),
          serviceYaml('flaky-only', [{ pod: 'fo-1', port: flakyOnly.port }]),
          serviceYaml('flaky-codes', [{ pod: 'fc-1', port: flakyCodes.port }]),
          serviceYaml('always-503', [{ pod: 'a503-1', port: always503.port }]),
          serviceYaml('dead-only', [{ pod: 'do-1', port: dead }]),
          serviceYaml('hashed-pair', [{ pod: 'hash-1', port: always503.port }, { pod: 'hash-2', port: also503.port }]),
          serviceYaml('half-dead', [{ pod: 'hd-1', port: dead }, { pod: 'hd-2', port: healthy.port }]),
          serviceYaml('hang-pair', [{ pod: 'hp-1', port: hang.port }, { pod: 'hp-2', port: healthy.port }]),
          serviceYaml('hang-a', [{ pod: 'ha-1', port: hangA.port }]),
          serviceYaml('hang-b', [{ pod: 'hb-1', port: hangB.port }]),
          serviceYaml('hang-c', [{ pod: 'hc-1', port: hangC.port }]),
          serviceYaml('reset-pair', [{ pod: 'rp-1', port: reset.port }, { pod: 'rp-2', port: healthy.port }]),
          serviceYaml('reset-only', [{ pod: 'ro-1', port: resetOnly.port }]),
          serviceYaml('refuser', [{ pod: 'h2-1', port: refuser.port }], { portName: 'http2-web' }),
        ].join('---\n'),
        'vs.yaml': ROUTES,
        'dr.yaml': `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: hashed-pair}
spec:
  host: hashed-pair
  trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user}}}
`,
      },
      { accessLog: logFile },
    );
  });

  after(async () => {
    await gw?.close();
    await Promise.all([healthy, flakyPair, flakyOnly, flakyCodes, always503, also503, hang, hangA, hangB, hangC, reset, resetOnly, refuser].map((u) => u?.close()));
    await rm(logDir, { recursive: true, force: true });
  });

  /** Access-log lines of these request ids, once all of them are written. */
  async function logLines(ids: readonly string[]): Promise<Map<string, Record<string, unknown>>> {
    const byId = new Map<string, Record<string, unknown>>();
    await eventually(async () => {
      const text = await readFile(logFile, 'utf8').catch(() => '');
      for (const line of completeJsonLines(text)) byId.set(String(line.request_id), line);
      return ids.every((id) => byId.has(id));
    }, 5000);
    return byId;
  }

  it('retryOn 5xx keeps the client error rate at zero while a healthy endpoint exists', async () => {
    for (let i = 0; i < 100; i++) assert.equal((await gw.get(HOST, '/retry-5xx')).status, 200);
    assert.ok(flakyPair.seen.length > 0, 'the flaky endpoint took part');
    const attempts = new Set([...flakyPair.seen, ...healthy.seen].filter((e) => e.url === '/retry-5xx').map((e) => String(e.headers['x-envoy-attempt-count'])));
    assert.deepEqual([...attempts].sort(), ['1', '2'], 'a retry tells the upstream it is the second attempt');
  });

  it('the default policy does not retry a 503 response', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await gw.get(HOST, '/default-5xx')).status);
    assert.equal(statuses.filter((s) => s === 503).length, 5);
    assert.equal(flakyOnly.seen.length, 10, 'one attempt per request');
  });

  it('bare status codes in retryOn retry that status, on the same endpoint when it is the only one', async () => {
    for (let i = 0; i < 10; i++) assert.equal((await gw.get(HOST, '/codes')).status, 200);
    assert.equal(flakyCodes.seen.length, 20);
    assert.deepEqual(flakyCodes.seen.map((e) => e.headers['x-envoy-attempt-count']), Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? '1' : '2')));
  });

  it('the default policy retries a connect failure on another endpoint; attempts: 0 does not', async () => {
    for (let i = 0; i < 20; i++) assert.equal((await gw.get(HOST, '/connect-default')).status, 200);
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await gw.get(HOST, '/attempts-zero')).status);
    assert.ok(statuses.includes(503) && statuses.includes(200), statuses.join(','));
  });

  it('a per-try timeout is retried on the healthy endpoint', async () => {
    for (let i = 0; i < 20; i++) assert.equal((await gw.get(HOST, '/per-try-pair')).status, 200);
    assert.ok(hang.seen.length > 0, 'the hanging endpoint was tried');
  });

  it('a per-try timeout with no retries left answers 504 UT (URX)', async () => {
    const r = await gw.get(HOST, '/per-try-only', { 'x-request-id': 'per-try-only' });
    assert.equal(r.status, 504);
    assert.equal(r.text, 'upstream request timeout');
    // The second attempt's request and the 504 reach this process on two sockets, in either order.
    await eventually(async () => hangA.seen.length >= 2);
    assert.equal(hangA.seen.length, 2);
    assert.equal((await logLines(['per-try-only'])).get('per-try-only')?.response_flags, 'UT,URX');
  });

  it('a per-try timeout is not retried when retryOn does not cover resets', async () => {
    const r = await gw.get(HOST, '/per-try-not-retriable', { 'x-request-id': 'per-try-nr' });
    assert.equal(r.status, 504);
    assert.equal(hangB.seen.length, 1);
    assert.equal((await logLines(['per-try-nr'])).get('per-try-nr')?.response_flags, 'UT');
  });

  it('the route timeout answers 504 UT', async () => {
    const r = await gw.get(HOST, '/timeout', { 'x-request-id': 'route-timeout' });
    assert.equal(r.status, 504);
    assert.equal(r.text, 'upstream request timeout');
    assert.equal((await logLines(['route-timeout'])).get('route-timeout')?.response_flags, 'UT');
  });

  it('retryOn reset survives an upstream that resets the connection', async () => {
    for (let i = 0; i < 20; i++) assert.equal((await gw.get(HOST, '/reset-pair')).status, 200);
    assert.ok(reset.seen.length > 0);
  });

  it('the default policy does not retry a connection reset: 503 UC', async () => {
    const r = await gw.get(HOST, '/reset-default', { 'x-request-id': 'reset-default' });
    assert.equal(r.status, 503);
    assert.equal(resetOnly.seen.length, 1);
    assert.equal((await logLines(['reset-default'])).get('reset-default')?.response_flags, 'UC');
  });

  it('the default policy retries an HTTP/2 REFUSED_STREAM', async () => {
    for (let i = 0; i < 6; i++) {
      const r = await gw.get(HOST, '/refused');
      assert.equal(r.status, 200);
      assert.equal(r.text, 'h2 ok');
    }
    assert.equal(refuser.answered(), 6);
  });

  it('replays a small request body on retry, but never a large one', async () => {
    const small = await gw.get(HOST, '/body', { 'content-type': 'text/plain' }, 'POST', 'x'.repeat(1000));
    assert.equal(small.status, 503);
    assert.deepEqual(always503.seen.map((e) => e.bodyBytes), [1000, 1000]);
    const large = await gw.get(HOST, '/body', { 'content-type': 'text/plain' }, 'POST', Buffer.alloc(100 * 1024, 1));
    assert.equal(large.status, 503);
    assert.deepEqual(always503.seen.map((e) => e.bodyBytes), [1000, 1000, 100 * 1024]);
  });

  it('replays a small body that came without Content-Length; a large one is not retried', async () => {
    for (let i = 0; i < 20; i++) {
      const r = await gw.get(HOST, '/connect-default', {}, 'POST', chunked('hello'));
      assert.equal(r.status, 200, `request ${i}`);
      assert.equal(r.json().bodyBytes, 5);
    }
    const seen = always503.seen.length;
    await gw.get(HOST, '/body', {}, 'POST', chunked('x'.repeat(1000)));
    assert.deepEqual(always503.seen.slice(seen).map((e) => e.bodyBytes), [1000, 1000]);
    await gw.get(HOST, '/body', {}, 'POST', chunked(Buffer.alloc(100 * 1024, 1)));
    assert.deepEqual(always503.seen.slice(seen).map((e) => e.bodyBytes), [1000, 1000, 100 * 1024]);
  });

  it('a retriable status that is still the answer after the last retry is flagged URX', async () => {
    const r = await gw.get(HOST, '/body', { 'x-request-id': 'retry-limit' });
    assert.equal(r.status, 503);
    const line = (await logLines(['retry-limit'])).get('retry-limit');
    assert.equal(line?.response_flags, 'URX');
    assert.equal(line?.response_code_details, 'via_upstream');
  });

  it('a route timeout during the back-off between retries answers 504 UT at once', { timeout: 20_000 }, async () => {
    // The back-off window is a day: only the route timeout can end this request in time.
    const r = await gw.get(HOST, '/backoff-timeout', { 'x-request-id': 'backoff-timeout' });
    assert.equal(r.status, 504);
    assert.equal(r.text, 'upstream request timeout');
    assert.equal((await logLines(['backoff-timeout'])).get('backoff-timeout')?.response_flags, 'UT');
  });

  it('retries stay on the host a consistent hash chose', async () => {
    for (let i = 0; i < 10; i++) {
      const before = [always503.seen.length, also503.seen.length];
      const r = await gw.get(HOST, '/hashed', { 'x-user': `user-${i}` });
      assert.equal(r.status, 503);
      const added = [always503.seen.length - before[0]!, also503.seen.length - before[1]!].sort();
      assert.deepEqual(added, [0, 3], `user-${i}: all three attempts on one endpoint`);
    }
  });

  it('aborts and delays fire at their percentages over 2000 requests (seeded, ±3 %)', async () => {
    const ids: string[] = [];
    let aborted = 0;
    for (let i = 0; i < 2000; i++) {
      const id = `fault-${i}`;
      ids.push(id);
      const r = await gw.get(HOST, '/fault-mix', { 'x-request-id': id });
      if (r.status === 418) {
        aborted++;
        assert.equal(r.text, 'fault filter abort');
      } else assert.equal(r.status, 200);
    }
    const lines = await logLines(ids);
    const delayed = ids.filter((id) => String(lines.get(id)?.response_flags).split(',').includes('DI')).length;
    const flaggedFi = ids.filter((id) => String(lines.get(id)?.response_flags).split(',').includes('FI')).length;
    assert.ok(Math.abs(aborted / 2000 - 0.25) <= 0.03, `aborted ${aborted}`);
    assert.ok(Math.abs(delayed / 2000 - 0.2) <= 0.03, `delayed ${delayed}`);
    assert.equal(flaggedFi, aborted);
  });

  it('a delay then proceeds normally, flagged DI', async () => {
    const r = await gw.get(HOST, '/delay-always', { 'x-request-id': 'delay-always' });
    assert.equal(r.status, 200);
    assert.equal(r.json().name, 'healthy');
    const line = (await logLines(['delay-always'])).get('delay-always');
    assert.equal(line?.response_flags, 'DI');
    assert.equal(line?.response_code, 200);
  });

  it('an abort answers locally with its status, flagged FI, without reaching the upstream', async () => {
    const before = healthy.seen.length;
    const r = await gw.get(HOST, '/abort-always', { 'x-request-id': 'abort-always' });
    assert.equal(r.status, 503);
    assert.equal(r.text, 'fault filter abort');
    assert.equal(healthy.seen.length, before);
    const line = (await logLines(['abort-always'])).get('abort-always');
    assert.equal(line?.response_flags, 'FI');
    assert.equal(line?.response_code_details, 'fault_filter_abort');
  });

  it('an abort without a percentage never fires', async () => {
    for (let i = 0; i < 20; i++) assert.equal((await gw.get(HOST, '/abort-no-percentage')).status, 200);
  });
});
