// gRPC message counters (docs/reference/metrics.md): istio_request_messages_total and
// istio_response_messages_total count the length-prefixed messages of gRPC calls both ways, whatever
// the chunking, for gRPC requests only, with the who-and-where labels Istio gives them; checked with a
// real @grpc/grpc-js client and server through the gateway (unary, server stream, client stream).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GrpcMessageCounter } from '../src/core/telemetry/grpc-messages.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { echoClient, grpc, startEchoServer, unary, type EchoClient, type EchoServer } from './helpers/grpc.js';
import { scrape, samplesOf } from './helpers/prometheus-text.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

function frame(len: number, flag = 0): Buffer {
  const b = Buffer.alloc(5 + len, 7);
  b[0] = flag;
  b.writeUInt32BE(len, 1);
  return b;
}

describe('counting gRPC messages in a body', () => {
  it('counts prefixes across any split, including empty and large messages', () => {
    const body = Buffer.concat([frame(0), frame(3), frame(70_000, 1), frame(1)]);
    for (const size of [1, 2, 4, 5, 6, 7, 1000, body.length]) {
      const c = new GrpcMessageCounter();
      for (let i = 0; i < body.length; i += size) c.feed(body.subarray(i, i + size));
      assert.equal(c.count, 4, `chunks of ${size}`);
    }
  });

  it('counts a message once its prefix arrived, before its body has', () => {
    const c = new GrpcMessageCounter();
    c.feed(frame(10).subarray(0, 5));
    assert.equal(c.count, 1);
  });
});

describe('istio_request_messages_total and istio_response_messages_total through the gateway', () => {
  let echo: EchoServer;
  let plain: Upstream;
  let gw: TestGateway;
  let client: EchoClient;

  before(async () => {
    echo = await startEchoServer();
    plain = await startUpstream('plain');
    gw = await startTestGateway({
      'gw.yaml': gatewayYaml(['grpc.example.com', 'plain.example.com']),
      'svc.yaml': [serviceYaml('echo', [{ pod: 'echo-1', port: echo.port }], { portName: 'grpc' }), serviceYaml('plain', [{ pod: 'plain-1', port: plain.port }])].join('---\n'),
      'vs.yaml': `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo}
spec:
  hosts: [grpc.example.com]
  gateways: [gw]
  http:
  - route: [{destination: {host: echo}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: plain}
spec:
  hosts: [plain.example.com]
  gateways: [gw]
  http:
  - route: [{destination: {host: plain}}]
`,
    }, { gateway: { metricsPort: 0 } });
    client = echoClient(gw.port, 'grpc.example.com');
  });

  after(async () => {
    client?.close();
    await gw?.close();
    await echo?.close();
    await plain?.close();
  });

  it('counts every message of unary and streaming calls, and nothing for plain HTTP', async () => {
    for (let i = 0; i < 2; i++) assert.equal((await unary(client, { message: `m${i}` })).err, null);
    const ticks = await new Promise<number>((resolve, reject) => {
      let n = 0;
      const s = client.serverStream({ count: 5, intervalMs: 1 });
      s.on('data', () => n++);
      s.on('error', reject);
      s.on('end', () => resolve(n));
    });
    assert.equal(ticks, 5);
    const seen = await new Promise<number>((resolve, reject) => {
      const up = client.clientStream(new grpc.Metadata(), {}, (err, reply) => (err ? reject(err) : resolve(reply!.seen)));
      for (let i = 0; i < 4; i++) up.write({ message: `part ${i}` });
      up.end();
    });
    assert.equal(seen, 4);
    assert.equal((await gw.get('plain.example.com', '/')).status, 200);

    const text = await scrape(gw.gw.metricsPort);
    const sum = (name: string): number => samplesOf(text, name).reduce((n, s) => n + s.value, 0);
    // Requests: 2 unary + 1 server-stream request + 4 client-stream messages; responses: 2 + 5 + 1.
    assert.equal(sum('istio_request_messages_total'), 7);
    assert.equal(sum('istio_response_messages_total'), 8);
    for (const s of [...samplesOf(text, 'istio_request_messages_total'), ...samplesOf(text, 'istio_response_messages_total')]) {
      assert.equal(s.labels.reporter, 'source');
      assert.equal(s.labels.destination_service, 'echo.default.svc.cluster.local');
      assert.equal(s.labels.destination_workload, 'echo');
      // Istio reports these before it knows the answer: no protocol, code, status, flags or security labels.
      for (const l of ['request_protocol', 'response_code', 'grpc_response_status', 'response_flags', 'connection_security_policy']) assert.equal(l in s.labels, false, l);
    }
    const grpcCalls = samplesOf(text, 'istio_requests_total').filter((s) => s.labels.request_protocol === 'grpc');
    assert.equal(grpcCalls.reduce((n, s) => n + s.value, 0), 4);
    assert.ok(grpcCalls.every((s) => s.labels.grpc_response_status === '0'));
  });
});
