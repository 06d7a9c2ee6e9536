// A Telemetry resource changed under a running gateway, read from a config folder and from the
// Kubernetes API alike: one that disables a metric and sets the trace sampling is in force for the
// next requests, and a new version of it (sampling 0, the metric back) replaces it without a restart.
// And the mesh config's other tracing provider kind, zipkin, receiving the gateway's spans.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { startGateway, type RunningGateway } from '../src/gateway/main.js';
import { KubeSource } from '../src/core/sources/kube-source.js';
import { startKubeApi, type KubeApiStandIn } from './helpers/kube-api.js';
import { eventually, send, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { gatewayRouteYaml, gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { scrapeSamples } from './helpers/prometheus-text.js';
import { attr, meshConfig, startReceiver, startZipkin, zipkinMeshConfig, type OtlpReceiver, type ZipkinSpan } from './helpers/otlp-receiver.js';

const HOST = 'app.example.com';
const ROUTE = gatewayRouteYaml([HOST]);

/** Mesh-wide (root namespace): sampling for new traces, and REQUEST_COUNT on or off. */
const telemetry = (sampling: number, requestCountDisabled: boolean): string => `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  tracing:
  - randomSamplingPercentage: ${sampling}
  metrics:
  - overrides:
    - match: {metric: REQUEST_COUNT}
      disabled: ${requestCountDisabled}
`;

interface Live {
  readonly port: number;
  readonly metricsPort: number;
  readonly receiver: OtlpReceiver;
  /** Writes or applies a new version of the Telemetry resource. */
  change(yaml: string): Promise<void>;
}

const spanOf = (live: Live, requestId: string): boolean => live.receiver.spans.some((s) => attr(s, 'guid:x-request-id') === requestId);
const count = async (live: Live, series: string): Promise<number> => (await scrapeSamples(live.metricsPort, series)).reduce((n, s) => n + s.value, 0);

/** The scenario both sources run: the first version in force from the start, then the second. */
function scenario(live: () => Live): void {
  it('sampling 100 % and REQUEST_COUNT disabled: the request is traced, and counted in the other series only', async () => {
    const l = live();
    assert.equal((await send(l.port, HOST, '/', { 'x-request-id': 'first' })).status, 200);
    await eventually(async () => spanOf(l, 'first'));
    assert.equal((await scrapeSamples(l.metricsPort, 'istio_requests_total')).length, 0);
    assert.equal(await count(l, 'istio_request_duration_milliseconds_count'), 1);
  });

  it('a new version (sampling 0, the metric back) applies to the next requests', async () => {
    const l = live();
    await l.change(telemetry(0, false));
    // The new version is in force once a request is counted in istio_requests_total again.
    let n = 0;
    await eventually(async () => {
      await send(l.port, HOST, '/', { 'x-request-id': `switching-${n++}` });
      return (await count(l, 'istio_requests_total')) > 0;
    });
    assert.equal((await send(l.port, HOST, '/', { 'x-request-id': 'unsampled' })).status, 200);
    // A caller's sampled decision is still honoured: its span, exported after the one before, marks the point.
    await send(l.port, HOST, '/', { 'x-request-id': 'marker', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' });
    await eventually(async () => spanOf(l, 'marker'));
    assert.ok(!spanOf(l, 'unsampled'), 'sampled at 0 %');
    assert.equal(await count(l, 'istio_request_duration_milliseconds_count'), n + 3);
  });
}

describe('Telemetry from a config folder, changed while the gateway runs', () => {
  let up: Upstream;
  let receiver: OtlpReceiver;
  let gw: TestGateway;
  before(async () => {
    up = await startUpstream('app');
    receiver = await startReceiver();
    gw = await startTestGateway({
      'gw.yaml': gatewayYaml([HOST]),
      'svc.yaml': serviceYaml('app', [{ pod: 'app-0', port: up.port }]),
      'vs.yaml': ROUTE,
      'mesh.yaml': meshConfig(receiver.port, 0),
      'telemetry.yaml': telemetry(100, true),
    }, { gateway: { metricsPort: 0 } });
  });
  after(async () => {
    await gw?.close();
    await up?.close();
    receiver?.server.close();
  });
  scenario(() => ({ port: gw.port, metricsPort: gw.gw.metricsPort, receiver, change: (yaml) => gw.write('telemetry.yaml', yaml) }));
});

describe('Telemetry from the Kubernetes API, changed while the gateway runs', () => {
  let api: KubeApiStandIn;
  let up: Upstream;
  let receiver: OtlpReceiver;
  let gw: RunningGateway;
  before(async () => {
    api = await startKubeApi();
    up = await startUpstream('app');
    receiver = await startReceiver();
    for (const yaml of [gatewayYaml([HOST]), serviceYaml('app', [{ pod: 'app-0', port: up.port }]), ROUTE, meshConfig(receiver.port, 0), telemetry(100, true)]) api.applyYaml(yaml);
    const logger = pino({ level: 'silent' });
    gw = await startGateway({
      source: new KubeSource({ kubeconfig: api.kubeconfig(), debounceMs: 20, logger }),
      ports: new Map([[80, 0]]),
      listenHost: '127.0.0.1',
      statusPort: 0,
      adminPort: 0,
      metricsPort: 0,
      accessLog: 'off',
      logger,
    });
  });
  after(async () => {
    await gw?.destroy();
    await api?.close();
    await up?.close();
    receiver?.server.close();
  });
  scenario(() => ({
    port: gw.listenPorts.get(80)!,
    metricsPort: gw.metricsPort,
    receiver,
    change: async (yaml) => api.applyYaml(yaml),
  }));
});

describe('a zipkin provider', () => {
  let up: Upstream;
  let gw: TestGateway;
  let zipkin: Awaited<ReturnType<typeof startZipkin>>;
  let spans: ZipkinSpan[];
  before(async () => {
    zipkin = await startZipkin();
    spans = zipkin.spans;
    up = await startUpstream('app');
    gw = await startTestGateway({
      'gw.yaml': gatewayYaml([HOST]),
      'svc.yaml': serviceYaml('app', [{ pod: 'app-0', port: up.port }]),
      'vs.yaml': ROUTE,
      'mesh.yaml': zipkinMeshConfig(zipkin.port),
      'telemetry.yaml': telemetry(100, false),
    });
  });
  after(async () => {
    await gw?.close();
    await up?.close();
    zipkin?.server.close();
  });

  it('receives the gateway\'s span as Zipkin v2 JSON on /api/v2/spans, with Istio\'s tags', async () => {
    assert.equal((await gw.get(HOST, '/', { 'x-request-id': 'to-zipkin' })).status, 200);
    await eventually(async () => spans.some((s) => s.tags['guid:x-request-id'] === 'to-zipkin'));
    const s = spans.find((x) => x.tags['guid:x-request-id'] === 'to-zipkin')!;
    assert.match(s.traceId, /^[0-9a-f]{32}$/);
    assert.equal(s.kind, 'CLIENT');
    assert.equal(s.tags['http.status_code'], '200');
    assert.match(s.name, /^app\.default\.svc\.cluster\.local:\d+\/\*$/);
  });
});
