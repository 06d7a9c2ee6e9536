// Istio's "Dry Run" task on sidecars: sleep calls httpbin in foo, whose DENY of /headers carries
// `istio.io/dry-run: "true"` (test/fixtures/istio-tasks/authz-dry-run/, namespace foo added as the
// task's `kubectl apply -n foo` adds it). Every request passes (200), and the shadow result shows
// where the task looks for it: httpbin's proxy log (`shadow denied, matched policy
// ns[foo]-policy[deny-path-headers]-rule[0]`), the Prometheus series
// `envoy_http_inbound_0_0_0_0_<port>_rbac{authz_dry_run_action="deny",authz_dry_run_result="denied"}`,
// and the span's `istio.authorization.dry_run.deny_policy.*` tags in Zipkin.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { eventually } from './helpers/gateway.js';
import { repoPath } from './helpers/route-table.js';
import { scrapeSamples } from './helpers/prometheus-text.js';
import { startTaskMesh, type TaskMesh } from './helpers/task-mesh.js';
import { startZipkin, zipkinMeshConfig, type ZipkinSpan } from './helpers/otlp-receiver.js';

const RULE = 'ns[foo]-policy[deny-path-headers]-rule[0]';

describe('Authorization: Dry Run', () => {
  let mesh: TaskMesh;
  let zipkin: Awaited<ReturnType<typeof startZipkin>>;
  const lines: string[] = [];
  let spans: ZipkinSpan[] = [];

  before(async () => {
    zipkin = await startZipkin();
    spans = zipkin.spans;
    const httpbinLog = pino({ level: 'info' }, new Writable({ write(chunk: Buffer, _enc, done) { lines.push(chunk.toString()); done(); } }));
    mesh = await startTaskMesh(['foo'], [], (workload) => (workload === 'httpbin' ? { metricsPort: 0, logger: httpbinLog } : {}));
    await mesh.apply('mesh.yaml', zipkinMeshConfig(zipkin.port));
  });
  after(async () => {
    await mesh?.close();
    zipkin?.server.close();
  });

  it('the dry-run DENY lets all 20 requests through', async () => {
    const policy = (await readFile(repoPath('test/fixtures/istio-tasks/authz-dry-run/deny-path-headers.yaml'), 'utf8')).replace('  name: deny-path-headers\n', '  name: deny-path-headers\n  namespace: foo\n');
    await mesh.apply('dry-run.yaml', policy);
    const codes: number[] = [];
    for (let i = 0; i < 20; i++) codes.push((await mesh.curl('foo', 'http://httpbin.foo:8000/headers', { headers: { 'X-B3-Sampled': '1' } })).status);
    assert.deepEqual(codes, new Array<number>(20).fill(200));
  });

  it('httpbin\'s proxy log says shadow denied, naming the rule, for each request', () => {
    assert.equal(lines.filter((l) => l.includes(`rbac shadow denied, matched policy ${RULE}`)).length, 20);
  });

  it('the Prometheus series counts 20 shadow denials on the inbound listener of httpbin\'s port', async () => {
    const port = mesh.httpbin.get('foo')!.port;
    const series = (): ReturnType<typeof scrapeSamples> => scrapeSamples(mesh.httpbinSidecars.get('foo')!.metricsPort, `envoy_http_inbound_0_0_0_0_${port}_rbac`);
    // The server side counts when its exchange ends, which may be just after the client has the answer.
    await eventually(async () => (await series()).reduce((n, s) => n + s.value, 0) === 20);
    const samples = await series();
    assert.deepEqual(samples.map((s) => [s.labels, s.value]), [[{ authz_dry_run_action: 'deny', authz_dry_run_result: 'denied' }, 20]]);
  });

  it('httpbin\'s spans carry the dry-run tags', async () => {
    await eventually(async () => spans.some((s) => s.tags['istio.authorization.dry_run.deny_policy.name'] !== undefined));
    const s = spans.find((x) => x.tags['istio.authorization.dry_run.deny_policy.name'] !== undefined)!;
    assert.equal(s.tags['istio.authorization.dry_run.deny_policy.name'], RULE);
    assert.equal(s.tags['istio.authorization.dry_run.deny_policy.result'], 'denied');
  });
});
