// Integration: a gateway process writing its access log as Istio's "Envoy Access Logs" and Telemetry
// API tasks configure it, the YAML as those tasks write it: the mesh config's accessLogFile with
// accessLogEncoding JSON (Istio's default keys, typed values), then an envoyFileAccessLog provider
// with a `labels` format and a Telemetry filter `response.code >= 400`, then the mesh config alone
// (Istio's default text format). `/dev/stdout` is the process's `--access-log` file here, so the test
// can read it; each change is a new version of the files in the config folder, taken without restart.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { eventually } from './helpers/gateway.js';
import { gatewayRouteYaml, gatewayYaml, meshConfigYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { meshgate, ready, type MeshgateProcess } from './helpers/processes.js';
import { ISTIO_JSON_FORMAT } from '../src/core/telemetry/access-log-format.js';

const mesh = meshConfigYaml;

describe("access logs as Istio's tasks configure them, from a gateway process", () => {
  let httpbin: Upstream;
  let dir: string;
  let gw: MeshgateProcess;
  let port: number;
  const stdout = (): string => join(dir, 'stdout.log');

  const get = async (path: string, id: string): Promise<number> => {
    const r = await request(`http://127.0.0.1:${port}${path}`, { headers: { host: 'httpbin.example.com', 'x-request-id': id, 'user-agent': 'curl/8.5.0' } });
    await r.body.dump();
    return r.statusCode;
  };
  const lines = async (file: string): Promise<string[]> => (await readFile(file, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
  /** Sends requests (a new id each) until one's line appears in `file` as `match` wants; that line. */
  const lineOf = async (file: string, path: string, match: (line: string, id: string) => boolean): Promise<string> => {
    let found: string | undefined;
    let n = 0;
    await eventually(async () => {
      const id = `rid-${Date.now()}-${n++}`;
      await get(path, id);
      await eventually(async () => (await lines(file)).some((l) => l.includes(id)), 5_000).catch(() => undefined);
      found = (await lines(file)).find((l) => l.includes(id) && match(l, id));
      return found !== undefined;
    }, 60_000);
    return found!;
  };

  before(async () => {
    httpbin = await startUpstream('httpbin', (req, res) => {
      const m = /^\/status\/(\d+)/.exec(req.url ?? '');
      if (!m) return false;
      res.writeHead(Number(m[1]), { 'x-teapot': 'short and stout', 'content-length': '0' });
      res.end();
      return true;
    });
    dir = await mkdtemp(join(tmpdir(), 'meshgate-access-log-task-'));
    await mkdir(join(dir, 'config'));
    await writeFile(join(dir, 'config', 'gw.yaml'), `${gatewayYaml(['httpbin.example.com'])}---\n${gatewayRouteYaml(['httpbin.example.com'], 'httpbin')}`);
    await writeFile(join(dir, 'config', 'svc.yaml'), serviceYaml('httpbin', [{ pod: 'httpbin-1', port: httpbin.port }], { port: 8000 }));
    // The task's `istioctl install --set meshConfig.accessLogFile=/dev/stdout`, with its JSON encoding.
    await writeFile(join(dir, 'config', 'mesh.yaml'), mesh('accessLogFile: /dev/stdout\naccessLogEncoding: JSON'));
    gw = meshgate(['gateway', '--config', join(dir, 'config'), '--ports', '80=0', '--status-port', '0', '--admin-port', '0', '--listen-host', '127.0.0.1', '--access-log', stdout(), '--metrics-port', '0', '--workers', '1']);
    const line = await gw.serving();
    port = Number((line['ports'] as Record<string, number>)['80']);
    await eventually(() => ready(Number(line['statusPort'])), 60_000).catch((err: Error) => assert.fail(`${err.message}\n${gw.log()}`));
  });

  after(async () => {
    gw?.kill();
    await httpbin?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("accessLogEncoding JSON: Istio's default keys, numbers as numbers, null for what is not known", async () => {
    const line = JSON.parse(await lineOf(stdout(), '/status/418', (l) => l.startsWith('{'))) as Record<string, unknown>;
    assert.deepEqual(Object.keys(line), Object.keys(ISTIO_JSON_FORMAT).sort(), 'the keys of Istio\'s JSON encoding, and no others');
    assert.equal(line['response_code'], 418);
    assert.equal(line['method'], 'GET');
    assert.equal(line['path'], '/status/418');
    assert.equal(line['protocol'], 'HTTP/1.1');
    assert.equal(line['response_flags'], '-');
    assert.equal(line['response_code_details'], 'via_upstream');
    assert.equal(typeof line['duration'], 'number');
    assert.equal(line['bytes_sent'], 0);
    assert.match(String(line['upstream_service_time']), /^\d+$/);
    assert.equal(line['user_agent'], 'curl/8.5.0');
    assert.equal(line['authority'], 'httpbin.example.com');
    assert.equal(line['upstream_host'], `127.0.0.1:${httpbin.port}`);
    assert.equal(line['upstream_cluster'], 'outbound|8000||httpbin.default.svc.cluster.local');
    assert.equal(line['downstream_local_address'], `127.0.0.1:${port}`);
    assert.match(String(line['upstream_local_address']), /^127\.0\.0\.1:\d+$/, 'the proxy end of the connection to httpbin');
    assert.deepEqual([line['requested_server_name'], line['route_name'], line['upstream_transport_failure_reason'], line['connection_termination_details']], [null, null, null, null]);
  });

  it('an envoyFileAccessLog provider with labels and a Telemetry filter: only the errors, in those keys', async () => {
    const errors = join(dir, 'errors.log');
    await writeFile(join(dir, 'config', 'mesh.yaml'), mesh(`accessLogFile: /dev/stdout
accessLogEncoding: JSON
extensionProviders:
- name: json-errors
  envoyFileAccessLog:
    path: ${errors}
    logFormat:
      labels:
        status: "%RESPONSE_CODE%"
        method: "%REQ(:METHOD)%"
        path: "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"
        teapot: "%RESP(X-TEAPOT)%"
        agent: "%REQ(USER-AGENT):4%"
        started: "%START_TIME(%s.%3f)%"
        request_id: "%REQ(X-REQUEST-ID)%"`));
    await writeFile(join(dir, 'config', 'telemetry.yaml'), `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata:
  name: default-exception-logging
  namespace: istio-system
spec:
  accessLogging:
  - providers:
    - name: json-errors
    filter:
      expression: "response.code >= 400"
`);
    const teapot = JSON.parse(await lineOf(errors, '/status/418', () => true)) as Record<string, unknown>;
    assert.deepEqual(Object.keys(teapot), ['agent', 'method', 'path', 'request_id', 'started', 'status', 'teapot']);
    assert.deepEqual([teapot['status'], teapot['method'], teapot['path'], teapot['teapot'], teapot['agent']], [418, 'GET', '/status/418', 'short and stout', 'curl']);
    assert.match(String(teapot['started']), /^\d{10}\.\d{3}$/);
    // A 200 is filtered out: sent before a 418 whose line then appears, it left none.
    assert.equal(await get('/status/200', 'rid-ok'), 200);
    await lineOf(errors, '/status/418', () => true);
    assert.ok(!(await lines(errors)).some((l) => l.includes('rid-ok')), (await lines(errors)).join('\n'));
  });

  it("the mesh config's accessLogFile alone: Istio's default text format", async () => {
    await rm(join(dir, 'config', 'telemetry.yaml'));
    await writeFile(join(dir, 'config', 'mesh.yaml'), mesh('accessLogFile: /dev/stdout'));
    const line = await lineOf(stdout(), '/status/418', (l) => l.startsWith('['));
    const id = /"(rid-[^"]+)"/.exec(line)![1]!;
    const text = new RegExp(
      String.raw`^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] "GET /status/418 HTTP/1\.1" 418 - via_upstream - "-" 0 0 \d+ \d+ "127\.0\.0\.1" "curl/8\.5\.0" "${id}" ` +
        String.raw`"httpbin\.example\.com" "127\.0\.0\.1:${httpbin.port}" outbound\|8000\|\|httpbin\.default\.svc\.cluster\.local 127\.0\.0\.1:\d+ 127\.0\.0\.1:${port} 127\.0\.0\.1:\d+ - -$`,
    );
    assert.match(line, text);
  });
});
