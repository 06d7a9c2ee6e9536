// The pieces of OTLP export that need no collector: which access logs a Telemetry's providers turn
// on (the proxy's own, an envoyOtelAls collector, both), Envoy's format operators on a record, the
// gRPC reading of an `opentelemetry` provider without `http`, what validation says of these
// providers, and the once-a-minute saying of failed exports.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../src/core/config/load.js';
import { validateAll } from '../src/core/config/validate.js';
import { telemetryPolicyFor } from '../src/core/telemetry/telemetry-policy.js';
import { logsRequest, type AccessLogPolicy, type AccessLogSides } from '../src/core/telemetry/access-log-policy.js';
import { compileFormat, ISTIO_TEXT_FORMAT } from '../src/core/telemetry/access-log-format.js';
import type { RequestRecord, TcpLogLine } from '../src/core/telemetry/access-log.js';
import { sampleRecord } from './helpers/request-record.js';
import { FAILURE_REPORT_INTERVAL_MS, reportingFailures } from '../src/core/telemetry/export-failures.js';

/** The proxy's own log (its first file log), or both sides off when it writes none. */
const own = (p: AccessLogPolicy): AccessLogSides => p.files[0] ?? { client: { enabled: false }, server: { enabled: false } };

const mesh = (extra = ''): string => `apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    extensionProviders:
    - name: otel-tracing
      opentelemetry: {port: 4317, service: opentelemetry-collector.observability.svc.cluster.local}
    - name: otel
      envoyOtelAls:
        service: opentelemetry-collector.observability.svc.cluster.local
        port: 4317
        logName: mesh-logs
        logFormat:
          text: "%REQ(:METHOD)% %RESPONSE_CODE%"
          labels: {path: "%REQ(:PATH)%"}
${extra}`;

const telemetry = (name: string, ns: string, body: string): string => `---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: ${name}, namespace: ${ns}}
spec:
${body}`;

const record = sampleRecord;

describe('access-log providers from Telemetry', () => {
  it("Istio's OpenTelemetry task: a Telemetry naming otel sends its workload's lines to the collector, and only there", () => {
    const { resources } = parseConfigText(mesh() + telemetry('sleep-logging', 'default', '  selector: {matchLabels: {app: sleep}}\n  accessLogging:\n  - providers: [{name: otel}]\n'), 'm.yaml');
    const sleep = telemetryPolicyFor(resources, { namespace: 'default', labels: { app: 'sleep' } }).accessLog;
    assert.equal(sleep.otel.length, 1);
    assert.deepEqual(sleep.otel[0]!.provider, { name: 'otel', url: 'http://opentelemetry-collector.observability.svc.cluster.local:4317', logName: 'mesh-logs', text: '%REQ(:METHOD)% %RESPONSE_CODE%', labels: { path: '%REQ(:PATH)%' } });
    assert.deepEqual([own(sleep).client.enabled, own(sleep).server.enabled], [false, false], "the proxy's own log is not among its providers");
    const other = telemetryPolicyFor(resources, { namespace: 'default', labels: { app: 'httpbin' } }).accessLog;
    assert.deepEqual([other.otel.length, own(other).client.enabled], [0, true], 'other workloads keep the proxy log alone');
  });

  it('defaultProviders.accessLogging [envoy, otel] turns both on; a later entry without providers applies to the ones before it', () => {
    const text = mesh('    defaultProviders:\n      accessLogging: [envoy, otel]\n') + telemetry('quiet', 'shop', '  accessLogging:\n  - match: {mode: SERVER}\n    disabled: true\n');
    const { resources } = parseConfigText(text, 'm.yaml');
    const all = telemetryPolicyFor(resources, { namespace: 'default', labels: {} }).accessLog;
    assert.deepEqual([own(all).client.enabled, all.otel.map((s) => s.provider.name)], [true, ['otel']]);
    const shop = telemetryPolicyFor(resources, { namespace: 'shop', labels: {} }).accessLog;
    assert.deepEqual([own(shop).server.enabled, own(shop).client.enabled], [false, true]);
    assert.equal(logsRequest(shop.otel[0]!, record({ reporter: 'destination' })), false, 'SERVER off for the collector too');
    assert.equal(logsRequest(shop.otel[0]!, record()), true);
  });

  it('without providers or defaults, accessLogging is about the proxy log, as before', () => {
    const { resources } = parseConfigText(mesh() + telemetry('off', 'shop', '  accessLogging:\n  - disabled: true\n'), 'm.yaml');
    const shop = telemetryPolicyFor(resources, { namespace: 'shop', labels: {} }).accessLog;
    assert.deepEqual([own(shop).client.enabled, own(shop).server.enabled, shop.otel.length], [false, false, 0]);
  });

  it('an opentelemetry provider without http is OTLP over gRPC at http://service:port, with grpc.timeout and initialMetadata', () => {
    const text = mesh('    defaultProviders:\n      tracing: [otel-tracing]\n').replace('      opentelemetry: {port: 4317, service: opentelemetry-collector.observability.svc.cluster.local}', '      opentelemetry: {port: 4317, service: opentelemetry-collector.observability.svc.cluster.local, grpc: {timeout: 2s, initialMetadata: [{name: X-Tenant, value: a}]}}');
    const p = telemetryPolicyFor(parseConfigText(text, 'm.yaml').resources, { namespace: 'default', labels: {} }).traceProvider;
    assert.deepEqual(p, { name: 'otel-tracing', kind: 'opentelemetry', protocol: 'grpc', url: 'http://opentelemetry-collector.observability.svc.cluster.local:4317', headers: { 'x-tenant': 'a' }, timeoutMs: 2000 });
  });
});

