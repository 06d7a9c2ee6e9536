// Telemetry metric overrides (docs/reference/metrics.md): UPSERT expressions (the CEL subset Istio's
// docs use), REMOVE, `disabled` per metric and per mode, provider scoping, validation with file and
// line, the series cap on expression values, and a real gateway serving an added label.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compileExpression } from '../src/core/telemetry/metric-expression.js';
import { requestAttributes } from '../src/core/telemetry/metric-attributes.js';
import { IstioMetrics } from '../src/core/telemetry/istio-metrics.js';
import { telemetryPolicyFor } from '../src/core/telemetry/telemetry-policy.js';
import type { RequestRecord } from '../src/core/telemetry/access-log.js';
import { describeWorkload } from '../src/core/telemetry/workload.js';
import { parseConfigText } from '../src/core/config/load.js';
import { validateAll } from '../src/core/config/validate.js';
import { samplesOf, scrapeSamples } from './helpers/prometheus-text.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

const self = describeWorkload({ namespace: 'shop', labels: { app: 'cart', version: 'v3' }, serviceAccount: 'cart' });
const upstream = describeWorkload({ namespace: 'shop', labels: { app: 'pay', version: 'v2' }, serviceAccount: 'pay' });

function record(over: Partial<RequestRecord> = {}): RequestRecord {
  return {
    startTime: new Date(), method: 'GET', path: '/api/items?page=2', protocol: 'HTTP/1.1', responseCode: 200, flags: '-', details: 'via_upstream', bytesReceived: 0, bytesSent: 10, durationMs: 1,
    requestId: 'r-1', authority: 'shop.example.com', downstreamRemoteAddress: '10.0.0.7:5555', reporter: 'source', grpc: false,
    upstreamCluster: 'outbound|80||pay.shop.svc.cluster.local', upstreamPeer: upstream, ...over,
  };
}

/** A record whose request carries these headers (only `headers` is read from it). */
function withHeaders(headers: Record<string, string>, over: Partial<RequestRecord> = {}): RequestRecord {
  return record({ ...over, request: { headers, socket: { localAddress: '127.0.0.1', localPort: 8080 } } as unknown as RequestRecord['request'] });
}

const value = (expr: string, r: RequestRecord): string | undefined => {
  const c = compileExpression(expr);
  assert.ok(c.ok, `${expr}: ${c.ok ? '' : c.reason}`);
  return c.expression.evaluate(requestAttributes(r, { role: 'sidecar', self }));
};

