// Istio's standard metrics from the demo mesh: every proxy serves `/stats/prometheus` with Istio's
// names, labels and values (reporter source at the gateway and client sidecars, destination at the
// server sidecars, mutual_tls, unknown where Istio writes it, local replies with their flags), and
// a real Prometheus scraping them answers the query Kiali and Istio's Grafana dashboards use with
// the demo's real edges.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { send } from './helpers/gateway.js';
import { startTestDemoMesh, type TestDemoMesh } from './helpers/demo-mesh.js';
import { prometheusSkipReason, startPrometheus } from './helpers/prometheus.js';
import { IstioMetrics, ISTIO_BUCKETS, requestLabels, TCP_LABELS, tcpLabels } from '../src/core/telemetry/istio-metrics.js';
import type { RequestRecord } from '../src/core/telemetry/access-log.js';
import { describeWorkload } from '../src/core/telemetry/workload.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { startWorkersGateway } from './helpers/gateway-workers.js';
import { startUpstream } from './helpers/upstream.js';
import { freshGet } from './helpers/ports.js';
import { samplesOf, scrape, type Sample } from './helpers/prometheus-text.js';
import { pino } from 'pino';
import { ControlMetrics } from '../src/control/control-metrics.js';
import { review } from '../src/control/injection-webhook.js';

const BROKEN = `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: broken-gateway, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http-broken, protocol: HTTP}
    hosts: [broken.example.com]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: broken, namespace: default}
spec:
  hosts: [broken.example.com]
  gateways: [broken-gateway]
  http:
  - route:
    - destination: {host: product-service, subset: v9}
`;

/** The `istio_requests_total` samples of a scrape, labels parsed. */
const requests = (text: string): Sample[] => samplesOf(text, 'istio_requests_total');

