// Istio's "Customizing Istio Metrics" and "Envoy Access Logs" tasks with the Telemetry API, their
// YAML unchanged (test/fixtures/istio-tasks/telemetry/; the namespace-less Telemetry gets the
// namespace `kubectl apply -n foo` gives it), on the sleep/httpbin mesh in foo:
// - tagOverrides add destination_port and request_host to istio_requests_total; a disabled
//   REQUEST_COUNT leaves the other metrics counting;
// - the `envoy` provider writes Envoy's default text line for sleep's call to /status/418, and a
//   filter `response.code >= 400` keeps only the failed requests.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from './helpers/gateway.js';
import { repoPath } from './helpers/route-table.js';
import { scrapeSamples } from './helpers/prometheus-text.js';
import { startTaskMesh, type TaskMesh } from './helpers/task-mesh.js';

const task = (file: string): Promise<string> => readFile(repoPath(`test/fixtures/istio-tasks/telemetry/${file}`), 'utf8');

describe('Telemetry API tasks: metrics and access logs', () => {
  let mesh: TaskMesh;
  let logDir: string;
  const sleepLog = (): Promise<string[]> => readFile(join(logDir, 'sleep.log'), 'utf8').then((t) => t.split('\n').filter(Boolean), () => []);

  before(async () => {
    logDir = await mkdtemp(join(tmpdir(), 'meshgate-task-log-'));
    // The sleep proxy's stdout is a file here; the Telemetry decides whether it gets lines.
    mesh = await startTaskMesh(['foo'], [], (workload) => (workload === 'httpbin' ? { metricsPort: 0 } : { accessLog: join(logDir, 'sleep.log') }));
  });
  after(async () => {
    await mesh?.close();
    await rm(logDir, { recursive: true, force: true });
  });

  it('namespace-metrics: istio_requests_total gains destination_port and request_host', async () => {
    await mesh.apply('metrics.yaml', (await task('namespace-metrics.yaml')).replace('  name: namespace-metrics\n', '  name: namespace-metrics\n  namespace: foo\n'));
    assert.equal((await mesh.curl('foo', 'http://httpbin.foo:8000/status/418')).status, 418);
    await eventually(async () => (await scrapeSamples(mesh.httpbinSidecars.get('foo')!.metricsPort, 'istio_requests_total')).some((s) => s.labels['response_code'] === '418'));
    // The port the caller dialled: the endpoint's, here the sidecar's inbound port (under capture, httpbin's own).
    const port = mesh.httpbinSidecars.get('foo')!.inboundPort;
    const samples = await scrapeSamples(mesh.httpbinSidecars.get('foo')!.metricsPort, 'istio_requests_total');
    const teapot = samples.find((s) => s.labels['response_code'] === '418');
    assert.ok(teapot, JSON.stringify(samples));
    assert.equal(teapot.labels['destination_port'], String(port));
    assert.equal(teapot.labels['request_host'], 'httpbin.foo:8000');
    assert.equal(teapot.labels['reporter'], 'destination');
  });

  it('remove-request-count: the 200 is counted in the duration, not in istio_requests_total', async () => {
    await mesh.remove('metrics.yaml');
    await mesh.apply('remove.yaml', await task('remove-request-count.yaml'));
    const metricsPort = mesh.httpbinSidecars.get('foo')!.metricsPort;
    const ok = (name: string) => async (): Promise<boolean> => (await scrapeSamples(metricsPort, name)).some((s) => s.labels['response_code'] === '200');
    assert.equal((await mesh.curl('foo', 'http://httpbin.foo:8000/status/200')).status, 200);
    // The server side counts when its exchange ends, which may be just after the client has the answer.
    await eventually(ok('istio_request_duration_milliseconds_count'));
    assert.equal(await ok('istio_requests_total')(), false);
    await mesh.remove('remove.yaml');
  });

  it('the envoy provider: Envoy\'s default line for GET /status/418', async () => {
    await mesh.apply('logging.yaml', await task('access-log-default.yaml'));
    const r = await mesh.curl('foo', 'http://httpbin.foo:8000/status/418', { headers: { 'user-agent': 'curl/8.5.0', 'x-request-id': 'teapot-418' } });
    assert.equal(r.status, 418);
    await eventually(async () => (await sleepLog()).some((l) => l.includes('teapot-418')));
    const line = (await sleepLog()).find((l) => l.includes('teapot-418'))!;
    assert.match(line, /^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] "GET \/status\/418 HTTP\/1\.1" 418 - via_upstream - "-" 0 \d+ \d+ \d+ "-" "curl\/8\.5\.0" "teapot-418" "httpbin\.foo:8000" "127\.0\.0\.1:\d+" outbound\|8000\|\|httpbin\.foo\.svc\.cluster\.local 127\.0\.0\.1:\d+ \S+ 127\.0\.0\.1:\d+ - default$/);
  });

  it('a filter response.code >= 400 logs the 418 and not the 200', async () => {
    await mesh.apply('logging.yaml', await task('access-log-filter.yaml'));
    assert.equal((await mesh.curl('foo', 'http://httpbin.foo:8000/status/200', { headers: { 'x-request-id': 'fine-200' } })).status, 200);
    assert.equal((await mesh.curl('foo', 'http://httpbin.foo:8000/status/418', { headers: { 'x-request-id': 'filtered-418' } })).status, 418);
    await eventually(async () => (await sleepLog()).some((l) => l.includes('filtered-418')));
    assert.equal((await sleepLog()).some((l) => l.includes('fine-200')), false);
  });
});
