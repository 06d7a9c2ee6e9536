// Probes of Istio's metrics as an attack surface: what a client, an upstream or a mesh peer sends
// must not make a series per distinct value, nor keep what it sent in memory. A real gateway for
// the upstream's `grpc-status`; the IstioMetrics of one proxy for what a gateway, a sidecar's
// passthrough and its inbound side keep (the counts asserted are of label sets and index entries,
// never of time or heap).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestGateway } from './helpers/gateway.js';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { startUpstream } from './helpers/upstream.js';
import { samplesOf, scrape } from './helpers/prometheus-text.js';
import { IstioMetrics } from '../src/core/telemetry/istio-metrics.js';
import { metricsPolicyFrom } from '../src/core/telemetry/metrics-overrides.js';
import { describeWorkload, peerOfRequest } from '../src/core/telemetry/workload.js';
import { encodeStruct } from '../src/core/proxy/protobuf-struct.js';
import type { RequestRecord } from '../src/core/telemetry/access-log.js';

const VS = 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: app}\nspec:\n  hosts: [app.example.com]\n  gateways: [gw]\n  http:\n  - route: [{destination: {host: app}}]\n';

const record = (over: Partial<RequestRecord>): RequestRecord => ({
  startTime: new Date(), method: 'GET', path: '/', protocol: 'HTTP/1.1', responseCode: 404, flags: 'NR', details: 'route_not_found', bytesReceived: 0, bytesSent: 0, durationMs: 1, requestId: 'x', authority: 'a.example', downstreamRemoteAddress: '203.0.113.9:4000', reporter: 'source', grpc: false, ...over,
});

async function seriesOf(m: IstioMetrics, name: string): Promise<ReturnType<typeof samplesOf>> {
  return samplesOf(await m.registry.getSingleMetricAsString(name), name);
}

/** The label sets an IstioMetrics keeps an index entry for (what its memory grows with). */
const keptLabelSets = (m: IstioMetrics): number => (m as unknown as { children: Map<string, unknown> }).children.size;

describe('metrics cardinality: an upstream\'s grpc-status', () => {
  it('names at most gRPC\'s 17 codes and -1 (Envoy\'s InvalidCode), whatever the upstream writes', async () => {
    const up = await startUpstream('app', (req, res) => {
      res.writeHead(200, { 'content-type': 'application/grpc', 'grpc-status': String(req.headers['x-status']) }).end();
      return true;
    });
    const gw = await startTestGateway({ 'gw.yaml': gatewayYaml(['app.example.com']), 'svc.yaml': serviceYaml('app', [{ pod: 'app-0', port: up.port }]), 'vs.yaml': VS }, { gateway: { metricsPort: 0 } });
    try {
      const statuses = ['7', '007', '+7', '17', '-1', '99999999999999999999', 'OK', '<script>', ...Array.from({ length: 40 }, (_, i) => `s${i}`)];
      for (const s of statuses) assert.equal((await gw.get('app.example.com', '/svc/M', { 'content-type': 'application/grpc', 'x-status': s }, 'POST', '')).status, 200);
      const samples = samplesOf(await scrape(gw.gw.metricsPort), 'istio_requests_total');
      const byStatus = new Map(samples.map((s) => [s.labels.grpc_response_status, s.value]));
      assert.deepEqual([...byStatus.keys()].sort(), ['-1', '7']);
      assert.equal(byStatus.get('7'), 3);
      assert.equal(byStatus.get('-1'), statuses.length - 3, 'every request is still counted');
    } finally {
      await gw.close();
      await up.close();
    }
  });
});

