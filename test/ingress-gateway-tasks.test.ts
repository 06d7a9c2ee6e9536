// Istio's "Ingress Gateways" task at the gateway, its YAML unchanged
// (test/fixtures/istio-tasks/ingress-gateways/): httpbin-gateway on port 80 for httpbin.example.com
// and a VirtualService sending /status and /delay to httpbin:8000. The task's curl: /status/200 is
// `200 OK` from `server: istio-envoy`, /headers is 404; with the browser's form (hosts "*", /headers
// routed) /headers without a Host of its own answers httpbin's headers.
//
// Istio's "Kubernetes Gateway API" task, the same way (test/fixtures/istio-tasks/gateway-api/): a Gateway of class `istio` in istio-ingress listening on
// 80 for *.example.com, routes from all namespaces, and an HTTPRoute in default sending /get on
// httpbin.example.com to httpbin:8000. What the task's curl shows: /get is `200 OK` from
// `server: istio-envoy`, /headers is 404; with the RequestHeaderModifier filter added, httpbin sees
// `My-Added-Header: added-value`.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { startHttpbin, type Httpbin } from './helpers/httpbin.js';
import { repoPath } from './helpers/route-table.js';
import { untilServed, untilWithdrawn } from './helpers/task-mesh.js';

const task = (file: string, dir = 'gateway-api'): Promise<string> => readFile(repoPath(`test/fixtures/istio-tasks/${dir}/${file}`), 'utf8');
const HOST = 'httpbin.example.com';

// One gateway and one httpbin for both tasks; each task's files are removed when it is done.
describe('ingress tasks at the gateway', () => {
  let httpbin: Httpbin;
  let gw: TestGateway;
  const apply = async (file: string, yaml: string): Promise<void> => {
    await gw.write(file, yaml);
    await untilServed(gw.gw.holder, yaml);
  };

  before(async () => {
    httpbin = await startHttpbin();
    gw = await startTestGateway({ 'httpbin.yaml': serviceYaml('httpbin', [{ pod: 'httpbin-0', port: httpbin.port }], { port: 8000 }) });
  });
  after(async () => {
    await gw?.close();
    await httpbin?.close();
  });

  describe('Ingress Gateways (task)', () => {
    after(async () => {
      const yaml = await task('browser.yaml', 'ingress-gateways');
      await unlink(join(gw.dir, 'httpbin-gateway.yaml'));
      await untilWithdrawn(gw.gw.holder, yaml);
    });

    it('/status/200 is 200 OK from istio-envoy; /headers is 404', async () => {
      await apply('httpbin-gateway.yaml', await task('httpbin-gateway.yaml', 'ingress-gateways'));
      const ok = await gw.get(HOST, '/status/200');
      assert.equal(ok.status, 200);
      assert.equal(ok.headers['server'], 'istio-envoy');
      const missing = await gw.get(HOST, '/headers');
      assert.equal(missing.status, 404);
      assert.equal(missing.headers['server'], 'istio-envoy');
    });

    it('from a browser (hosts "*"): /headers shows what httpbin received', async () => {
      await apply('httpbin-gateway.yaml', await task('browser.yaml', 'ingress-gateways'));
      const r = await gw.get(`127.0.0.1:${gw.port}`, '/headers');
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json<{ headers: Record<string, string> }>().headers['Host'], `127.0.0.1:${gw.port}`);
    });
  });

  describe('Kubernetes Gateway API (task)', () => {
    it('/get is 200 from istio-envoy; /headers, which no rule matches, is 404', async () => {
      await apply('gateway.yaml', await task('gateway.yaml'));
      const ok = await gw.get(HOST, '/get');
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.headers['server'], 'istio-envoy');
      assert.equal((await gw.get(HOST, '/headers')).status, 404);
      assert.equal((await gw.get('other.example.com', '/get')).status, 404, 'the route is for httpbin.example.com only');
    });

    it('RequestHeaderModifier: httpbin sees My-Added-Header: added-value', async () => {
      const gateway = await task('gateway.yaml');
      await apply('gateway.yaml', gateway.slice(0, gateway.indexOf('---')));
      await apply('route.yaml', await task('httproute-header.yaml'));
      const r = await gw.get(HOST, '/headers');
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json<{ headers: Record<string, string> }>().headers['My-Added-Header'], 'added-value');
    });
  });
});
