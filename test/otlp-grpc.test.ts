// OTLP over gRPC, as Istio's tracing and OpenTelemetry access-log tasks configure it: an
// `opentelemetry` provider without `http` gets the gateway's spans over gRPC, an `envoyOtelAls`
// provider chosen by a Telemetry gets one OTLP log record per request (body in Istio's text format,
// the labels' operators evaluated, the request's trace ids), both at a real gRPC collector on
// loopback; through the demo mesh the sidecars send theirs too. A collector that never answers
// leaves every answer as it was, and says so once.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { eventually, send, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { blackholePort, startUpstream, type Upstream } from './helpers/upstream.js';
import { gatewayRouteYaml, gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { startOtlpGrpcCollector, type OtlpGrpcCollector } from './helpers/otlp-grpc-collector.js';
import { startTestDemoMesh, type TestDemoMesh } from './helpers/demo-mesh.js';

const HOST = 'otel.example.com';

const gateway = `${gatewayYaml([HOST])}---\n${gatewayRouteYaml([HOST])}`;

/** The mesh config of Istio's tracing and OpenTelemetry access-log tasks, at `port` (the timeout is for the dead-collector case). */
const meshConfig = (port: number, host = '127.0.0.1'): string => `apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    defaultConfig:
      tracing: {sampling: 100}
    extensionProviders:
    - name: otel-tracing
      opentelemetry:
        port: ${port}
        service: ${host}
        grpc:
          timeout: 1s
          initialMetadata: [{name: x-tenant, value: shop}]
    - name: otel
      envoyOtelAls:
        service: ${host}
        port: ${port}
        logFormat:
          labels:
            path: "%REQ(:PATH)%"
            status: "%RESPONSE_CODE%"
            tenant: "%REQ(X-TENANT)%"
            cluster: "%UPSTREAM_CLUSTER%"
    defaultProviders:
      tracing: [otel-tracing]
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-logging, namespace: istio-system}
spec:
  accessLogging:
  - providers: [{name: otel}]
`;

describe('OTLP over gRPC to a collector', () => {
  let app: Upstream;
  let collector: OtlpGrpcCollector;
  let gw: TestGateway;
  before(async () => {
    app = await startUpstream('app');
    collector = await startOtlpGrpcCollector();
    gw = await startTestGateway({ 'gw.yaml': gateway, 'svc.yaml': serviceYaml('app', [{ pod: 'app-1', port: app.port }]), 'mesh.yaml': meshConfig(collector.port) });
  });
  after(async () => {
    await gw?.close();
    await collector?.close();
    await app?.close();
  });

  it("a request's span arrives over gRPC with Istio's tags, the provider's metadata, and the trace the upstream saw", async () => {
    const r = await gw.get(HOST, '/orders?id=1', { 'x-request-id': 'grpc-span-1' });
    assert.equal(r.status, 200);
    const seen = r.json<{ headers: Record<string, string> }>().headers;
    const [, traceId, parentId] = String(seen['traceparent']).split('-');
    await eventually(async () => collector.spans.some((s) => s.attributes['guid:x-request-id'] === 'grpc-span-1'));
    const span = collector.spans.find((s) => s.attributes['guid:x-request-id'] === 'grpc-span-1')!;
    assert.equal(span.traceId, traceId);
    assert.equal(span.spanId, parentId, "the gateway's span is the upstream request's parent");
    assert.equal(span.kind, 3, 'CLIENT');
    assert.match(span.name, /^app\.default\.svc\.cluster\.local:80\/\*$/);
    assert.equal(span.attributes['http.status_code'], '200');
    assert.equal(span.attributes['http.url'], `http://${HOST}/orders?id=1`);
    assert.equal(span.attributes['istio.canonical_service'], 'istio-ingressgateway');
    assert.equal(span.resource['service.name'], 'istio-ingressgateway.istio-system', "Istio's ingress gateway's tracing service name");
    assert.equal(span.metadata['x-tenant'], 'shop', 'grpc.initialMetadata goes with every export');
  });

  it('an access-log record per request: body in Istio\'s default text format, labels evaluated, trace ids, log_name', async () => {
    const r = await gw.get(HOST, '/items/7', { 'x-request-id': 'grpc-log-1', 'x-tenant': 'blue', 'user-agent': 'otel-test/1' });
    assert.equal(r.status, 200);
    const mine = () => collector.logs.find((l) => l.body.includes('"grpc-log-1"'));
    await eventually(async () => mine() !== undefined);
    const log = mine()!;
    assert.match(
      log.body,
      /^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] "GET \/items\/7 HTTP\/1\.1" 200 - via_upstream - "-" 0 \d+ \d+ \d+ "[^"]+" "otel-test\/1" "grpc-log-1" "otel\.example\.com" "127\.0\.0\.1:\d+" outbound\|80\|\|app\.default\.svc\.cluster\.local 127\.0\.0\.1:\d+ 127\.0\.0\.1:\d+ 127\.0\.0\.1:\d+ - -\n$/,
    );
    assert.deepEqual(log.attributes, { path: '/items/7', status: '200', tenant: 'blue', cluster: 'outbound|80||app.default.svc.cluster.local' });
    assert.equal(log.resource['log_name'], 'otel_envoy_accesslog');
    assert.match(log.resource['node_name'] ?? '', /^router~/);
    const span = await (async () => {
      await eventually(async () => collector.spans.some((s) => s.attributes['guid:x-request-id'] === 'grpc-log-1'));
      return collector.spans.find((s) => s.attributes['guid:x-request-id'] === 'grpc-log-1')!;
    })();
    assert.equal(log.traceId, span.traceId);
    assert.equal(log.spanId, span.spanId);
    const start = Date.parse(log.body.slice(1, 25));
    assert.equal(Number(BigInt(log.timeUnixNano) / 1_000_000n), start, "the record's time is the request's start");
  });
});

