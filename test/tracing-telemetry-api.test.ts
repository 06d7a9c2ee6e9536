// Istio's "Configure tracing using the Telemetry API" task at a gateway, its Telemetry YAML unchanged
// (test/fixtures/istio-tasks/tracing/) and the mesh config's `zipkin` provider pointed at a Zipkin
// stand-in on loopback: randomSamplingPercentage 100 traces every request, and each kind of custom
// tag (literal, environment with its default, request header with its default) is on the span the
// gateway reports. Each file replaces the one before, as the task applies them in turn.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { eventually, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { gatewayRouteYaml, gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { repoPath } from './helpers/route-table.js';
import { telemetryPolicyFor } from '../src/core/telemetry/telemetry-policy.js';
import { parseConfigText } from '../src/core/config/load.js';
import { validateAll } from '../src/core/config/validate.js';
import { startZipkin, zipkinMeshConfig, type ZipkinSpan } from './helpers/otlp-receiver.js';

const HOST = 'app.example.com';
const task = (file: string): Promise<string> => readFile(repoPath(`test/fixtures/istio-tasks/tracing/${file}`), 'utf8');

describe('Configure tracing using the Telemetry API (zipkin provider)', () => {
  let up: Upstream;
  let gw: TestGateway;
  let zipkin: Awaited<ReturnType<typeof startZipkin>>;
  let spans: ZipkinSpan[] = [];
  const spanOf = (id: string): ZipkinSpan | undefined => spans.find((s) => s.tags['guid:x-request-id'] === id);

  /** Applies one of the task's files and waits until a request is traced under it. */
  async function apply(file: string, probe: (s: ZipkinSpan) => boolean): Promise<void> {
    await gw.write('telemetry.yaml', await task(file));
    // Spans leave in batches: any probe sent since the write may be the one that shows the file in force.
    let n = 0;
    await eventually(async () => {
      await gw.get(HOST, '/', { 'x-request-id': `${file}-probe-${n++}` });
      return spans.some((s) => s.tags['guid:x-request-id']?.startsWith(`${file}-probe-`) && probe(s));
    });
  }

  before(async () => {
    zipkin = await startZipkin();
    spans = zipkin.spans;
    up = await startUpstream('app');
    gw = await startTestGateway({
      'gw.yaml': gatewayYaml([HOST]),
      'svc.yaml': serviceYaml('app', [{ pod: 'app-0', port: up.port }]),
      'vs.yaml': gatewayRouteYaml([HOST]),
      // The task's IstioOperator meshConfig (enableTracing, the zipkin provider), its zipkin service being the stand-in here.
      'mesh.yaml': zipkinMeshConfig(zipkin.port, false),
    });
  });
  after(async () => {
    await gw?.close();
    await up?.close();
    zipkin?.server.close();
  });

  it('randomSamplingPercentage 100.00: every request is reported', async () => {
    await apply('sampling.yaml', () => true);
    for (const id of ['all-1', 'all-2', 'all-3']) assert.equal((await gw.get(HOST, '/', { 'x-request-id': id })).status, 200);
    await eventually(async () => ['all-1', 'all-2', 'all-3'].every((id) => spanOf(id) !== undefined));
    assert.equal(spanOf('all-1')!.tags['provider'], undefined, 'no custom tag yet');
  });

  it('a literal tag is on every span', async () => {
    await apply('custom-tags-literal.yaml', (s) => s.tags['provider'] === 'zipkin');
  });

  it('an environment tag takes its defaultValue when the proxy has no such variable', async () => {
    assert.equal(process.env['ISTIO_META_CLUSTER_ID'], undefined);
    await apply('custom-tags-environment.yaml', (s) => s.tags['cluster_id'] === 'Kubernetes');
    // The file replaced the literal one: its tag is gone.
    const last = spans[spans.length - 1]!;
    assert.equal(last.tags['provider'], undefined);
  });

  it('a header tag is the client\'s header, or its defaultValue without one', async () => {
    await apply('custom-tags-header.yaml', (s) => s.tags['my_tag_header'] === 'no-header');
    assert.equal((await gw.get(HOST, '/', { 'x-request-id': 'with-header', 'x-custom-tag': 'from-client' })).status, 200);
    await eventually(async () => spanOf('with-header') !== undefined);
    assert.equal(spanOf('with-header')!.tags['my_tag_header'], 'from-client');
  });
});

describe('customTags in the telemetry policy', () => {
  const MESH = zipkinMeshConfig(9411, false);
  const policy = (yaml: string, env: NodeJS.ProcessEnv = {}) => {
    const loaded = parseConfigText(yaml, 'task.yaml');
    assert.deepEqual(validateAll(loaded.resources).problems.filter((p) => p.severity === "error"), []);
    return telemetryPolicyFor(loaded.resources, { namespace: 'default', labels: { app: 'productpage' } }, env);
  };

  it('the task\'s files validate, and the environment variable wins over the default when set', async () => {
    for (const f of ['sampling.yaml', 'custom-tags-literal.yaml', 'custom-tags-environment.yaml', 'custom-tags-header.yaml']) policy(MESH + '---\n' + (await task(f)));
    const env = policy(MESH + '---\n' + (await task('custom-tags-environment.yaml')), { ISTIO_META_CLUSTER_ID: 'east' });
    assert.deepEqual(env.traceCustomTags?.fixed, { cluster_id: 'east' });
  });

  it('a workload\'s Telemetry replaces the mesh\'s tags; no provider, no tags', async () => {
    const workload = `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: pp, namespace: default}
spec:
  selector: {matchLabels: {app: productpage}}
  tracing:
  - customTags: {team: {literal: {value: shop}}}
`;
    const p = policy([MESH, await task('custom-tags-literal.yaml'), workload].join('---\n'));
    assert.deepEqual(p.traceCustomTags?.fixed, { team: 'shop' });
    assert.equal(policy(await task('custom-tags-literal.yaml')).traceCustomTags, undefined);
  });
});