describe('metrics cardinality: Host headers', () => {
  const gatewaySelf = describeWorkload({ namespace: 'istio-system', labels: { app: 'istio-ingressgateway', istio: 'ingressgateway' }, serviceAccount: 'gw' });
  const sidecarSelf = describeWorkload({ namespace: 'shop', labels: { app: 'cart' }, serviceAccount: 'cart' });

  it('a gateway keeps nothing of unrouted Hosts: 2000 distinct 20 KB Hosts are one label set, not 40 MB of keys', async () => {
    const m = new IstioMetrics({ self: gatewaySelf, role: 'gateway' });
    for (let i = 0; i < 2000; i++) m.observeRequest(record({ authority: `h${i}.`.padEnd(20_000, 'x') }));
    assert.equal(keptLabelSets(m), 1);
    const [only, ...rest] = await seriesOf(m, 'istio_requests_total');
    assert.equal(rest.length, 0);
    assert.equal(only!.labels.destination_service, 'unknown');
    assert.equal(only!.value, 2000);
  });

  it('a sidecar\'s passthrough Host names its series lower-cased, without the port, cut to 256 characters', async () => {
    const m = new IstioMetrics({ self: sidecarSelf, role: 'sidecar' });
    m.observeRequest(record({ authority: `${'A'.repeat(30_000)}.example:8080`, upstreamCluster: 'PassthroughCluster', responseCode: 200, flags: '-' }));
    m.observeRequest(record({ authority: `${'a'.repeat(30_000)}.other`, upstreamCluster: 'PassthroughCluster', responseCode: 200, flags: '-' }));
    const samples = await seriesOf(m, 'istio_requests_total');
    assert.equal(samples.length, 1, 'both cut to the same 256 characters');
    assert.equal(samples[0]!.labels.destination_service, 'a'.repeat(256));
    assert.equal(samples[0]!.value, 2);
  });
});

describe('metrics cardinality: what a mesh peer and a connection tell', () => {
  const self = describeWorkload({ namespace: 'shop', labels: { app: 'cart' }, serviceAccount: 'cart' });
  const principal = 'spiffe://cluster.local/ns/web/sa/front';
  const metadata = (workload: string): string => encodeStruct({ WORKLOAD_NAME: workload, NAMESPACE: 'web', LABELS: { app: workload, version: workload } }).toString('base64');

  it('past the series cap a peer\'s metadata names no new series: only its certificate does', async () => {
    const m = new IstioMetrics({ self, role: 'sidecar' }, { maxSeries: 20 });
    for (let i = 0; i < 300; i++) {
      const peer = peerOfRequest({ 'x-envoy-peer-metadata': metadata(`w${i}`) }, principal);
      m.observeRequest(record({ reporter: 'destination', downstreamPeer: peer, responseCode: 200, flags: '-' }));
    }
    const samples = await seriesOf(m, 'istio_requests_total');
    assert.ok(samples.length <= 21, `${samples.length} series`);
    assert.equal(samples.reduce((n, s) => n + s.value, 0), 300, 'every request is still counted');
    const proven = samples.find((s) => s.labels.source_workload === 'front');
    assert.equal(proven?.labels.source_principal, principal);
    assert.equal(proven?.labels.source_workload_namespace, 'web');
  });

  it('TCP series have the same cap: an SNI or a client address in an UPSERT, or a peer\'s metadata, stop naming series', async () => {
    const m = new IstioMetrics({ self, role: 'gateway' }, { maxSeries: 20 });
    m.setPolicy(metricsPolicyFrom([{ overrides: [{ tagOverrides: { sni: { value: 'connection.requested_server_name' }, client: { value: 'source.address' } } }] }], undefined));
    for (let i = 0; i < 300; i++) {
      const downstreamPeer = peerOfRequest({ 'x-envoy-peer-metadata': metadata(`t${i}`) }, principal);
      const c = { reporter: 'destination' as const, cluster: 'inbound|9080||', flags: '-', bytesReceived: 1, bytesSent: 1, downstreamPeer, sni: `h${i}.example.com`, downstreamRemoteAddress: `203.0.113.9:${1000 + i}` };
      m.tcpOpenedNow(c);
      m.tcpClosedNow(c);
    }
    for (const name of ['istio_tcp_connections_opened_total', 'istio_tcp_connections_closed_total', 'istio_tcp_sent_bytes_total']) {
      const samples = await seriesOf(m, name);
      assert.ok(samples.length <= 21, `${name}: ${samples.length} series`);
      assert.equal(samples.reduce((n, s) => n + s.value, 0), 300, `${name}: every connection is still counted`);
      assert.ok(samples.some((s) => s.labels.sni === 'unknown' && s.labels.source_workload === 'front'));
    }
  });
});