describe('through the demo mesh, sidecars export over gRPC too', () => {
  let collector: OtlpGrpcCollector;
  let demo: TestDemoMesh;
  before(async () => {
    collector = await startOtlpGrpcCollector();
    demo = await startTestDemoMesh({}, (dir) => writeFile(join(dir, 'mesh-config.yaml'), meshConfig(collector.port)));
  });
  after(async () => {
    await demo?.close();
    await collector?.close();
  });

  it("the sidecars' spans join the gateway's trace, and every hop sends its access-log record", async () => {
    const r = await send(demo.port, 'product.example.com', '/', { 'x-request-id': 'mesh-grpc-1' });
    assert.equal(r.status, 200);
    const spans = () => collector.spans.filter((s) => s.attributes['guid:x-request-id'] === 'mesh-grpc-1');
    await eventually(async () => spans().length >= 4);
    assert.equal(new Set(spans().map((s) => s.traceId)).size, 1, 'one trace');
    const userIn = spans().find((s) => s.attributes['istio.canonical_service'] === 'user-service');
    assert.equal(userIn?.kind, 2, "user-service's sidecar: a SERVER span");
    assert.match(String(userIn?.attributes['node_id']), /^sidecar~/);
    const logs = () => collector.logs.filter((l) => l.body.includes('"mesh-grpc-1"'));
    await eventually(async () => logs().length >= 4);
    const sidecarLogs = logs().filter((l) => l.resource['node_name']?.startsWith('sidecar~'));
    assert.ok(sidecarLogs.length >= 3, `one record per sidecar hop, got ${sidecarLogs.length}`);
    assert.ok(sidecarLogs.some((l) => l.resource['cluster_name'] === 'user-service.default'));
    for (const l of logs()) assert.equal(l.traceId, spans()[0]!.traceId);
  });
});

describe('a collector that never answers', () => {
  let app: Upstream;
  let dead: Awaited<ReturnType<typeof blackholePort>>;
  let gw: TestGateway;
  const events: Array<Record<string, unknown>> = [];
  before(async () => {
    app = await startUpstream('app');
    dead = await blackholePort();
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of String(chunk).split('\n')) if (line) events.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    gw = await startTestGateway(
      { 'gw.yaml': gateway, 'svc.yaml': serviceYaml('app', [{ pod: 'app-1', port: app.port }]), 'mesh.yaml': meshConfig(dead.port) },
      { gateway: { logger: pino({ level: 'warn' }, sink) } },
    );
  });
  after(async () => {
    await gw?.close();
    dead?.close();
    await app?.close();
  });

  it('answers every request as before, and says the failed span export once, not once a batch', async () => {
    for (let i = 0; i < 30; i++) {
      const r = await gw.get(HOST, `/n/${i}`, { 'x-request-id': `dead-${i}` });
      assert.equal(r.status, 200);
      assert.equal(r.json<{ url: string }>().url, `/n/${i}`);
    }
    // The provider's 1 s timeout fails the first batch; later ones fail within the same minute.
    await eventually(async () => events.some((e) => String(e['msg']).startsWith('span export failed')));
    const said = events.filter((e) => String(e['msg']).startsWith('span export failed'));
    assert.equal(said.length, 1);
    assert.equal(said[0]!['to'], `http://127.0.0.1:${dead.port}`);
  });
});
