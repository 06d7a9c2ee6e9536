// Integration: DestinationRule connectionPool limits at a real gateway in front of an upstream that
// holds its answers. Beyond maxConnections requests wait up to http1MaxPendingRequests; past that,
// and past http2MaxRequests, the answer is 503 with flag UO at once. The counters survive a reload.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { request } from 'undici';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { eventually, startTestGateway, type Reply, type TestGateway } from './helpers/gateway.js';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';

const OVERFLOW_BODY = 'upstream connect error or disconnect/reset before headers. reset reason: overflow';

interface BreakerView {
  connections: number;
  pending: number;
  requests: number;
  retries: number;
  overflows: { connections: number; pending: number; requests: number; retries: number };
  maxConnections: number;
  maxPendingRequests: number;
}

describe('circuit breaking (connectionPool)', () => {
  let slow: Upstream, capped: Upstream, failsThrice: Upstream;
  const held: ServerResponse[] = [];
  let gw: TestGateway;

  const answerAll = (): void => {
    for (const res of held.splice(0)) res.end('done');
  };

  const breaker = async (cluster: string): Promise<BreakerView> => {
    const r = await request(`http://127.0.0.1:${gw.gw.adminPort}/clusters`);
    const all = (await r.body.json()) as Array<{ name: string; circuitBreakers: BreakerView }>;
    const c = all.find((x) => x.name === cluster);
    assert.ok(c, `cluster ${cluster} on /clusters`);
    return c.circuitBreakers;
  };

  before(async () => {
    const hold = (_req: unknown, res: ServerResponse): boolean => {
      held.push(res);
      return true;
    };
    slow = await startUpstream('slow', hold);
    capped = await startUpstream('capped', hold);
    // 503 to every attempt but a request's fourth.
    failsThrice = await startUpstream('fails-thrice', (req, res) => {
      if (req.headers['x-envoy-attempt-count'] === '4') return false;
      res.writeHead(503, { 'content-length': '0' }).end();
      return true;
    });
    gw = await startTestGateway({
      'gateway.yaml': gatewayYaml(['slow.example.com', 'capped.example.com', 'impatient.example.com', 'retries.example.com']),
      'services.yaml': [serviceYaml('slow', [{ pod: 'slow-1', port: slow.port }]), serviceYaml('capped', [{ pod: 'capped-1', port: capped.port }]), serviceYaml('fails-thrice', [{ pod: 'ft-1', port: failsThrice.port }])].join('---\n'),
      'rules.yaml': `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: slow}
spec:
  host: slow
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1, connectTimeout: 2s}
      http: {http1MaxPendingRequests: 1}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: capped}
spec:
  host: capped
  trafficPolicy:
    connectionPool:
      http: {http2MaxRequests: 1}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: fails-thrice}
spec: {host: fails-thrice, trafficPolicy: {connectionPool: {http: {maxRetries: 1}}}}
`,
      'vs.yaml': `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: routes}
spec:
  hosts: [slow.example.com, capped.example.com, impatient.example.com, retries.example.com]
  gateways: [gw]
  http:
  - match: [{authority: {exact: retries.example.com}}]
    retries: {attempts: 3, retryOn: 5xx}
    route: [{destination: {host: fails-thrice}}]
  - match: [{authority: {exact: capped.example.com}}]
    route: [{destination: {host: capped}}]
  - match: [{authority: {exact: impatient.example.com}}]
    timeout: 0.2s
    route: [{destination: {host: slow}}]
  - route: [{destination: {host: slow}}]
`,
    });
  });

  after(async () => {
    answerAll();
    await gw.close();
    await Promise.all([slow.close(), capped.close(), failsThrice.close()]);
  });

  const SLOW = 'outbound|80||slow.default.svc.cluster.local';

  it('beyond maxConnections one request waits; the next is turned away with 503 UO at once', async () => {
    const first = gw.get('slow.example.com', '/1');
    await eventually(async () => held.length === 1);
    const second = gw.get('slow.example.com', '/2');
    await eventually(async () => (await breaker(SLOW)).pending === 1);

    const third = await gw.get('slow.example.com', '/3');
    assert.equal(third.status, 503);
    assert.equal(third.text, OVERFLOW_BODY);
    assert.equal(third.headers.server, 'istio-envoy');
    assert.equal(slow.seen.length, 1, 'the third request never reached the upstream');

    // The held request finishes; the waiting one takes its connection.
    answerAll();
    assert.equal((await first).status, 200);
    await eventually(async () => held.length === 1);
    answerAll();
    const done: Reply = await second;
    assert.equal(done.status, 200);
    assert.deepEqual(slow.seen.map((e) => e.url), ['/1', '/2']);

    const b = await breaker(SLOW);
    assert.equal(b.maxConnections, 1);
    assert.equal(b.maxPendingRequests, 1);
    assert.deepEqual({ connections: b.connections, pending: b.pending, requests: b.requests }, { connections: 0, pending: 0, requests: 0 });
    assert.equal(b.overflows.pending, 1);
  });

  it('the route timeout ends a wait for a connection: 504 UT, and the wait leaves the queue', async () => {
    const first = gw.get('slow.example.com', '/held');
    await eventually(async () => held.length === 1);
    const waited = await gw.get('impatient.example.com', '/waits');
    assert.equal(waited.status, 504);
    assert.equal(waited.text, 'upstream request timeout');
    const b = await breaker(SLOW);
    assert.deepEqual({ connections: b.connections, pending: b.pending }, { connections: 1, pending: 0 });
    answerAll();
    assert.equal((await first).status, 200);
    assert.equal(slow.seen.filter((e) => e.url === '/waits').length, 0);
  });

  it('http2MaxRequests bounds the requests in flight', async () => {
    const first = gw.get('capped.example.com', '/a');
    await eventually(async () => held.length === 1);
    const second = await gw.get('capped.example.com', '/b');
    assert.equal(second.status, 503);
    assert.equal(second.text, OVERFLOW_BODY);
    answerAll();
    assert.equal((await first).status, 200);
    assert.equal((await breaker('outbound|80||capped.default.svc.cluster.local')).overflows.requests, 1);
  });

  it('counters survive a configuration reload', async () => {
    const first = gw.get('slow.example.com', '/r1');
    await eventually(async () => held.length === 1);
    const version = gw.gw.holder.current()!.version;
    await gw.write('extra.yaml', serviceYaml('unrelated', []));
    await eventually(async () => gw.gw.holder.current()!.version > version);

    // The connection held from before the reload still counts against maxConnections.
    const second = gw.get('slow.example.com', '/r2');
    await eventually(async () => (await breaker(SLOW)).pending === 1);
    const third = await gw.get('slow.example.com', '/r3');
    assert.equal(third.status, 503);
    answerAll();
    assert.equal((await first).status, 200);
    await eventually(async () => held.length === 1);
    answerAll();
    assert.equal((await second).status, 200);
  });

  it('maxRetries bounds retries in flight, not a request’s retries one after another', async () => {
    // Each retry's slot passes to the next (Envoy gives the previous retry back before counting the
    // next): maxRetries 1 lets one request use all three of its retries.
    const r = await gw.get('retries.example.com', '/again');
    assert.equal(r.status, 200);
    assert.equal(failsThrice.seen.at(-1)?.headers['x-envoy-attempt-count'], '4');
    assert.equal(failsThrice.seen.length, 4);
    const b = await breaker('outbound|80||fails-thrice.default.svc.cluster.local');
    assert.equal(b.retries, 0, 'no retry slot is left held');
    assert.equal(b.overflows.retries, 0);
  });
});