describe('tagOverrides expressions', () => {
  const r = withHeaders({ 'x-user': 'ann', 'user-agent': 'curl/8' });

  it('read the attributes Istio\'s examples use', () => {
    assert.equal(value('request.host', r), 'shop.example.com');
    assert.equal(value('string(destination.port)', r), '8080');
    assert.equal(value("request.headers['x-user']", r), 'ann');
    assert.equal(value("request.headers['X-User']", r), 'ann', 'header names ignore case');
    assert.equal(value('request.url_path', r), '/api/items');
    assert.equal(value('request.method', r), 'GET');
    assert.equal(value('response.code', r), '200');
    assert.equal(value('string(response.code)', r), '200');
    assert.equal(value('upstream_peer.app', r), 'pay');
    assert.equal(value("upstream_peer.app + '-' + upstream_peer.version", r), 'pay-v2');
    // Istio's metrics customization task reads peer labels as a struct of {value}.
    assert.equal(value("upstream_peer.labels['app'].value", r), 'pay');
    assert.equal(value("upstream_peer.labels['team'].value", r), undefined, 'a label peer metadata does not carry is unknown');
    assert.equal(value('xds.cluster_name', r), 'outbound|80||pay.shop.svc.cluster.local');
    assert.equal(value('source.address', r), '10.0.0.7');
    assert.equal(value('connection.mtls', r), 'false');
    // Istio also exposes the proxy's node metadata.
    assert.equal(value("node.metadata['NAMESPACE']", r), 'shop');
    assert.equal(value("node.metadata['WORKLOAD_NAME']", r), 'cart-v3');
    assert.equal(value("node.metadata['CLUSTER_ID']", r), 'Kubernetes');
    assert.equal(value('node.id', r), 'sidecar~127.0.0.1~cart-v3.shop~shop.svc.cluster.local');
  });

  it('conditions, has(), in and string methods', () => {
    assert.equal(value("has(request.headers.x_missing) ? 'yes' : 'no'", r), 'no');
    assert.equal(value("'x-user' in request.headers ? request.headers['x-user'] : 'anonymous'", r), 'ann');
    assert.equal(value("request.url_path.startsWith('/api') ? 'api' : 'web'", r), 'api');
    assert.equal(value("response.code == 200 && request.method != 'POST'", r), 'true');
    assert.equal(value("!(request.host.endsWith('.example.com'))", r), 'false');
    assert.equal(value('response.code >= 200 && response.code < 300', r), 'true', 'relations, as access-log filters use them');
    assert.equal(value("response.code > 400 || request.method <= 'GET'", r), 'true');
  });

  it('fail at run time to undefined (the label says unknown): a missing header, a type mismatch', () => {
    assert.equal(value("request.headers['x-absent']", r), undefined);
    assert.equal(value("request.host + 1", r), undefined);
    assert.equal(value('downstream_peer.app', r), undefined);
  });

  it('&& and || decide over an error as CEL does: error || true is true, error && false is false', () => {
    assert.equal(value("request.headers['x-absent'] == 'a' || response.code == 200", r), 'true');
    assert.equal(value("response.code == 200 || request.headers['x-absent'] == 'a'", r), 'true');
    assert.equal(value("request.headers['x-absent'] == 'a' && response.code == 404", r), 'false');
    assert.equal(value("request.headers['x-absent'] == 'a' || response.code == 404", r), undefined);
    assert.equal(value("request.headers['x-absent'] == 'a' && response.code == 200", r), undefined);
  });

  it('refuse at compile time what meshgate does not evaluate, saying why', () => {
    for (const [expr, why] of [
      ["request.headers['x'] | 'unknown'", /operator '\|' is not supported/],
      ["filter_state['wasm.upstream_peer']", /attribute 'filter_state' is not supported/],
      ['request.auth.principal', /attribute 'request\.auth' is not supported/],
      ['size(request.path)', /function 'size' is not supported/],
      ["request.path.matches('^/a')", /function 'matches' is not supported/],
      ['request.host ==', /ends too early/],
    ] as const) {
      const c = compileExpression(expr);
      assert.equal(c.ok, false, expr);
      assert.match(c.ok ? '' : c.reason, why, expr);
    }
  });
});

const TELEMETRY = (spec: string, ns = 'istio-system', name = 't'): string => `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: ${name}, namespace: ${ns}}
spec:
${spec}`;

const policyOf = (yaml: string, namespace = 'shop'): ReturnType<typeof telemetryPolicyFor>['metrics'] =>
  telemetryPolicyFor(parseConfigText(yaml, 'telemetry.yaml').resources, { namespace, labels: { app: 'cart' } }).metrics;