describe("Envoy's format operators", () => {
  it("Istio's default text format on a request, as its task shows it", () => {
    assert.equal(
      compileFormat(ISTIO_TEXT_FORMAT).format(record()),
      '[2026-12-07T10:11:12.345Z] "GET /status/418?x=1 HTTP/1.1" 418 - via_upstream - "-" 0 135 4 3 "-" "curl/8" "rid-1" "httpbin:8000" "10.44.1.27:80" outbound|8000||httpbin.foo.svc.cluster.local - 10.0.45.184:8000 10.44.1.23:46520 - default\n',
    );
  });

  it('headers with fallbacks and lengths, paths without queries, trace id, CEL, %%, and unknown operators', () => {
    const f = compileFormat('%REQ(X-MISSING?X-TENANT)% %REQ(:PATH):4% %REQ_WITHOUT_QUERY(:PATH)% %TRACE_ID% %CEL(request.method)% 100%% %START_TIME(%Y/%m/%d %H:%M:%E3S)% %DYNAMIC_METADATA(x)%');
    assert.equal(f.format(record()), `blue /sta /status/418 ${'a'.repeat(32)} GET 100% 2026/12/07 10:11:12.345 -`);
    assert.deepEqual(f.unsupported, ['%DYNAMIC_METADATA(x)%']);
  });

  it("a TCP connection's line: no request, response code 0, the SNI", () => {
    const c: TcpLogLine = { startTime: new Date(0), durationMs: 9, flags: 'UF', bytesReceived: 1, bytesSent: 2, upstreamCluster: 'outbound|443||db', downstreamRemoteAddress: '10.0.0.1:5000', sni: 'db.example.com' };
    assert.equal(compileFormat('%REQ(:METHOD)% %RESPONSE_CODE% %RESPONSE_FLAGS% %REQUESTED_SERVER_NAME% %UPSTREAM_CLUSTER% %BYTES_SENT%').format(c), '- 0 UF db.example.com outbound|443||db 2');
  });
});

describe('validation of the providers', () => {
  it("Istio's gRPC tracing provider and its access-log provider validate without a word", () => {
    const text = mesh('    defaultProviders:\n      tracing: [otel-tracing]\n      accessLogging: [envoy, otel]\n');
    const { resources, problems } = parseConfigText(text, 'm.yaml');
    assert.deepEqual([...problems, ...validateAll(resources).problems], []);
  });

  it('a provider without service or port is still an error; an unknown operator and an undefined default provider are named', () => {
    const text = mesh('    defaultProviders:\n      accessLogging: [nowhere]\n')
      .replace('      opentelemetry: {port: 4317, service: opentelemetry-collector.observability.svc.cluster.local}', '      opentelemetry: {port: 4317}')
      .replace('        port: 4317\n        logName', '        logName')
      .replace('labels: {path: "%REQ(:PATH)%"}', 'labels: {path: "%FILTER_STATE(x)%"}');
    const messages = validateAll(parseConfigText(text, 'm.yaml').resources).problems.map((p) => `${p.severity} ${p.field}: ${p.message}`);
    assert.ok(messages.some((m) => /^error .*opentelemetry\.service: service is required/.test(m)), messages.join('\n'));
    assert.ok(messages.some((m) => /^error .*envoyOtelAls\.port: port is required/.test(m)), messages.join('\n'));
    assert.ok(messages.some((m) => /logFormat\.labels\.path: %FILTER_STATE\(x\)% is not evaluated/.test(m)), messages.join('\n'));
    assert.ok(messages.some((m) => /defaultProviders\.accessLogging\[0\]: no extensionProvider is named 'nowhere'/.test(m)), messages.join('\n'));
    assert.ok(!messages.some((m) => /OTLP\/HTTP/.test(m)), 'no warning for a provider without http');
  });
});

describe('failed exports', () => {
  it('are said once, then at most once a minute with how many failed in between', () => {
    const said: Array<Record<string, unknown>> = [];
    let t = 0;
    const exporter = { export: (_items: number[], done: (r: { code: number; error?: Error }) => void) => done({ code: 1, error: new Error('14 UNAVAILABLE') }) };
    const wrapped = reportingFailures(exporter, 'span', 'http://c:4317', { warn: (o) => said.push(o as Record<string, unknown>) }, () => t);
    const results: number[] = [];
    for (let i = 0; i < 5; i++) wrapped.export([1, 2], (r) => results.push(r.code));
    assert.deepEqual(results, [1, 1, 1, 1, 1], 'the processor still hears each failure');
    assert.equal(said.length, 1);
    t += FAILURE_REPORT_INTERVAL_MS;
    wrapped.export([1], () => undefined);
    assert.equal(said.length, 2);
    assert.equal(said[1]!['failedBatches'], 5);
    assert.equal(said[1]!['error'], '14 UNAVAILABLE');
  });
});
