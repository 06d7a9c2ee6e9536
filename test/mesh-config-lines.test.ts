// The mesh config is a YAML text inside a ConfigMap (`data.mesh`, written `mesh: |`): a problem with one
// of its fields names that field's own line in the file (and a syntax error its column), whether the
// ConfigMap was read from a file, from the Kubernetes API or from the control plane; a running gateway
// says so and keeps serving the last good mesh config.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { parseConfigText } from '../src/core/config/load.js';
import { validateAll } from '../src/core/config/validate.js';
import { formatProblem } from '../src/core/config/problem.js';
import { toLoadResult, KUBE_KINDS } from '../src/core/sources/kube-objects.js';
import { decodeResources, encodeResource } from '../src/core/sources/control-plane-wire.js';
import type { Resource } from '../src/core/model/resource.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { eventually, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';

/** The ConfigMap with `mesh` lines from line 7 of its file on. */
const meshConfigMap = (meshLines: readonly string[], indicator = '|'): string =>
  ['apiVersion: v1', 'kind: ConfigMap', 'metadata:', '  name: istio', '  namespace: istio-system', 'data:', `  mesh: ${indicator}`, ...meshLines.map((l) => (l === '' ? '' : `    ${l}`)), ''].join('\n');

const SAMPLING = ['enableTracing: true', 'defaultConfig:', '  tracing:', '    sampling: 200', 'outboundTrafficPolicy:', '  mode: NOPE'];

function problemsOf(resources: readonly Resource[]): string[] {
  return validateAll(resources).problems.map(formatProblem);
}

describe('mesh config problems at their own line', () => {
  it('names the line of the field inside the block, for errors and warnings', () => {
    const text = meshConfigMap([...SAMPLING, 'extensionProviders:', '- name: otel', '  opentelemetry: {service: otel.istio-system.svc, port: 4317}']);
    const problems = problemsOf(parseConfigText(text, 'mesh.yaml').resources);
    assert.deepEqual(problems, [
      'mesh.yaml:11 ConfigMap istio-system/istio data.mesh.defaultConfig.tracing.sampling: sampling is a percentage, 0 to 100, not 200',
      'mesh.yaml:13 ConfigMap istio-system/istio data.mesh.outboundTrafficPolicy.mode: "NOPE" is not allowed; use one of REGISTRY_ONLY, ALLOW_ANY',
      "mesh.yaml:16 ConfigMap istio-system/istio data.mesh.extensionProviders[0].opentelemetry: warning: spans are exported over OTLP/HTTP only: set opentelemetry.http (path /v1/traces) and point port at the collector's HTTP port (4318)",
    ]);
  });

  it('counts blank lines, comments and a kind: List, and gives a syntax error its line and column', () => {
    const text = meshConfigMap(['# tracing', '', 'defaultConfig:', '  tracing: {sampling: -1}']);
    assert.match(problemsOf(parseConfigText(text, 'mesh.yaml').resources)[0] ?? '', /^mesh\.yaml:11 .* data\.mesh\.defaultConfig\.tracing\.sampling: /);

    const list = `apiVersion: v1\nkind: List\nitems:\n- ${meshConfigMap(SAMPLING).split('\n').join('\n  ')}`;
    assert.match(problemsOf(parseConfigText(list, 'list.yaml').resources)[0] ?? '', /^list\.yaml:14 .*tracing\.sampling: /);

    // Line 4 of the block, column 19 of the text: `    connectTimeout: [5s` is line 11, the `[` at column 5 + 16.
    const broken = meshConfigMap(['enableTracing: true', 'defaultConfig:', '  tracing: {sampling: 2}', 'connectTimeout: [5s', 'enablePrometheusMerge: true']);
    const [problem] = validateAll(parseConfigText(broken, 'mesh.yaml').resources).problems;
    assert.equal(problem?.field, 'data.mesh');
    assert.equal(problem?.line, 12);
    assert.ok((problem?.column ?? 0) > 4, `column ${problem?.column} is in the block`);
    assert.match(problem?.message ?? '', /^mesh is not YAML: /);
    assert.doesNotMatch(problem?.message ?? '', /at line \d/, 'no line counted in the text alone');
  });

  it('keeps the key line where the text is not a literal block, or the field is not there', () => {
    const folded = meshConfigMap(['enableTracing: 3'], '>');
    assert.match(problemsOf(parseConfigText(folded, 'mesh.yaml').resources)[0] ?? '', /^mesh\.yaml:7 .* data\.mesh\.enableTracing: /);
    const flow = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata:\n  mesh: "enableTracing: 3"\n';
    assert.match(problemsOf(parseConfigText(flow, 'mesh.yaml').resources)[0] ?? '', /^mesh\.yaml:5 .* data\.mesh\.enableTracing: /);
    const [cm] = parseConfigText(meshConfigMap(SAMPLING), 'mesh.yaml').resources;
    assert.equal(cm!.origin.lineOf(['data', 'mesh', 'absent', 'deeper']), 7, 'a top-level field that is not there: the mesh key');
    // A mapping's line is that of its first field, in the mesh config as in any resource.
    assert.equal(cm!.origin.lineOf(['data', 'mesh', 'defaultConfig', 'absent']), 10, 'a missing field below one that is there: its parent');
  });

  it('counts from the text\'s own first line for an object from the Kubernetes API, and keeps lines across the control plane\'s wire', () => {
    const configMaps = KUBE_KINDS.find((k) => k.kind === 'ConfigMap')!;
    const object = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'istio', namespace: 'istio-system' }, data: { mesh: `${SAMPLING.join('\n')}\n` } };
    const fromKube = toLoadResult([{ kind: configMaps, items: [object] }]).resources;
    assert.deepEqual(problemsOf(fromKube).map((p) => p.split(' ')[0]), ['kube:ConfigMap/istio-system/istio:4', 'kube:ConfigMap/istio-system/istio:6']);

    const fromFile = parseConfigText(meshConfigMap(SAMPLING), 'mesh.yaml').resources;
    for (const resources of [fromFile, fromKube]) {
      const sent = decodeResources(JSON.parse(JSON.stringify(resources.map(encodeResource)))).resources;
      assert.deepEqual(problemsOf(sent), problemsOf(resources));
    }
  });
});

