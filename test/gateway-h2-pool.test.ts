// Integration: a DestinationRule's connectionPool applies to HTTP/2 upstreams (service ports named
// http2-*/grpc-*) as it does to HTTP/1 ones: a connect that never completes gives up after
// connectTimeout with 503 UF, a session carries at most maxRequestsPerConnection requests, and a
// session left idle for idleTimeout is closed. Sessions are counted on the upstream's side.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createH2cServer, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { blackholePort } from './helpers/upstream.js';
import { eventually, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';

const HOST = 'h2.example.com';

interface H2Upstream {
  readonly port: number;
  sessions: number;
  closed: number;
  close(): Promise<void>;
}

async function h2Upstream(): Promise<H2Upstream> {
  const server: Http2Server = createH2cServer();
  const u = { port: 0, sessions: 0, closed: 0, close: () => new Promise<void>((r) => server.close(() => r())) };
  server.on('session', (s) => {
    u.sessions++;
    s.on('close', () => u.closed++);
  });
  server.on('stream', (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'text/plain' });
    stream.end('h2 ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  u.port = (server.address() as AddressInfo).port;
  return u;
}

describe('connectionPool on HTTP/2 upstream sessions', () => {
  let capped: H2Upstream, idle: H2Upstream;
  let hole: Awaited<ReturnType<typeof blackholePort>>;
  let gw: TestGateway;

  before(async () => {
    capped = await h2Upstream();
    idle = await h2Upstream();
    hole = await blackholePort();
    const h2 = { portName: 'http2-web' };
    gw = await startTestGateway({
      'gateway.yaml': gatewayYaml([HOST]),
      'services.yaml': [
        serviceYaml('capped', [{ pod: 'capped-1', port: capped.port }], h2),
        serviceYaml('idle', [{ pod: 'idle-1', port: idle.port }], h2),
        serviceYaml('unreachable', [{ pod: 'hole-1', port: hole.port }], h2),
      ].join('---\n'),
      'rules.yaml': `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: capped}
spec:
  host: capped
  trafficPolicy: {connectionPool: {http: {maxRequestsPerConnection: 2}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: idle}
spec:
  host: idle
  trafficPolicy: {connectionPool: {http: {idleTimeout: 300ms}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: unreachable}
spec:
  host: unreachable
  trafficPolicy: {connectionPool: {tcp: {connectTimeout: 300ms}}}
`,
      'vs.yaml': `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: routes}
spec:
  hosts: [${HOST}]
  gateways: [gw]
  http:
  - match: [{uri: {prefix: /capped}}]
    route: [{destination: {host: capped}}]
  - match: [{uri: {prefix: /idle}}]
    route: [{destination: {host: idle}}]
  - route: [{destination: {host: unreachable}}]
`,
    });
  });

  after(async () => {
    await gw?.close();
    await Promise.all([capped?.close(), idle?.close()]);
    hole?.close();
  });

  it('a connect that never completes gives up after connectTimeout: 503 UF', { timeout: 20_000 }, async () => {
    const r = await gw.get(HOST, '/anything');
    assert.equal(r.status, 503);
    assert.match(r.text, /^upstream connect error or disconnect\/reset before headers\. reset reason: connection failure/);
  });

  it('a session carries at most maxRequestsPerConnection requests', async () => {
    for (let i = 0; i < 6; i++) {
      const r = await gw.get(HOST, '/capped');
      assert.equal(r.status, 200);
      assert.equal(r.text, 'h2 ok');
    }
    assert.equal(capped.sessions, 3);
    await eventually(async () => capped.closed >= 2);
  });

  it('a session without requests for idleTimeout is closed', async () => {
    assert.equal((await gw.get(HOST, '/idle')).status, 200);
    assert.equal(idle.sessions, 1);
    await eventually(async () => idle.closed === 1);
    assert.equal((await gw.get(HOST, '/idle')).status, 200, 'a new session serves the next request');
    assert.equal(idle.sessions, 2);
  });
});
