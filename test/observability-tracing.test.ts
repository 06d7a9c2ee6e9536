// Distributed tracing across the demo mesh: with the mesh config's OpenTelemetry provider pointing at
// an OTLP/HTTP receiver on loopback, one request through gateway → product sidecar → product app →
// product sidecar → user sidecar yields one trace whose spans link parent to child across every
// hop, with Istio's span names and tags. Plus the trace headers on the wire (W3C, B3), sampling
// decisions, the Telemetry/mesh-config policy and its validation.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { eventually, send } from './helpers/gateway.js';
import { startTestDemoMesh, type TestDemoMesh } from './helpers/demo-mesh.js';
import { extractContext, injectContext } from '../src/core/telemetry/trace-context.js';
import { telemetryPolicyFor } from '../src/core/telemetry/telemetry-policy.js';
import { logsRequest, type AccessLogPolicy, type AccessLogSides } from '../src/core/telemetry/access-log-policy.js';

import type { RequestRecord } from '../src/core/telemetry/access-log.js';
import { parseConfigText } from '../src/core/config/load.js';
import { validateAll } from '../src/core/config/validate.js';
import { attr, meshConfig, startReceiver, type OtlpSpan } from './helpers/otlp-receiver.js';

/** The proxy's own log (its first file log), or both sides off when it writes none. */
const own = (p: AccessLogPolicy): AccessLogSides => p.files[0] ?? { client: { enabled: false }, server: { enabled: false } };