describe('a running gateway and a bad mesh config field', () => {
  let upstream: Upstream;
  let gw: TestGateway;
  const logged: string[] = [];
  const mesh = (normalization: string, sampling: number) => meshConfigMap(['defaultConfig:', '  tracing:', `    sampling: ${sampling}`, 'pathNormalization:', `  normalization: ${normalization}`]);
  const route = 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: app}\nspec:\n  hosts: [app.example.com]\n  gateways: [gw]\n  http:\n  - route: [{destination: {host: app}}]\n';

  before(async () => {
    upstream = await startUpstream('app');
    const sink = new Writable({ write: (chunk: Buffer, _enc, cb) => (logged.push(...chunk.toString().split('\n').filter(Boolean).map((l) => String(JSON.parse(l).msg))), cb()) });
    gw = await startTestGateway(
      { 'gw.yaml': gatewayYaml(['app.example.com']), 'svc.yaml': serviceYaml('app', [{ pod: 'app-1', port: upstream.port }]), 'vs.yaml': route, 'mesh.yaml': mesh('NONE', 10) },
      { gateway: { logger: pino({ level: 'info' }, sink) } },
    );
  });
  after(async () => {
    await gw?.close();
    await upstream?.close();
  });

  it('logs the line inside the block and keeps serving the last good mesh config', async () => {
    const path = async () => String((await gw.get('app.example.com', '//app')).json().url);
    assert.equal(await path(), '//app', 'normalization NONE forwards the path as sent');

    await gw.write('mesh.yaml', mesh('MERGE_SLASHES', 200));
    const expected = 'mesh.yaml:10 ConfigMap istio-system/istio data.mesh.defaultConfig.tracing.sampling: sampling is a percentage, 0 to 100, not 200';
    await eventually(async () => logged.some((l) => l.endsWith(expected)));
    assert.equal(await path(), '//app', 'the last good mesh config (NONE) keeps serving');

    await gw.write('mesh.yaml', mesh('MERGE_SLASHES', 20));
    await eventually(async () => (await path()) === '/app');
  });
});
