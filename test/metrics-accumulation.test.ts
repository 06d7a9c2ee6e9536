// The Istio series are counted on the request path in plain numbers and handed to prom-client when
// scraped (telemetry/series-cells.ts). These tests hold that a scrape after N requests is exactly
// what prom-client's own inc() and observe() give for the same requests: every count, bucket count
// and sum, with label sets made by Telemetry tagOverrides (REMOVE merging series, UPSERT adding
// them), local replies, gRPC message counters, TCP connections, and a disabled metric; and that a
// real gateway's scrape after N requests counts them all, local replies included.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import { promClient } from '../src/core/telemetry/prom-client-module.js';
import { DEFAULT_METRICS_POLICY, IstioMetrics, ISTIO_BUCKETS, ISTIO_LABELS, requestLabels, TCP_LABELS, tcpLabels, type IstioMetricName, type MetricsPolicy, type ReporterContext, type TcpConnectionRecord } from '../src/core/telemetry/istio-metrics.js';
import { requestAttributes, connectionAttributes } from '../src/core/telemetry/metric-attributes.js';
import { addedLabels, applyTagRules, type ModeMetricsPolicy } from '../src/core/telemetry/metrics-overrides.js';
import { PEER_LABELS } from '../src/core/telemetry/istio-labels.js';
import type { RequestRecord } from '../src/core/telemetry/access-log.js';
import { GrpcMessageCounter } from '../src/core/telemetry/grpc-messages.js';
import { telemetryPolicyFor } from '../src/core/telemetry/telemetry-policy.js';
import { describeWorkload } from '../src/core/telemetry/workload.js';
import { parseConfigText } from '../src/core/config/load.js';
import { samplesOf, scrape } from './helpers/prometheus-text.js';
import { send, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

const self = describeWorkload({ namespace: 'shop', labels: { app: 'cart', version: 'v3' }, serviceAccount: 'cart' });
const pay = describeWorkload({ namespace: 'shop', labels: { app: 'pay', version: 'v2' }, serviceAccount: 'pay' });
const caller = describeWorkload({ namespace: 'web', labels: { app: 'front', version: 'v1' }, serviceAccount: 'front' });

function record(over: Partial<RequestRecord>, headers: Record<string, string> = {}): RequestRecord {
  return {
    startTime: new Date(), method: 'GET', path: '/p', protocol: 'HTTP/1.1', responseCode: 200, flags: '-', details: 'via_upstream', bytesReceived: 0, bytesSent: 10, durationMs: 1,
    requestId: 'r', authority: 'shop.example.com', downstreamRemoteAddress: '10.0.0.7:5555', reporter: 'source', grpc: false,
    upstreamCluster: 'outbound|80||pay.shop.svc.cluster.local', upstreamPeer: pay,
    request: { headers, socket: { localAddress: '127.0.0.1', localPort: 8080 } } as unknown as RequestRecord['request'],
    ...over,
  };
}

function grpcMessages(request: number, response: number): NonNullable<RequestRecord['grpcMessages']> {
  const c = (n: number): GrpcMessageCounter => Object.assign(new GrpcMessageCounter(), { count: n });
  return { request: c(request), response: c(response) };
}

/** A deterministic spread of values over every bucket, exact bounds, 0 and past the last bound. */
function valueAt(i: number): number {
  const picks = [0, 0.5, 0.7, 1, 3, 5, 10, 24.9, 25, 60, 100, 250, 499, 1000, 2500, 7000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000, 3600001, 9e6];
  return picks[i % picks.length]! + (i % 7 === 0 ? 0.1 : 0);
}

/**
 * The records of N requests: two peers, gateway-style local replies (no cluster, the Host naming
 * nothing at a gateway), a sidecar's inbound side, gRPC with message counts, several codes and flags.
 */
function requests(n: number): RequestRecord[] {
  const out: RequestRecord[] = [];
  for (let i = 0; i < n; i++) {
    const base = { durationMs: valueAt(i), bytesReceived: Math.round(valueAt(i + 3)), bytesSent: Math.round(valueAt(i + 11)) };
    switch (i % 8) {
      case 0: out.push(record({ ...base }, { 'x-user': i % 3 === 0 ? 'ann' : 'bob' })); break;
      case 1: out.push(record({ ...base, responseCode: 503, flags: 'UH', upstreamPeer: undefined }, {})); break;
      case 2: out.push(record({ ...base, responseCode: 404, flags: 'NR', upstreamCluster: undefined, upstreamPeer: undefined, authority: `h${i % 5}.example.com` })); break;
      case 3: out.push(record({ ...base, responseCode: 429, flags: 'RL' }, { 'x-user': 'ann' })); break;
      case 4: out.push(record({ ...base, reporter: 'destination', upstreamCluster: 'inbound|8080||', upstreamPeer: undefined, downstreamPeer: caller, responseCode: i % 3 === 0 ? 500 : 200 })); break;
      case 5: out.push(record({ ...base, grpc: true, grpcStatus: i % 3 === 0 ? '14' : '0', grpcMessages: grpcMessages(i % 4, i % 5) })); break;
      case 6: out.push(record({ ...base, reporter: 'destination', upstreamCluster: 'inbound|8080||', upstreamPeer: undefined, grpc: true, grpcStatus: '0', downstreamPeer: caller, grpcMessages: grpcMessages(1, 0) })); break;
      default: out.push(record({ ...base, responseCode: 403, flags: 'RBAC', upstreamPeer: undefined }, { 'x-user': 'carl' })); break;
    }
  }
  return out;
}

const HISTOGRAMS: readonly IstioMetricName[] = ['istio_request_duration_milliseconds', 'istio_request_bytes', 'istio_response_bytes'];

/**
 * What prom-client itself gives for the same requests: every request's labels (Istio's, under the
 * policy's tag rules) fed to inc() and observe() one request at a time.
 */
class Reference {
  readonly registry: Registry = new (promClient().Registry)();
  private readonly metrics = new Map<IstioMetricName, { inc(l: Record<string, string>, v: number): void; observe(l: Record<string, string>, v: number): void }>();
  constructor(private readonly ctx: ReporterContext, private readonly policy: MetricsPolicy) {
    const { Counter, Histogram } = promClient();
    const labelNames = [...ISTIO_LABELS, ...addedLabels(policy)];
    const peer = [...PEER_LABELS, ...addedLabels(policy)];
    const tcp = [...TCP_LABELS, ...addedLabels(policy)];
    const names: IstioMetricName[] = ['istio_requests_total', ...HISTOGRAMS, 'istio_request_messages_total', 'istio_response_messages_total', 'istio_tcp_sent_bytes_total', 'istio_tcp_received_bytes_total', 'istio_tcp_connections_opened_total', 'istio_tcp_connections_closed_total'];
    for (const name of names) {
      if (HISTOGRAMS.includes(name)) {
        const h = new Histogram({ name, help: 'x', labelNames, buckets: [...ISTIO_BUCKETS], registers: [this.registry] });
        this.metrics.set(name, { inc: () => assert.fail(), observe: (l, v) => h.observe(l, v) });
      } else {
        const c = new Counter({ name, help: 'x', labelNames: name.includes('messages') ? peer : name.startsWith('istio_tcp_') ? tcp : labelNames, registers: [this.registry] });
        this.metrics.set(name, { inc: (l, v) => c.inc(l, v), observe: () => assert.fail() });
      }
    }
  }

  private labels(mode: ModeMetricsPolicy, name: IstioMetricName, labels: Record<string, string>, values: string[], peerOnly = false): Record<string, string> {
    const l = applyTagRules(labels, mode.tags.get(name), values);
    return peerOnly ? Object.fromEntries(Object.entries(l).filter(([k]) => !ISTIO_LABELS.includes(k as never) || PEER_LABELS.includes(k as never))) : l;
  }

  request(r: RequestRecord): void {
    const mode = r.reporter === 'destination' ? this.policy.server : this.policy.client;
    const values = mode.expressions.map((e) => e.evaluate(requestAttributes(r)) ?? 'unknown');
    const labels = requestLabels(r, this.ctx);
    const on = (n: IstioMetricName): boolean => !mode.disabled.has(n);
    if (on('istio_requests_total')) this.metrics.get('istio_requests_total')!.inc(this.labels(mode, 'istio_requests_total', labels, values), 1);
    const observed: Record<string, number> = { istio_request_duration_milliseconds: r.durationMs, istio_request_bytes: r.bytesReceived, istio_response_bytes: r.bytesSent };
    for (const h of HISTOGRAMS) if (on(h)) this.metrics.get(h)!.observe(this.labels(mode, h, labels, values), observed[h]!);
    if (r.grpcMessages) {
      if (on('istio_request_messages_total')) this.metrics.get('istio_request_messages_total')!.inc(this.labels(mode, 'istio_request_messages_total', labels, values, true), r.grpcMessages.request.count);
      if (on('istio_response_messages_total')) this.metrics.get('istio_response_messages_total')!.inc(this.labels(mode, 'istio_response_messages_total', labels, values, true), r.grpcMessages.response.count);
    }
  }

  tcp(c: TcpConnectionRecord, counts: [IstioMetricName, number][]): void {
    const mode = c.reporter === 'destination' ? this.policy.server : this.policy.client;
    const values = mode.expressions.map((e) => e.evaluate(connectionAttributes(c)) ?? 'unknown');
    for (const [name, v] of counts) if (!mode.disabled.has(name)) this.metrics.get(name)!.inc(this.labels(mode, name, tcpLabels(c, this.ctx), values), v);
  }
}

/** Every sample line of the Istio series, sorted (series order is not part of the format). */
async function samples(registry: Registry): Promise<string[]> {
  return (await registry.metrics()).split('\n').filter((l) => l.startsWith('istio_') && !l.startsWith('istio_build')).sort();
}

const OVERRIDES = `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  metrics:
  - overrides:
    - match: {metric: REQUEST_COUNT}
      tagOverrides:
        response_code: {operation: REMOVE}
        user: {value: "request.headers['x-user']"}
    - match: {metric: REQUEST_DURATION}
      tagOverrides:
        response_flags: {operation: REMOVE}
        destination_service: {value: "'all'"}
    - match: {metric: REQUEST_SIZE, mode: SERVER}
      disabled: true
    - match: {metric: GRPC_RESPONSE_MESSAGES}
      tagOverrides:
        source_app: {operation: REMOVE}
`;

function policyOf(yaml: string): MetricsPolicy {
  return telemetryPolicyFor(parseConfigText(yaml, 'telemetry.yaml').resources, { namespace: 'shop', labels: {} }).metrics;
}

describe('the scrape after N requests is exactly what prom-client counts itself', () => {
  for (const [name, policyYaml, role, grouped] of [
    ['Istio\'s labels, a gateway', undefined, 'gateway', false],
    ['Istio\'s labels, a sidecar (Host fallback)', undefined, 'sidecar', false],
    ['tagOverrides: REMOVE merges series, UPSERT splits them, a metric disabled for one mode', OVERRIDES, 'sidecar', false],
    // Runs of requests alike but for one part (code, Host, peer, reporter): the last-request shortcut.
    ['Istio\'s labels, a sidecar, requests in runs of the same kind', undefined, 'sidecar', true],
  ] as const) {
    it(name, async () => {
      const ctx: ReporterContext = { self, role, selfService: () => ({ host: 'cart.shop.svc.cluster.local', name: 'cart', namespace: 'shop' }) };
      const m = new IstioMetrics(ctx);
      const policy = policyYaml ? policyOf(policyYaml) : DEFAULT_METRICS_POLICY;
      m.setPolicy(policy);
      const ref = new Reference(ctx, policy);
      const all = grouped ? requests(1000).map((r, i) => [i % 8, r] as const).sort((a, b) => a[0] - b[0]).map(([, r]) => r) : requests(1000);
      // Scraped midway too: a scrape must not disturb what is counted after it.
      for (const [i, r] of all.entries()) {
        m.observeRequest(r);
        ref.request(r);
        if (i === 400) assert.deepEqual(await samples(m.registry), await samples(ref.registry));
      }
      const conn = (i: number): TcpConnectionRecord => ({ reporter: i % 2 ? 'destination' : 'source', cluster: 'outbound|5432||db.shop.svc.cluster.local', flags: '-', bytesReceived: 100 * i, bytesSent: 7 * i, ...(i % 2 ? { downstreamPeer: caller } : { upstreamPeer: pay }) });
      for (let i = 0; i < 20; i++) {
        m.tcpOpenedNow(conn(i));
        ref.tcp({ ...conn(i), bytesReceived: 0, bytesSent: 0 }, [['istio_tcp_connections_opened_total', 1]]);
        if (i % 3) {
          m.tcpClosedNow(conn(i));
          ref.tcp(conn(i), [['istio_tcp_connections_closed_total', 1], ['istio_tcp_sent_bytes_total', conn(i).bytesSent], ['istio_tcp_received_bytes_total', conn(i).bytesReceived]]);
        }
      }
      const got = await samples(m.registry);
      assert.deepEqual(got, await samples(ref.registry));
      // The comparison is not vacuous: every kind of series is there.
      for (const prefix of ['istio_requests_total{', 'istio_request_duration_milliseconds_bucket{', 'istio_request_duration_milliseconds_sum{', 'istio_response_bytes_count{', 'istio_request_messages_total{', 'istio_response_messages_total{', 'istio_tcp_connections_closed_total{']) {
        assert.ok(got.some((l) => l.startsWith(prefix)), prefix);
      }
      const total = samplesOf(got.join('\n'), 'istio_requests_total').reduce((n, s) => n + s.value, 0);
      assert.equal(total, 1000);
      // JSON (what the --workers primary sums and the dashboard reads) agrees with the text.
      const json = await m.registry.getMetricsAsJSON();
      const count = json.find((x) => x.name === 'istio_request_duration_milliseconds')!.values.filter((v) => (v as { metricName?: string }).metricName === 'istio_request_duration_milliseconds_count').reduce((n, v) => n + v.value, 0);
      assert.equal(count, 1000);
    });
  }

  it('a policy that adds a label starts the series afresh; one that does not keeps counting into the same series', async () => {
    const ctx: ReporterContext = { self, role: 'gateway' };
    const m = new IstioMetrics(ctx);
    for (const r of requests(16)) m.observeRequest(r);
    const removeOnly = policyOf(OVERRIDES.replace(/\n {8}user: .*$/m, ''));
    m.setPolicy(removeOnly);
    for (const r of requests(16)) m.observeRequest(r);
    // Nothing added: the first 16 requests are still counted, now beside the merged series.
    assert.equal(samplesOf((await samples(m.registry)).join('\n'), 'istio_request_duration_milliseconds_count').reduce((n, s) => n + s.value, 0), 32);
    m.setPolicy(policyOf(OVERRIDES));
    for (const r of requests(8)) m.observeRequest(r);
    assert.equal(samplesOf((await samples(m.registry)).join('\n'), 'istio_requests_total').reduce((n, s) => n + s.value, 0), 8);
  });
});

describe('a gateway\'s scrape after N requests', () => {
  let up: Upstream;
  let gw: TestGateway;
  before(async () => {
    up = await startUpstream('app');
    gw = await startTestGateway({ 'gw.yaml': gatewayYaml(['app.example.com']), 'svc.yaml': serviceYaml('app', [{ pod: 'app-0', port: up.port }]), 'vs.yaml': 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: app}\nspec:\n  hosts: [app.example.com]\n  gateways: [gw]\n  http:\n  - route: [{destination: {host: app}}]\n' }, { gateway: { metricsPort: 0 } });
  });
  after(async () => {
    await gw?.close();
    await up?.close();
  });

  it('counts every request, its bytes in the right buckets, and the local replies', async () => {
    const n = 57;
    const sizes: number[] = [];
    for (let i = 0; i < n; i++) {
      // Paths of different lengths: the upstream echoes them, so the response sizes differ.
      const r = await send(gw.port, 'app.example.com', `/item/${'x'.repeat(i * 7)}`);
      assert.equal(r.status, 200);
      sizes.push(Buffer.byteLength(r.text));
    }
    const bodyBytes = sizes.reduce((a, b) => a + b, 0);
    for (let i = 0; i < 5; i++) assert.equal((await send(gw.port, `nothing${i}.example.com`, '/')).status, 404);
    const text = await scrape(gw.gw.metricsPort);
    const total = samplesOf(text, 'istio_requests_total');
    assert.equal(total.filter((s) => s.labels.response_code === '200').reduce((n2, s) => n2 + s.value, 0), n);
    const nr = total.filter((s) => s.labels.response_code === '404');
    assert.equal(nr.reduce((n2, s) => n2 + s.value, 0), 5);
    assert.ok(nr.every((s) => s.labels.response_flags === 'NR'));
    const ok = (metric: string): number => samplesOf(text, metric).filter((s) => s.labels.response_code === '200').reduce((n2, s) => n2 + s.value, 0);
    assert.equal(ok('istio_request_duration_milliseconds_count'), n);
    assert.equal(ok('istio_response_bytes_count'), n);
    assert.equal(ok('istio_response_bytes_sum'), bodyBytes);
    assert.equal(ok('istio_request_bytes_sum'), 0);
    // Every 200's request body (none) is in the first bucket; the +Inf bucket holds them all.
    const buckets = samplesOf(text, 'istio_request_bytes_bucket').filter((s) => s.labels.response_code === '200');
    assert.equal(buckets.find((s) => s.labels.le === '0.5')!.value, n);
    assert.equal(buckets.find((s) => s.labels.le === '+Inf')!.value, n);
    const responseBuckets = samplesOf(text, 'istio_response_bytes_bucket').filter((s) => s.labels.response_code === '200');
    assert.equal(responseBuckets.length, ISTIO_BUCKETS.length + 1);
    for (const b of responseBuckets) assert.equal(b.value, sizes.filter((v) => b.labels.le === '+Inf' || v <= Number(b.labels.le)).length, `le=${b.labels.le}`);
  });
});