describe('a trace across the demo mesh', () => {
  let demo: TestDemoMesh;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  before(async () => {
    receiver = await startReceiver();
    demo = await startTestDemoMesh({}, (dir) => writeFile(join(dir, 'mesh-config.yaml'), meshConfig(receiver.port, 100)));
  });
  after(async () => {
    await demo?.close();
    receiver?.server.close();
  });

  it('one request, one trace: gateway → product sidecar in → product sidecar out → user sidecar in, parent links across the hops', async () => {
    const r = await send(demo.port, 'product.example.com', '/', { 'x-request-id': 'trace-me-1' });
    assert.equal(r.status, 200);
    const mine = (): OtlpSpan[] => receiver.spans.filter((s) => attr(s, 'guid:x-request-id') === 'trace-me-1');
    await eventually(async () => mine().length >= 4, 20_000);
    const spans = mine();
    assert.equal(spans.length, 4, spans.map((s) => s.name).join(', '));
    assert.equal(new Set(spans.map((s) => s.traceId)).size, 1, 'one trace');
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const roots = spans.filter((s) => !s.parentSpanId || !byId.has(s.parentSpanId));
    assert.equal(roots.length, 1, 'one root: the gateway');
    const gateway = roots[0]!;
    assert.equal(attr(gateway, 'istio.canonical_service'), 'istio-ingressgateway');
    assert.equal(attr(gateway, 'istio.canonical_revision'), 'latest');
    assert.match(gateway.name, /^product-service\.default\.svc\.cluster\.local:\d+\/\*$/);
    const child = (p: OtlpSpan): OtlpSpan => {
      const c = spans.filter((s) => s.parentSpanId === p.spanId);
      assert.equal(c.length, 1, `one child of ${p.name}`);
      return c[0]!;
    };
    const productIn = child(gateway);
    assert.equal(attr(productIn, 'istio.canonical_service'), 'product-service');
    assert.equal(productIn.kind, 2, 'SERVER');
    const productOut = child(productIn);
    assert.equal(attr(productOut, 'istio.canonical_service'), 'product-service');
    assert.equal(productOut.kind, 3, 'CLIENT');
    assert.match(productOut.name, /^user-service\.default\.svc\.cluster\.local:\d+\/\*$/);
    assert.match(String(attr(productOut, 'upstream_cluster')), /^outbound\|\d+\|\|user-service\.default\.svc\.cluster\.local$/);
    const userIn = child(productOut);
    assert.equal(attr(userIn, 'istio.canonical_service'), 'user-service');
    assert.equal(attr(userIn, 'http.status_code'), '200');
    assert.equal(attr(userIn, 'response_flags'), '-');
    assert.match(String(attr(userIn, 'node_id')), /^sidecar~/);
    assert.equal(attr(gateway, 'http.url'), 'http://product.example.com/');
  });

  it('honours a caller\'s decision not to sample', async () => {
    const before = receiver.spans.length;
    const r = await send(demo.port, 'product.example.com', '/', { 'x-request-id': 'not-sampled', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00' });
    assert.equal(r.status, 200);
    // The app saw the same trace, with a new parent and the decision kept.
    const seen = (r.json<{ headers: IncomingHttpHeaders }>()).headers;
    assert.match(String(seen.traceparent), /^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-00$/);
    assert.notEqual(String(seen.traceparent).split('-')[2], 'b7ad6b7169203331');
    assert.equal(seen['x-b3-sampled'], '0');
    // A sampled request after it is exported, and the unsampled one never is.
    await send(demo.port, 'product.example.com', '/', { 'x-request-id': 'after' });
    await eventually(async () => receiver.spans.some((s) => attr(s, 'guid:x-request-id') === 'after'), 20_000);
    assert.ok(receiver.spans.length > before);
    assert.ok(!receiver.spans.some((s) => attr(s, 'guid:x-request-id') === 'not-sampled'));
  });
});

describe('trace headers', () => {
  it('reads W3C first, then b3, then x-b3-*; 64-bit B3 ids widen', () => {
    assert.deepEqual(extractContext({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', 'x-b3-traceid': 'aaaaaaaaaaaaaaaa', 'x-b3-spanid': 'bbbbbbbbbbbbbbbb' }), { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', sampled: true });
    assert.deepEqual(extractContext({ b3: '80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90' }), { traceId: '80f198ee56343ba864fe8b2a57d3eff7', spanId: 'e457b5a2e4d86bd1', sampled: true });
    assert.deepEqual(extractContext({ 'x-b3-traceid': '463ac35c9f6413ad', 'x-b3-spanid': 'a2fb4a1d1a96d312', 'x-b3-sampled': '0' }), { traceId: '0000000000000000463ac35c9f6413ad', spanId: 'a2fb4a1d1a96d312', sampled: false });
    assert.equal(extractContext({ traceparent: '00-00000000000000000000000000000000-00f067aa0ba902b7-01' }), undefined);
    assert.equal(extractContext({ traceparent: 'garbage' }), undefined);
  });

  it('writes both formats with this hop as the parent', () => {
    const h: IncomingHttpHeaders = { b3: 'x', 'x-b3-flags': '1' };
    injectContext(h, { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), sampled: true, tracestate: 'k=v' }, 'c'.repeat(16));
    assert.equal(h.traceparent, `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`);
    assert.equal(h.tracestate, 'k=v');
    assert.equal(h['x-b3-parentspanid'], 'c'.repeat(16));
    assert.equal(h['x-b3-sampled'], '1');
    assert.equal(h['x-b3-flags'], undefined);
    assert.equal(h.b3, `${'a'.repeat(32)}-${'b'.repeat(16)}-1-${'c'.repeat(16)}`);
  });
});

describe('Telemetry and the mesh config', () => {
  const yaml = `${meshConfig(4318, 5)}---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  tracing:
  - randomSamplingPercentage: 10
  metrics:
  - overrides:
    - match: {metric: REQUEST_SIZE}
      disabled: true
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: shop, namespace: shop}
spec:
  accessLogging:
  - disabled: true
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: cart, namespace: shop}
spec:
  selector: {matchLabels: {app: cart}}
  tracing:
  - randomSamplingPercentage: 50
  metrics:
  - overrides:
    - match: {metric: REQUEST_COUNT}
      tagOverrides: {source_principal: {operation: REMOVE}}
`;

  it('workload over namespace over root namespace over the mesh config', () => {
    const { resources } = parseConfigText(yaml, 'telemetry.yaml');
    const cart = telemetryPolicyFor(resources, { namespace: 'shop', labels: { app: 'cart' } });
    assert.equal(cart.samplingPercent, 50);
    assert.deepEqual([own(cart.accessLog).client.enabled, own(cart.accessLog).server.enabled], [false, false]);
    assert.equal(cart.traceProvider?.url, 'http://127.0.0.1:4318/v1/traces');
    for (const mode of [cart.metrics.client, cart.metrics.server]) {
      assert.ok(mode.disabled.has('istio_request_bytes'));
      assert.ok(mode.tags.get('istio_requests_total')?.removed.has('source_principal'));
    }
    const other = telemetryPolicyFor(resources, { namespace: 'default', labels: { app: 'x' } });
    assert.equal(other.samplingPercent, 10);
    assert.deepEqual([own(other.accessLog).client.enabled, own(other.accessLog).server.enabled], [true, true]);
    const noTelemetry = telemetryPolicyFor(resources.filter((r) => r.kind === 'ConfigMap'), { namespace: 'default', labels: {} });
    assert.equal(noTelemetry.samplingPercent, 5);
  });

  it("access logging as Istio's Telemetry API task writes it: match.mode SERVER, and filter expressions", () => {
    const tasks = `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: default-exception-logging, namespace: istio-system}
spec:
  accessLogging:
  - providers: [{name: envoy}]
    filter:
      expression: "response.code >= 400 || xds.cluster_name == 'BlackHoleCluster' ||  xds.cluster_name == 'PassthroughCluster' "
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: disable-httpbin-logging, namespace: default}
spec:
  selector: {matchLabels: {app: httpbin}}
  accessLogging:
  - providers: [{name: envoy}]
    match: {mode: SERVER}
    disabled: true
`;
    const { resources, problems } = parseConfigText(tasks, 'telemetry.yaml');
    assert.deepEqual([...problems, ...validateAll(resources).problems], [], 'the filter compiles: no warning');
    const record = (reporter: 'source' | 'destination', responseCode: number, upstreamCluster = 'outbound|8000||httpbin.default.svc.cluster.local') =>
      ({ reporter, responseCode, upstreamCluster, path: '/', method: 'GET', authority: 'httpbin:8000' }) as unknown as RequestRecord;
    const httpbin = telemetryPolicyFor(resources, { namespace: 'default', labels: { app: 'httpbin' } }).accessLog;
    assert.equal(logsRequest(own(httpbin), record('destination', 500)), false, 'SERVER disabled for httpbin');
    assert.equal(logsRequest(own(httpbin), record('source', 503)), true, 'its CLIENT side still logs, with the mesh-wide filter');
    assert.equal(logsRequest(own(httpbin), record('source', 200)), false);
    const sleep = telemetryPolicyFor(resources, { namespace: 'default', labels: { app: 'sleep' } }).accessLog;
    assert.equal(logsRequest(own(sleep), record('destination', 404)), true);
    assert.equal(logsRequest(own(sleep), record('source', 200)), false);
    assert.equal(logsRequest(own(sleep), record('source', 200, 'PassthroughCluster')), true);
    // An expression meshgate cannot evaluate is a warning, and every request is then logged.
    const bad = parseConfigText(tasks.replace("response.code >= 400 ||", "size(request.headers) > 3 ||"), 'telemetry.yaml').resources;
    assert.match(validateAll(bad).problems.map((p) => p.message).join('\n'), /expression not supported .*every request is logged/);
    assert.equal(logsRequest(own(telemetryPolicyFor(bad, { namespace: 'default', labels: { app: 'sleep' } }).accessLog), record('source', 200)), true);
  });

  it('validation points at file:line: a bad sampling, an unknown provider, an unknown metric', () => {
    const bad = `apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    defaultConfig:
      tracing: {sampling: 250}
    defaultProviders:
      tracing: [nowhere]
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: t, namespace: default}
spec:
  metrics:
  - overrides:
    - match: {metric: REQUEST_COLOUR}
`;
    const { resources } = parseConfigText(bad, 'telemetry.yaml');
    const { problems } = validateAll(resources);
    const text = problems.map((p) => `${p.file}:${p.line} ${p.resource} ${p.field}: ${p.message}`);
    assert.ok(text.some((t) => /^telemetry\.yaml:7 ConfigMap istio-system\/istio data\.mesh\.defaultConfig\.tracing\.sampling: sampling is a percentage/.test(t)), text.join('\n'));
    assert.ok(text.some((t) => /^telemetry\.yaml:9 .* data\.mesh\.defaultProviders\.tracing\[0\]: no extensionProvider is named 'nowhere'/.test(t)), text.join('\n'));
    assert.ok(text.some((t) => /^telemetry\.yaml:17 Telemetry default\/t .*unknown metric 'REQUEST_COLOUR'/.test(t)), text.join('\n'));
  });
});
