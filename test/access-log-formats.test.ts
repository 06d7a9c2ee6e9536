// Envoy's access-log formats on request records, as the mesh config and Istio's providers set them:
// text with `-` for what is not known, JSON with typed values and null, truncation, START_TIME's
// strftime conversions, the format each configuration gives, and what validation says of bad ones.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { parseConfigText } from '../src/core/config/load.js';
import { validateAll } from '../src/core/config/validate.js';
import { compileFormat, compileJsonFormat, ISTIO_JSON_FORMAT } from '../src/core/telemetry/access-log-format.js';
import { compileTimeFormat } from '../src/core/telemetry/start-time-format.js';
import { telemetryPolicyFor } from '../src/core/telemetry/telemetry-policy.js';
import type { RequestRecord, TcpLogLine } from '../src/core/telemetry/access-log.js';
import { sampleRecord } from './helpers/request-record.js';
import { meshConfigYaml } from './helpers/cluster-yaml.js';
import { logsRequest, type FileLogSink } from '../src/core/telemetry/access-log-policy.js';

const teapot = { getHeader: (n: string) => (n === 'x-teapot' ? 'short and stout' : undefined), getHeaders: () => ({ 'x-teapot': 'short and stout' }) } as unknown as ServerResponse;
const record = (over: Partial<RequestRecord> = {}): RequestRecord => sampleRecord({ response: teapot, ...over });

const tcp: TcpLogLine = { startTime: new Date(0), durationMs: 9, flags: 'UF', bytesReceived: 1, bytesSent: 2, upstreamCluster: 'outbound|9000||tcp-echo.default.svc.cluster.local', downstreamRemoteAddress: '10.0.0.5:1234' };

describe('Envoy format strings', () => {
  it('text: operators, `-` for what is not known, :N truncation, %% and any response header', () => {
    const f = compileFormat('%REQ(:METHOD)% %REQ(X-MISSING?X-TENANT)% %REQ(USER-AGENT):4% %RESP(X-TEAPOT)% %RESP(X-NONE)% %TRAILER(GRPC-STATUS)% 100%% %UPSTREAM_TRANSPORT_FAILURE_REASON% %DOWNSTREAM_LOCAL_ADDRESS%');
    assert.deepEqual([f.errors, f.unsupported], [[], []]);
    assert.equal(f.format(record()), 'GET blue curl short and stout - - 100% - 10.0.45.184:8000');
  });

  it('%START_TIME(…)% with strftime conversions, %s, %f and %3f', () => {
    const t = new Date(Date.UTC(2026, 11, 7, 9, 5, 3, 42));
    assert.equal(compileTimeFormat('%Y/%m/%dT%H:%M:%S%z %s')(t), '2026/12/07T09:05:03+0000 1796634303');
    assert.equal(compileTimeFormat('%s.%3f|%f|%6f|%E3S|%b %a %j')(t), '1796634303.042|042000000|042000|03.042|Dec Mon 341');
    assert.equal(compileFormat('[%START_TIME(%F %T)%]').format(record()), '[2026-12-07 10:11:12]');
  });

  it('JSON: keys sorted, numbers stay numbers, null for what is not known, a mixed value is a string, nesting', () => {
    const f = compileJsonFormat({ status: '%RESPONSE_CODE%', took: '%DURATION%ms', none: '%REQ(X-NONE)%', agent: '%REQ(USER-AGENT):4%', at: '%START_TIME%', n: { route: '%ROUTE_NAME%' }, fixed: 7 });
    assert.equal(f.format(record()), '{"agent":"curl","at":"2026-12-07T10:11:12.345Z","fixed":7,"n":{"route":"default"},"none":null,"status":418,"took":"4ms"}\n');
  });

  it("Istio's default JSON keys on a TCP connection: response_code 0, the HTTP ones null", () => {
    const line = JSON.parse(compileJsonFormat(ISTIO_JSON_FORMAT).format(tcp)) as Record<string, unknown>;
    assert.deepEqual(Object.keys(line), Object.keys(ISTIO_JSON_FORMAT).sort());
    assert.deepEqual([line['response_code'], line['method'], line['response_flags'], line['bytes_sent'], line['upstream_cluster']], [0, null, 'UF', 2, 'outbound|9000||tcp-echo.default.svc.cluster.local']);
  });

  it('what Envoy refuses is an error; what meshgate does not evaluate prints -', () => {
    const f = compileFormat('%NOT_AN_OPERATOR% %REQ% 50% %DYNAMIC_METADATA(x)% %REQ(A?B?C)%');
    assert.equal(f.errors.length, 4, f.errors.join('\n'));
    assert.deepEqual(f.unsupported, ['%DYNAMIC_METADATA(x)%']);
  });

  it("%CEL(…)% reads the attributes filters read, response.headers among them", () => {
    const f = compileFormat("%CEL(response.headers['x-teapot'])% %CEL(response.code >= 400 && request.headers['x-tenant'] == 'blue')% %CEL(connection.mtls)% %CEL(source.address)%");
    assert.deepEqual(f.errors, []);
    assert.equal(f.format(record()), 'short and stout true false 10.44.1.23');
  });
});

const meshYaml = meshConfigYaml;

const fileLogs = (yaml: string): readonly FileLogSink[] => telemetryPolicyFor(parseConfigText(yaml, 'm.yaml').resources, { namespace: 'default', labels: {} }).accessLog.files;