describe('Istio metrics on every proxy of the demo mesh', () => {
  let demo: TestDemoMesh;
  before(async () => {
    demo = await startTestDemoMesh({}, (dir) => writeFile(join(dir, 'broken.yaml'), BROKEN));
    for (let i = 0; i < 6; i++) assert.equal((await send(demo.port, 'product.example.com', '/')).status, 200);
    assert.equal((await send(demo.port, 'api.example.com', '/orders')).status, 404);
    assert.equal((await send(demo.port, 'api.example.com', '/user/admin')).status, 403);
    assert.equal((await send(demo.port, 'broken.example.com', '/')).status, 503);
  });
  after(() => demo?.close());

  it('the gateway reports as source, with the destinations it picked and its local replies', async () => {
    const samples = requests(await scrape(demo.mesh.gateway.metricsPort));
    const ok = samples.filter((s) => s.labels.response_code === '200');
    assert.equal(ok.reduce((n, s) => n + s.value, 0), 6);
    for (const s of samples) {
      assert.equal(s.labels.reporter, 'source');
      // As Istio's ingress gateway reports itself (its pods' labels app=istio-ingressgateway,istio=ingressgateway).
      assert.equal(s.labels.source_workload, 'istio-ingressgateway');
      assert.equal(s.labels.source_workload_namespace, 'istio-system');
      assert.equal(s.labels.source_app, 'istio-ingressgateway');
      assert.equal(s.labels.source_version, 'unknown');
      assert.equal(s.labels.source_canonical_service, 'istio-ingressgateway');
      assert.equal(s.labels.source_canonical_revision, 'latest');
      // Its own identity only over mutual TLS to an endpoint, as Istio reads it from the connection.
      assert.equal(s.labels.source_principal, s.labels.destination_workload === 'unknown' ? 'unknown' : 'spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account', JSON.stringify(s.labels));
      assert.equal(s.labels.connection_security_policy, 'unknown');
      assert.equal(s.labels.request_protocol, 'http');
      assert.equal(s.labels.grpc_response_status, '');
    }
    for (const s of ok) {
      assert.equal(s.labels.destination_service, 'product-service.default.svc.cluster.local');
      assert.equal(s.labels.destination_service_name, 'product-service');
      assert.equal(s.labels.destination_service_namespace, 'default');
      assert.match(s.labels.destination_workload!, /^product-service-v[12]$/);
      assert.equal(s.labels.destination_principal, 'spiffe://cluster.local/ns/default/sa/product-service');
      assert.equal(s.labels.response_flags, '-');
    }
    const nr = samples.find((s) => s.labels.response_code === '404');
    assert.equal(nr?.labels.response_flags, 'NR');
    assert.equal(nr?.labels.destination_service, 'unknown');
    assert.equal(nr?.labels.destination_workload, 'unknown');
    const nc = samples.find((s) => s.labels.response_code === '503');
    assert.equal(nc?.labels.response_flags, 'NC');
    // The route names a subset no DestinationRule defines: Envoy has no cluster for it, so no service.
    assert.equal(nc?.labels.destination_service, 'unknown');
    const denied = samples.find((s) => s.labels.response_code === '403');
    assert.equal(denied?.labels.destination_service_name, 'user-service');
  });

  it('server sidecars report as destination with the verified caller; client sidecars as source', async () => {
    const [user, productV1] = demo.mesh.sidecars;
    const atUser = requests(await scrape(user!.metricsPort));
    const inbound = atUser.filter((s) => s.labels.reporter === 'destination');
    assert.ok(inbound.length > 0);
    for (const s of inbound) {
      assert.equal(s.labels.destination_workload, 'user-service-v1');
      assert.equal(s.labels.destination_service, 'user-service.default.svc.cluster.local');
      assert.equal(s.labels.connection_security_policy, 'mutual_tls');
    }
    const fromProduct = inbound.filter((s) => s.labels.source_workload?.startsWith('product-service-'));
    assert.equal(fromProduct.reduce((n, s) => n + s.value, 0), 6, 'every product call to user-service is counted once at the server');
    assert.equal(fromProduct[0]!.labels.source_principal, 'spiffe://cluster.local/ns/default/sa/product-service');
    assert.equal(fromProduct[0]!.labels.source_app, 'product-service');
    // The RBAC denial is the server's local reply: 403, no flag, the gateway as the caller.
    const denied = inbound.find((s) => s.labels.response_code === '403');
    assert.equal(denied?.labels.source_workload, 'istio-ingressgateway');
    assert.equal(denied?.labels.source_app, 'istio-ingressgateway');
    assert.equal(denied?.labels.response_flags, '-');

    const atProduct = requests(await scrape(productV1!.metricsPort));
    const outbound = atProduct.filter((s) => s.labels.reporter === 'source');
    assert.ok(outbound.length > 0);
    assert.equal(outbound[0]!.labels.source_workload, 'product-service-v1');
    assert.equal(outbound[0]!.labels.destination_workload, 'user-service-v1');
    assert.equal(outbound[0]!.labels.connection_security_policy, 'unknown');
  });

  it('the control plane serves istiod-named metrics on its debug port', async () => {
    const r = await fetch(`http://127.0.0.1:${demo.mesh.control.debugPort}/metrics`);
    assert.equal(r.status, 200);
    const text = await r.text();
    const value = (name: string): number => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
    assert.equal(value('pilot_xds'), 4, 'three sidecars and the gateway are connected');
    assert.ok(value('citadel_server_csr_count') >= 4);
    assert.equal(value('citadel_server_success_cert_issuance_count'), value('citadel_server_csr_count'));
    assert.ok(value('pilot_xds_pushes') >= 4);
    assert.ok(value('pilot_proxy_convergence_time_count') >= 4);
    assert.ok(value('pilot_services') >= 2, 'the demo\'s Services');
    assert.ok(value('citadel_server_root_cert_expiry_timestamp') > Date.now() / 1000);
    assert.ok(value('citadel_server_root_cert_expiry_seconds') > 0);
    assert.equal(value('citadel_server_authentication_failure_count'), 0);
    assert.match(text, /^istio_build\{component="pilot",tag="[^"]+"\} 1$/m);
  });

  it('the injector counts its reviews by outcome, as istiod does', async () => {
    const metrics = new ControlMetrics();
    const opts = { inject: { image: 'meshgate:test', controlAddress: 'https://control:15012' }, log: pino({ level: 'silent' }), metrics };
    const podReview = (labels: Record<string, string>): string => JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', kind: { kind: 'Pod' }, namespace: 'shop', object: { metadata: { name: 'p', labels }, spec: { containers: [{ name: 'app', image: 'app' }] } } } });
    review(podReview({ 'sidecar.istio.io/inject': 'true' }), opts);
    review(podReview({ 'sidecar.istio.io/inject': 'false' }), opts);
    review('not json', opts);
    const text = await metrics.registry.metrics();
    for (const [name, n] of [['sidecar_injection_requests_total', 3], ['sidecar_injection_success_total', 1], ['sidecar_injection_skip_total', 1], ['sidecar_injection_failure_total', 1]] as const) {
      assert.match(text, new RegExp(`^${name} ${n}$`, 'm'));
    }
  });

  it('durations and sizes are histograms with Istio buckets', async () => {
    const text = await scrape(demo.mesh.gateway.metricsPort);
    const les = [...text.matchAll(/^istio_request_duration_milliseconds_bucket\{le="([^"]+)",reporter="source",[^}]*response_code="200"[^}]*destination_workload="product-service-v1"|^istio_request_duration_milliseconds_bucket\{le="([^"]+)"[^}]*destination_workload="product-service-v1"[^}]*response_code="200"/gm)].map((m) => m[1] ?? m[2]);
    assert.deepEqual(les, [...ISTIO_BUCKETS.map(String), '+Inf']);
    assert.match(text, /^istio_request_bytes_bucket\{/m);
    assert.match(text, /^istio_response_bytes_sum\{/m);
    assert.match(text, /^# TYPE istio_request_duration_milliseconds histogram$/m);
  });

  it('a real Prometheus scraping the mesh answers Kiali\'s edge query with the demo\'s edges', { skip: prometheusSkipReason() }, async () => {
    const targets = [demo.mesh.gateway.metricsPort, ...demo.mesh.sidecars.map((s) => s.metricsPort)].map((p) => `127.0.0.1:${p}`);
    const prom = await startPrometheus(targets);
    try {
      const q = 'sum(rate(istio_requests_total{reporter="destination"}[1m])) by (source_workload, destination_service, response_code)';
      // rate() needs two samples of each series: traffic keeps flowing until the edges appear.
      const deadline = Date.now() + 60_000;
      let edges = new Set<string>();
      while (Date.now() < deadline) {
        await send(demo.port, 'product.example.com', '/');
        const result = await prom.query(q);
        edges = new Set(result.filter((r) => Number(r.value[1]) > 0).map((r) => `${r.metric.source_workload} -> ${r.metric.destination_service} ${r.metric.response_code}`));
        if (edges.has('istio-ingressgateway -> product-service.default.svc.cluster.local 200') && (edges.has('product-service-v1 -> user-service.default.svc.cluster.local 200') || edges.has('product-service-v2 -> user-service.default.svc.cluster.local 200'))) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      assert.ok(edges.has('istio-ingressgateway -> product-service.default.svc.cluster.local 200'), [...edges].join('\n'));
      assert.ok([...edges].some((e) => /^product-service-v[12] -> user-service\.default\.svc\.cluster\.local 200$/.test(e)), [...edges].join('\n'));
      for (const e of edges) assert.match(e, /^(istio-ingressgateway|product-service-v[12]) -> (product|user)-service\.default\.svc\.cluster\.local (200|403)$/);
    } finally {
      await prom.close();
    }
  });
});

describe('Istio labels for one record', () => {
  const self = describeWorkload({ namespace: 'shop', labels: { app: 'cart', version: 'v3' }, serviceAccount: 'cart' });
  const record = (over: Partial<RequestRecord>): RequestRecord => ({
    startTime: new Date(), method: 'GET', path: '/', protocol: 'HTTP/1.1', responseCode: 200, flags: '-', details: 'via_upstream', bytesReceived: 0, bytesSent: 0, durationMs: 1, requestId: 'x', authority: 'example.org', downstreamRemoteAddress: '127.0.0.1:1', reporter: 'source', grpc: false, ...over,
  });

  it('a sidecar client names an unknown destination by Host (passthrough), a gateway does not', () => {
    const asSidecar = requestLabels(record({ upstreamCluster: 'PassthroughCluster' }), { self, role: 'sidecar' });
    assert.equal(asSidecar.destination_service, 'example.org');
    assert.equal(asSidecar.destination_service_name, 'PassthroughCluster');
    assert.equal(asSidecar.source_workload, 'cart-v3');
    assert.equal(asSidecar.source_canonical_revision, 'v3');
    const asGateway = requestLabels(record({ responseCode: 404, flags: 'NR' }), { self, role: 'gateway' });
    assert.equal(asGateway.destination_service, 'unknown');
  });

  it('a sidecar\'s outbound local replies: no route names the Host asked for, a routed reply its service', () => {
    const nr = requestLabels(record({ responseCode: 404, flags: 'NR', authority: 'Orders.Shop:8080' }), { self, role: 'sidecar' });
    assert.equal(nr.destination_service, 'orders.shop');
    assert.equal(nr.destination_service_name, 'orders.shop');
    assert.equal(nr.destination_service_namespace, 'unknown');
    const limited = requestLabels(record({ responseCode: 429, flags: 'RL', upstreamCluster: 'outbound|9080||orders.shop.svc.cluster.local' }), { self, role: 'sidecar' });
    assert.equal(limited.destination_service, 'orders.shop.svc.cluster.local');
    assert.equal(limited.destination_service_name, 'orders');
    assert.equal(limited.destination_workload, 'unknown');
    assert.equal(limited.destination_canonical_revision, 'latest');
  });

  it('gRPC: request_protocol grpc and grpc_response_status; a server with a plaintext caller says none', () => {
    const l = requestLabels(record({ grpc: true, grpcStatus: '14', reporter: 'destination' }), { self, role: 'sidecar' });
    assert.equal(l.request_protocol, 'grpc');
    assert.equal(l.grpc_response_status, '14');
    assert.equal(l.connection_security_policy, 'none');
    assert.equal(l.source_workload, 'unknown');
    assert.equal(l.source_principal, 'unknown');
  });

  it('principals are what the connection proved; a workload no Service selects is its canonical service', () => {
    const caller = describeWorkload({ namespace: 'web', labels: { app: 'front' }, serviceAccount: 'front' });
    const endpoint = describeWorkload({ namespace: 'shop', labels: { app: 'orders' }, serviceAccount: 'orders' });
    const cluster = 'outbound|9080||orders.shop.svc.cluster.local';
    const overMtls = requestLabels(record({ upstreamCluster: cluster, upstreamPeer: endpoint, upstreamMtls: true }), { self, role: 'sidecar' });
    assert.equal(overMtls.source_principal, 'spiffe://cluster.local/ns/shop/sa/cart');
    assert.equal(overMtls.destination_principal, 'spiffe://cluster.local/ns/shop/sa/orders');
    const plaintext = requestLabels(record({ upstreamCluster: cluster, upstreamPeer: endpoint, upstreamMtls: false }), { self, role: 'gateway' });
    assert.equal(plaintext.source_principal, 'unknown');
    // A reply that reached no endpoint: the routed service's namespace, no principal on either side.
    const limited = requestLabels(record({ responseCode: 429, flags: 'RL', upstreamCluster: cluster }), { self, role: 'gateway' });
    assert.equal(limited.source_principal, 'unknown');
    assert.equal(limited.destination_principal, 'unknown');
    assert.equal(limited.destination_service_namespace, 'shop');
    const server = (peer?: typeof caller): ReturnType<typeof requestLabels> => requestLabels(record({ reporter: 'destination', ...(peer ? { downstreamPeer: peer } : {}) }), { self, role: 'sidecar' });
    assert.equal(server(caller).destination_principal, 'spiffe://cluster.local/ns/shop/sa/cart');
    assert.equal(server(caller).source_principal, 'spiffe://cluster.local/ns/web/sa/front');
    assert.equal(server().destination_principal, 'unknown');
    assert.equal(server().destination_service, 'cart');
    assert.equal(server().destination_service_name, 'cart');
    assert.equal(server().destination_service_namespace, 'shop');
  });

  it('TCP series carry no response code and no gRPC status, as Istio\'s TCP stats; a plaintext endpoint gets no source principal', () => {
    const endpoint = describeWorkload({ namespace: 'shop', labels: { app: 'db' }, serviceAccount: 'db' });
    const l = tcpLabels({ reporter: 'source', cluster: 'outbound|5432||db.shop.svc.cluster.local', flags: '-', bytesReceived: 1, bytesSent: 1, upstreamPeer: endpoint }, { self, role: 'sidecar' });
    assert.deepEqual(Object.keys(l), [...TCP_LABELS]);
    assert.equal(l.request_protocol, 'tcp');
    assert.equal(l.source_principal, 'unknown');
    assert.equal(l.destination_service_namespace, 'shop');
  });

  it('Host headers cannot grow the series without bound', async () => {
    const m = new IstioMetrics({ self, role: 'sidecar' }, { maxSeries: 100 });
    for (let i = 0; i < 300; i++) m.observeRequest(record({ authority: `h${i}.example`, upstreamCluster: 'PassthroughCluster' }));
    const text = await m.registry.getSingleMetricAsString('istio_requests_total');
    const series = text.split('\n').filter((l) => l.startsWith('istio_requests_total{')).length;
    assert.ok(series <= 101, `${series} series`);
  });
});

describe('--workers: one scrape is the sum over the workers', () => {
  it('counts every request once, whichever worker served it, 429 local replies included', async () => {
    const up = await startUpstream('app');
    const dir = await mkdtemp(join(tmpdir(), 'meshgate-workers-metrics-'));
    await writeFile(join(dir, 'gw.yaml'), gatewayYaml(['app.example.com']));
    await writeFile(join(dir, 'svc.yaml'), serviceYaml('app', [{ pod: 'app-0', port: up.port }]));
    await writeFile(join(dir, 'vs.yaml'), 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: app}\nspec:\n  hosts: [app.example.com]\n  gateways: [gw]\n  http:\n  - {name: limited, match: [{uri: {prefix: /limited}}], route: [{destination: {host: app}}]}\n  - {name: main, route: [{destination: {host: app}}]}\n');
    await writeFile(join(dir, 'limit.yaml'), 'apiVersion: meshgate.io/v1\nkind: RateLimitPolicy\nmetadata: {name: three, namespace: default}\nspec:\n  targetRef: {kind: VirtualService, name: app, route: limited}\n  limits: [{key: {clientIp: {}}, requests: 3, interval: 1h}]\n  store: memory\n');
    let gw: Awaited<ReturnType<typeof startWorkersGateway>> | undefined;
    try {
      // 0 turns metrics off; `any` lets the primary bind a port of the OS's choosing and log it.
      gw = await startWorkersGateway(dir, 2, ['--metrics-port', 'any']);
      const metricsPort = gw.metricsPort;
      assert.ok(metricsPort > 0, 'the primary logged its metrics port');
      // A worker serves no metrics port of its own: its line names none (not 0, which reads as off).
      assert.equal(gw.servingLine.metricsPort, undefined);
      for (let i = 0; i < 12; i++) assert.equal((await freshGet(gw.port, 'app.example.com', '/')).status, 200);
      const limited = [];
      for (let i = 0; i < 5; i++) limited.push((await freshGet(gw.port, 'app.example.com', '/limited')).status);
      assert.deepEqual(limited, [200, 200, 200, 429, 429]);
      const samples = requests(await scrape(metricsPort));
      const count = (code: string): number => samples.filter((s) => s.labels.response_code === code).reduce((n, s) => n + s.value, 0);
      assert.equal(count('200'), 15);
      assert.equal(count('429'), 2);
      assert.equal(samples.find((s) => s.labels.response_code === '429')?.labels.response_flags, 'RL');
    } finally {
      gw?.kill();
      await up.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