describe('merging metrics overrides as istiod does', () => {
  it('mode scopes an override to the client (gateway, outbound) or the server (inbound) side', () => {
    const p = policyOf(TELEMETRY(`  metrics:
  - providers: [{name: prometheus}]
    overrides:
    - match: {metric: REQUEST_DURATION, mode: CLIENT}
      disabled: true
    - match: {metric: REQUEST_COUNT, mode: SERVER}
      tagOverrides: {request_host: {value: request.host}}
`));
    assert.ok(p.client.disabled.has('istio_request_duration_milliseconds'));
    assert.ok(!p.server.disabled.has('istio_request_duration_milliseconds'));
    assert.ok(p.server.tags.get('istio_requests_total')?.upserts.has('request_host'));
    assert.equal(p.client.tags.get('istio_requests_total'), undefined);
  });

  it('ALL_METRICS disabled at the root is turned back on by a namespace, later overrides win per tag', () => {
    const yaml = [
      TELEMETRY(`  metrics:
  - overrides:
    - match: {metric: ALL_METRICS}
      disabled: true
`),
      TELEMETRY(`  metrics:
  - overrides:
    - match: {metric: REQUEST_COUNT}
      tagOverrides: {source_principal: {operation: REMOVE}, request_host: {value: request.host}}
    - match: {metric: REQUEST_COUNT}
      tagOverrides: {request_host: {operation: REMOVE}}
`, 'shop', 'shop'),
    ].join('---\n');
    const shop = policyOf(yaml);
    assert.equal(shop.client.disabled.size, 0);
    const rules = shop.client.tags.get('istio_requests_total')!;
    assert.ok(rules.removed.has('source_principal'));
    assert.ok(!rules.upserts.has('request_host'), 'the later REMOVE of an added label leaves it out');
    const elsewhere = policyOf(yaml, 'default');
    assert.ok(elsewhere.client.disabled.has('istio_requests_total'));
    assert.ok(elsewhere.server.disabled.has('istio_tcp_connections_opened_total'));
  });

  it('a provider that is not Prometheus takes the Istio metrics away; overrides for it change nothing', () => {
    const other = policyOf(TELEMETRY(`  metrics:
  - providers: [{name: stackdriver}]
`));
    assert.ok(other.client.disabled.has('istio_requests_total'));
    const scoped = policyOf(`apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    extensionProviders:
    - {name: prom, prometheus: {}}
    - {name: sd, stackdriver: {}}
    defaultProviders: {metrics: [prom]}
---
${TELEMETRY(`  metrics:
  - providers: [{name: sd}]
    overrides: [{match: {metric: REQUEST_COUNT}, disabled: true}]
  - providers: [{name: prom}]
    overrides: [{match: {metric: REQUEST_SIZE}, disabled: true}]
`)}`);
    assert.deepEqual([...scoped.client.disabled], ['istio_request_bytes']);
  });
});

describe('IstioMetrics under overrides', () => {
  const policy = policyOf(TELEMETRY(`  metrics:
  - overrides:
    - match: {metric: REQUEST_COUNT}
      tagOverrides:
        request_host: {value: request.host}
        user: {operation: UPSERT, value: "request.headers['x-user']"}
        source_app: {value: "'edge'"}
        grpc_response_status: {operation: REMOVE}
    - match: {metric: REQUEST_SIZE}
      disabled: true
`));

  it('adds labels, replaces a standard label\'s value, leaves a removed one out, skips a disabled metric', async () => {
    const m = new IstioMetrics({ self, role: 'gateway' });
    m.setPolicy(policy);
    m.observeRequest(withHeaders({ 'x-user': 'ann' }));
    m.observeRequest(withHeaders({}));
    const text = await m.registry.metrics();
    const total = samplesOf(text, 'istio_requests_total');
    assert.deepEqual(total.map((s) => s.labels.user).sort(), ['ann', 'unknown']);
    for (const s of total) {
      assert.equal(s.labels.request_host, 'shop.example.com');
      assert.equal(s.labels.source_app, 'edge');
      assert.equal('grpc_response_status' in s.labels, false);
      assert.equal(s.labels.destination_workload, 'pay-v2');
    }
    // Other metrics keep Istio's labels as they are.
    const durations = samplesOf(text, 'istio_request_duration_milliseconds_count');
    assert.equal(durations.length, 1);
    assert.equal(durations[0]!.labels.source_app, 'cart');
    assert.equal(durations[0]!.labels.grpc_response_status, '');
    assert.equal(samplesOf(text, 'istio_request_bytes_count').length, 0);
    assert.equal(samplesOf(text, 'istio_response_bytes_count').length, 1);
  });

  it('expression values cannot grow the series without bound', async () => {
    const m = new IstioMetrics({ self, role: 'gateway' }, { maxSeries: 50 });
    m.setPolicy(policy);
    for (let i = 0; i < 300; i++) m.observeRequest(withHeaders({ 'x-user': `u${i}` }));
    const total = samplesOf(await m.registry.metrics(), 'istio_requests_total');
    assert.ok(total.length <= 51, `${total.length} series`);
    assert.equal(total.reduce((n, s) => n + s.value, 0), 300, 'every request is still counted');
    assert.ok(total.some((s) => s.labels.user === 'unknown'));
  });

  it('long values are cut', async () => {
    const m = new IstioMetrics({ self, role: 'gateway' });
    m.setPolicy(policy);
    m.observeRequest(withHeaders({ 'x-user': 'x'.repeat(1000) }));
    const [s] = samplesOf(await m.registry.metrics(), 'istio_requests_total');
    assert.equal(s!.labels.user!.length, 256);
  });
});

