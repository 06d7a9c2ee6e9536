// Istio's "OpenTelemetry" access-log task on sleep and httpbin, each beside its sidecar: the task's
// istio ConfigMap (extensionProviders `otel`: envoyOtelAls) and Telemetry `sleep-logging` (selector
// app: sleep, provider otel) from test/fixtures/istio-tasks/otel-logs/, and an OTLP gRPC collector on
// loopback. The one change: the provider's service and port name that collector's address (the
// exporter dials its service by name, which only a cluster's DNS answers).
// - `curl -sS -v httpbin:8000/status/418` from sleep gets httpbin's 418 and its teapot;
// - the collector receives sleep's line for it, in Istio's default text format
//   (`"GET /status/418 HTTP/1.1" 418 - via_upstream - "-" 0 135 ...`), from the sidecar's node;
// - httpbin's sidecar, which the Telemetry does not select, sends none.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { eventually } from './helpers/gateway.js';
import { startOtlpGrpcCollector, type OtlpGrpcCollector } from './helpers/otlp-grpc-collector.js';
import { repoPath } from './helpers/route-table.js';
import { startTaskMesh, type TaskMesh } from './helpers/task-mesh.js';

const fixture = (file: string): Promise<string> => readFile(repoPath(`test/fixtures/istio-tasks/otel-logs/${file}`), 'utf8');

describe('OpenTelemetry access logs (envoyOtelAls, sleep-logging)', () => {
  let mesh: TaskMesh;
  let collector: OtlpGrpcCollector;

  before(async () => {
    collector = await startOtlpGrpcCollector();
    mesh = await startTaskMesh(['default']);
    const configMap = (await fixture('istio-configmap.yaml')).replace('service: opentelemetry-collector.istio-system.svc.cluster.local', 'service: 127.0.0.1').replace('port: 4317', `port: ${collector.port}`);
    await mesh.apply('istio.yaml', configMap);
    await mesh.apply('sleep-logging.yaml', await fixture('sleep-logging.yaml'));
  });
  after(async () => {
    await mesh?.close();
    await collector?.close();
  });

  it('sleep → httpbin /status/418: the teapot, and sleep\'s line at the collector, none from httpbin', async () => {
    const r = await mesh.curl('default', 'http://httpbin:8000/status/418', { headers: { 'user-agent': 'curl/8.5.0', 'x-request-id': 'otel-task-418' } });
    assert.equal(r.status, 418);
    assert.match(r.text, /-=\[ teapot \]=-/);
    const ours = () => collector.logs.filter((l) => l.body.includes('"otel-task-418"'));
    await eventually(async () => ours().length > 0);
    const [log] = ours();
    assert.match(
      log!.body,
      /^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] "GET \/status\/418 HTTP\/1\.1" 418 - via_upstream - "-" 0 \d+ \d+ \d+ "-" "curl\/8\.5\.0" "otel-task-418" "httpbin:8000" "127\.0\.0\.1:\d+" outbound\|8000\|\|httpbin\.default\.svc\.cluster\.local /,
    );
    assert.equal(log!.resource['log_name'], 'otel_envoy_accesslog');
    assert.match(log!.resource['node_name'] ?? '', /^sidecar~/);
    // httpbin's sidecar logs nothing there: one more request, and still only sleep's lines.
    await mesh.curl('default', 'http://httpbin:8000/status/418', { headers: { 'x-request-id': 'otel-task-second' } });
    await eventually(async () => collector.logs.some((l) => l.body.includes('"otel-task-second"')));
    // Every record is sleep's, the client side (`outbound|...`); httpbin's would name `inbound|8000||`.
    assert.equal(collector.logs.length, 2, collector.logs.map((l) => l.body).join(''));
    for (const l of collector.logs) assert.match(l.body, / outbound\|8000\|\|httpbin\.default\.svc\.cluster\.local /);
  });
});