/** Each file log's path and the line it writes of `r`. */
const ownLine = (yaml: string, r = record()): string => {
  const files = fileLogs(yaml);
  return files.map((f) => `${f.provider.path} ${f.provider.format.format(r)}`).join('');
};

describe('the format each configuration gives', () => {
  it("accessLogFile alone: Istio's default text format, as its task shows it", () => {
    assert.equal(ownLine(meshYaml('accessLogFile: /dev/stdout')), '/dev/stdout [2026-12-07T10:11:12.345Z] "GET /status/418?x=1 HTTP/1.1" 418 - via_upstream - "-" 0 135 4 3 "-" "curl/8" "rid-1" "httpbin:8000" "10.44.1.27:80" outbound|8000||httpbin.foo.svc.cluster.local - 10.0.45.184:8000 10.44.1.23:46520 - default\n');
  });

  it('accessLogEncoding JSON: the default keys; accessLogFormat: its own keys, or its text with a newline added', () => {
    const json = JSON.parse(ownLine(meshYaml('accessLogFile: /var/log/a.log\naccessLogEncoding: JSON')).replace('/var/log/a.log ', '')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(json), Object.keys(ISTIO_JSON_FORMAT).sort());
    assert.equal(json['upstream_service_time'], '3');
    assert.equal(ownLine(meshYaml('accessLogEncoding: JSON\naccessLogFormat: \'{"code": "%RESPONSE_CODE%", "who": "%REQ(X-TENANT)%"}\'')), '/dev/stdout {"code":418,"who":"blue"}\n');
    assert.equal(ownLine(meshYaml('accessLogFormat: "%RESPONSE_CODE% %REQ(:PATH)%"')), '/dev/stdout 418 /status/418?x=1\n');
  });

  it("nothing said: meshgate's JSON log with the local reply's error code; Telemetry naming envoy: Istio's text", () => {
    const line = JSON.parse(ownLine(meshYaml('enableTracing: true'), record({ errorCode: 'MESHGATE_ERR_RBAC_DENIED' })).replace('/dev/stdout ', '')) as Record<string, unknown>;
    assert.equal(line['meshgate_error_code'], 'MESHGATE_ERR_RBAC_DENIED');
    const envoy = `${meshYaml('enableTracing: true')}---\napiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: mesh-default, namespace: istio-system}\nspec:\n  accessLogging:\n  - providers:\n    - name: envoy\n`;
    assert.match(ownLine(envoy), /^\/dev\/stdout \[2026-12-07T10:11:12\.345Z\] "GET \/status\/418\?x=1 HTTP\/1\.1" 418 /);
  });

  it('an envoyFileAccessLog provider writes to its path in its labels as JSON, beside the built-in one', () => {
    const yaml = `${meshYaml('extensionProviders:\n- name: json-file\n  envoyFileAccessLog:\n    path: /tmp/errors.log\n    logFormat:\n      labels:\n        status: "%RESPONSE_CODE%"\n        teapot: "%RESP(X-TEAPOT)%"')}---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: mesh-default, namespace: istio-system}
spec:
  accessLogging:
  - providers:
    - name: json-file
    - name: envoy
    filter:
      expression: "response.code >= 400"
`;
    const lines = ownLine(yaml).split('\n');
    assert.equal(lines[0], '/tmp/errors.log {"status":418,"teapot":"short and stout"}');
    assert.match(lines[1]!, /^\/dev\/stdout \[/);
    const [errors, envoy] = fileLogs(yaml);
    assert.deepEqual([logsRequest(errors!, record()), logsRequest(errors!, record({ responseCode: 200 })), logsRequest(envoy!, record({ responseCode: 200 }))], [true, false, false], 'the filter is for both');
  });
});

describe('validation of access-log formats and filters', () => {
  it('names file, line, resource and field', () => {
    const yaml = `${meshYaml('accessLogEncoding: JSON\naccessLogFormat: "%RESPONSE_CODE%"\nextensionProviders:\n- name: f\n  envoyFileAccessLog:\n    logFormat:\n      text: "%RESPONSE_COD% %DYNAMIC_METADATA(a)%"')}---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: {name: t, namespace: istio-system}
spec:
  accessLogging:
  - filter:
      expression: "response.code >= (400"
  - filter:
      expression: "size(request.headers) > 3"
`;
    const { resources } = parseConfigText(yaml, 'telemetry.yaml');
    const text = validateAll(resources).problems.map((p) => `${p.severity} ${p.file}:${p.line} ${p.resource} ${p.field}: ${p.message}`);
    const has = (re: RegExp): void => assert.ok(text.some((t) => re.test(t)), `${re}\n${text.join('\n')}`);
    has(/^error telemetry\.yaml:7 ConfigMap istio-system\/istio data\.mesh\.accessLogFormat: under accessLogEncoding JSON, accessLogFormat must be a JSON object/);
    has(/^error telemetry\.yaml:12 .* data\.mesh\.extensionProviders\[0\]\.envoyFileAccessLog\.logFormat\.text: not an Envoy access-log format: %RESPONSE_COD% is not an Envoy command operator/);
    has(/^warning telemetry\.yaml:12 .*logFormat\.text: %DYNAMIC_METADATA\(a\)% is not evaluated by meshgate/);
    has(/^error telemetry\.yaml:20 Telemetry istio-system\/t spec\.accessLogging\[0\]\.filter\.expression: not a CEL expression: '\(' is not closed/);
    has(/^warning telemetry\.yaml:22 .*spec\.accessLogging\[1\]\.filter\.expression: expression not supported/);
  });
});