describe('validation of tagOverrides', () => {
  it('points at the value of an expression meshgate does not evaluate, and at bad names and operations', () => {
    const yaml = TELEMETRY(`  metrics:
  - overrides:
    - match: {metric: REQUEST_COUNT, mode: BOTH}
      tagOverrides:
        ok: {value: request.host}
        legacy: {value: "request.headers['x'] | 'none'"}
        bad-name: {value: request.host}
        no_value: {operation: UPSERT}
        not_istio: {operation: REMOVE}
        op: {operation: RENAME, value: x}
`, 'default');
    const { problems } = validateAll(parseConfigText(yaml, 'telemetry.yaml').resources);
    const text = problems.map((p) => `${p.file}:${p.line} ${p.severity} ${p.field}: ${p.message}`);
    const has = (re: RegExp): void => assert.ok(text.some((t) => re.test(t)), `${re}\n${text.join('\n')}`);
    has(/^telemetry\.yaml:7 error .*match\.mode: "BOTH" is not allowed; use one of CLIENT, SERVER, CLIENT_AND_SERVER/);
    has(/^telemetry\.yaml:10 warning .*tagOverrides\.legacy\.value: expression not supported \(operator '\|' is not supported\)/);
    has(/^telemetry\.yaml:11 error .*bad-name.*not a Prometheus label name/);
    has(/^telemetry\.yaml:12 error .*no_value\.value: value must be set when operation is UPSERT/);
    has(/^telemetry\.yaml:13 warning .*not_istio.*REMOVE changes nothing/);
    has(/^telemetry\.yaml:14 error .*op\.operation: operation must be UPSERT or REMOVE, not RENAME/);
    assert.ok(!text.some((t) => /tagOverrides\.ok/.test(t)), text.join('\n'));
  });
});

describe('a gateway serving a Telemetry override', () => {
  let up: Upstream;
  let gw: TestGateway;
  before(async () => {
    up = await startUpstream('app');
    gw = await startTestGateway({
      'gw.yaml': gatewayYaml(['app.example.com']),
      'svc.yaml': serviceYaml('app', [{ pod: 'app-0', port: up.port }]),
      'vs.yaml': 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: app}\nspec:\n  hosts: [app.example.com]\n  gateways: [gw]\n  http:\n  - route: [{destination: {host: app}}]\n',
      'telemetry.yaml': TELEMETRY(`  metrics:
  - providers: [{name: prometheus}]
    overrides:
    - match: {metric: REQUEST_COUNT, mode: CLIENT_AND_SERVER}
      tagOverrides:
        request_host: {value: request.host}
        destination_port: {value: string(destination.port)}
    - match: {metric: REQUEST_DURATION, mode: CLIENT}
      disabled: true
`),
    }, { gateway: { metricsPort: 0 } });
  });
  after(async () => {
    await gw?.close();
    await up?.close();
  });

  it('scrapes the added labels and no disabled series', async () => {
    assert.equal((await gw.get('app.example.com', '/')).status, 200);
    const total = await scrapeSamples(gw.gw.metricsPort, 'istio_requests_total');
    assert.equal(total.length, 1);
    assert.equal(total[0]!.labels.request_host, 'app.example.com');
    assert.match(total[0]!.labels.destination_port!, /^\d+$/);
    assert.equal((await scrapeSamples(gw.gw.metricsPort, 'istio_request_duration_milliseconds_count')).length, 0);
    assert.equal((await scrapeSamples(gw.gw.metricsPort, 'istio_response_bytes_count')).length, 1);
  });
});
