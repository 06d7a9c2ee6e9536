// Integration: configuration edits apply without restart and without failing requests; a broken
// edit keeps the last good configuration serving.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { eventually, send, startTestGateway, type TestGateway } from './helpers/gateway.js';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';

const route = (service: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app}
spec:
  hosts: [app.example.com]
  gateways: [gw]
  http:
  - route: [{destination: {host: ${service}}}]
`;

describe('hot reload', () => {
  let a: Upstream, b: Upstream;
  let gw: TestGateway;

  before(async () => {
    a = await startUpstream('a');
    b = await startUpstream('b');
    gw = await startTestGateway(
      {
        'gw.yaml': gatewayYaml(['app.example.com']),
        'svc.yaml': serviceYaml('svc-a', [{ pod: 'a-1', port: a.port }]) + '---\n' + serviceYaml('svc-b', [{ pod: 'b-1', port: b.port }]),
        'vs.yaml': route('svc-a'),
      },
    );
  });

  after(async () => {
    await gw?.close();
    await a?.close();
    await b?.close();
  });

  it('applies an edit while requests keep succeeding, and keeps serving through a broken edit', async () => {
    let failures = 0;
    let total = 0;
    let stop = false;
    const load = (async () => {
      while (!stop) {
        const rs = await Promise.all(Array.from({ length: 8 }, () => gw.get('app.example.com').catch(() => undefined)));
        for (const r of rs) {
          total++;
          if (!r || r.status !== 200) failures++;
        }
      }
    })();

    try {
      await gw.write('vs.yaml', route('svc-b'));
      await eventually(async () => (await gw.get('app.example.com')).json().name === 'b');

      // Broken YAML: the file cannot be parsed; its last good VirtualService keeps serving.
      await gw.write('vs.yaml', 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: app\nspec: [');
      await new Promise((r) => setTimeout(r, 400));
      assert.equal((await gw.get('app.example.com')).json().name, 'b');

      // Valid YAML, invalid resource (negative weight): the last good version keeps serving.
      await gw.write('vs.yaml', route('svc-a').replace('{destination: {host: svc-a}}', '{destination: {host: svc-a}, weight: -1}'));
      await new Promise((r) => setTimeout(r, 400));
      assert.equal((await gw.get('app.example.com')).json().name, 'b');

      await gw.write('vs.yaml', route('svc-a'));
      await eventually(async () => (await gw.get('app.example.com')).json().name === 'a');
    } finally {
      // Also when an assertion fails: the loop would keep the test file running for ever.
      stop = true;
      await load;
    }
    assert.ok(total > 50, `only ${total} requests sent`);
    assert.equal(failures, 0, `${failures} of ${total} requests failed`);
  });

  it('shows the problems of the serving snapshot on the admin port', async () => {
    await gw.write('bad.yaml', 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: bad}\nspec:\n  hosts: [x.example.com]\n  http:\n  - route: [{destination: {host: a}, weight: -5}, {destination: {host: b}}]\n');
    await eventually(async () => {
      const r = await send(gw.gw.adminPort, 'localhost', '/problems');
      return /bad\.yaml:7 VirtualService default\/bad spec\.http\[0\]\.route\[0\]\.weight/.test(r.text);
    });
  });
});

describe('access log', () => {
  it('writes one JSON line per request with Istio field names', async () => {
    const up = await startUpstream('u');
    const dir = await import('node:fs/promises').then((fs) => fs.mkdtemp(join((process.env.TMPDIR ?? '/tmp'), 'meshgate-log-')));
    const file = join(dir, 'access.log');
    const gw = await startTestGateway(
      { 'gw.yaml': gatewayYaml(['app.example.com']), 'svc.yaml': serviceYaml('svc', [{ pod: 'p', port: up.port }]), 'vs.yaml': route('svc').replace('- route:', '- name: main\n    route:') },
      { accessLog: file },
    );
    try {
      await gw.get('app.example.com', '/x?y=1', { 'user-agent': 'test-agent', 'x-request-id': 'rid-1' });
      await gw.get('nobody.example.com', '/');
    } finally {
      await gw.close();
      await up.close();
    }
    const lines = (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.length, 2);
    // A line is written when its exchange closes, so the two lines may land in either order.
    const ok = lines.find((l) => l.request_id === 'rid-1');
    const miss = lines.find((l) => l.request_id !== 'rid-1');
    assert.ok(ok && miss, JSON.stringify(lines));
    assert.equal(ok.method, 'GET');
    assert.equal(ok.path, '/x?y=1');
    assert.equal(ok.response_code, 200);
    assert.equal(ok.response_flags, '-');
    assert.equal(ok.user_agent, 'test-agent');
    assert.equal(ok.request_id, 'rid-1');
    assert.equal(ok.authority, 'app.example.com');
    assert.equal(ok.upstream_cluster, 'outbound|80||svc.default.svc.cluster.local');
    assert.equal(ok.upstream_host, `127.0.0.1:${up.port}`);
    assert.equal(ok.route_name, 'main');
    // A response header in Istio's JSON keys (%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%): a string.
    assert.match(String(ok.upstream_service_time), /^\d+$/);
    assert.equal(miss.response_code, 404);
    assert.equal(miss.response_flags, 'NR');
  });
});
