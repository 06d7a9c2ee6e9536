// A proxy's Istio series are counted without prom-client (telemetry/series-cells.ts), which is loaded
// only when the registry is first read: a proxy nobody scrapes never holds it. Once read, the
// series carry every request counted before, and a Telemetry that adds a label before the first
// read gives the same series as one added after it.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { IstioMetrics, type ReporterContext } from '../src/core/telemetry/istio-metrics.js';
import type { RequestRecord } from '../src/core/telemetry/access-log.js';
import { telemetryPolicyFor } from '../src/core/telemetry/telemetry-policy.js';
import { describeWorkload } from '../src/core/telemetry/workload.js';
import { parseConfigText } from '../src/core/config/load.js';
import { samplesOf } from './helpers/prometheus-text.js';

const require = createRequire(import.meta.url);
const promClientLoaded = (): boolean => Object.keys(require.cache).some((k) => /[\\/]node_modules[\\/]prom-client[\\/]/.test(k));

const pay = describeWorkload({ namespace: 'shop', labels: { app: 'pay', version: 'v2' }, serviceAccount: 'pay' });
const ctx: ReporterContext = { self: describeWorkload({ namespace: 'shop', labels: { app: 'cart' }, serviceAccount: 'cart' }), role: 'gateway' };

function record(responseCode: number, headers: Record<string, string> = {}): RequestRecord {
  return {
    startTime: new Date(), method: 'GET', path: '/p', protocol: 'HTTP/1.1', responseCode, flags: '-', details: 'via_upstream', bytesReceived: 0, bytesSent: 10, durationMs: 3,
    requestId: 'r', authority: 'shop.example.com', downstreamRemoteAddress: '10.0.0.7:5555', reporter: 'source', grpc: false,
    upstreamCluster: 'outbound|80||pay.shop.svc.cluster.local', upstreamPeer: pay,
    request: { headers, socket: { localAddress: '127.0.0.1', localPort: 8080 } } as unknown as RequestRecord['request'],
  };
}

// One UPSERT that adds a label to istio_requests_total.
const ADD_USER = 'apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: mesh-default, namespace: istio-system}\n' +
  `spec: {metrics: [{overrides: [{match: {metric: REQUEST_COUNT}, tagOverrides: {user: {value: "request.headers['x-user']"}}}]}]}\n`;

describe('prom-client is loaded at the first read of the registry', () => {
  it('requests are counted without it, and the first scrape has them all', async () => {
    const m = new IstioMetrics(ctx);
    for (let i = 0; i < 30; i++) m.observeRequest(record(i % 3 === 0 ? 503 : 200));
    assert.equal(promClientLoaded(), false, 'counting loaded prom-client');
    const text = await m.registry.metrics();
    assert.equal(promClientLoaded(), true);
    assert.equal(samplesOf(text, 'istio_requests_total').reduce((n, s) => n + s.value, 0), 30);
    assert.equal(samplesOf(text, 'istio_requests_total').find((s) => s.labels['response_code'] === '503')?.value, 10);
    assert.equal(samplesOf(text, 'istio_request_duration_milliseconds_count').reduce((n, s) => n + s.value, 0), 30);
    assert.match(text, /^istio_build\{component="proxy",tag="[^"]+"\} 1$/m);
  });

  it('a label a Telemetry adds before the first read is there when read, as when added after it', async () => {
    const policy = telemetryPolicyFor(parseConfigText(ADD_USER, 'telemetry.yaml').resources, { namespace: 'shop', labels: {} }).metrics;
    const before = new IstioMetrics(ctx);
    const after = new IstioMetrics(ctx);
    await after.registry.metrics();
    for (const m of [before, after]) {
      m.setPolicy(policy);
      for (let i = 0; i < 4; i++) m.observeRequest(record(200, { 'x-user': i % 2 ? 'ann' : 'bob' }));
    }
    const lines = async (m: IstioMetrics): Promise<string[]> => (await m.registry.metrics()).split('\n').filter((l) => l.startsWith('istio_') && !l.startsWith('istio_build')).sort();
    assert.deepEqual(await lines(before), await lines(after));
    assert.deepEqual(samplesOf((await before.registry.metrics()), 'istio_requests_total').map((s) => s.labels['user']).sort(), ['ann', 'bob']);
  });
});
