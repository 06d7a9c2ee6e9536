// Graceful drain: readiness fails at once, requests keep being served through the drain period
// (HTTP/1 responses then close their connection), a request in flight when listeners close still
// completes, and afterwards nothing listens.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startUpstream } from './helpers/upstream.js';
import { startTestGateway } from './helpers/gateway.js';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';

test('drain: not ready at once, still serving, in-flight requests finish', async (t) => {
  const slow = await startUpstream('slow', (req, res, echo) => {
    if (req.url !== '/slow') return false;
    setTimeout(() => res.end(JSON.stringify(echo)), 600);
    return true;
  });
  t.after(() => slow.close());
  const gw = await startTestGateway({
    'gw.yaml': gatewayYaml(['app.example.com']),
    'svc.yaml': serviceYaml('app', [{ pod: 'app-1', port: slow.port }]),
    'vs.yaml': `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app}
spec:
  hosts: [app.example.com]
  gateways: [gw]
  http:
  - route: [{destination: {host: app}}]
`,
  });
  t.after(() => gw.close());
  const ready = async () => {
    const r = await request(`http://127.0.0.1:${gw.gw.statusPort}/healthz/ready`);
    await r.body.dump();
    return r.statusCode;
  };
  assert.equal(await ready(), 200);
  const inFlight = gw.get('app.example.com', '/slow');
  const drained = gw.gw.drain(0.3);
  assert.equal(await ready(), 503);
  const during = await gw.get('app.example.com', '/fast');
  assert.equal(during.status, 200);
  assert.equal(during.headers.connection, 'close');
  assert.equal((await inFlight).status, 200);
  await drained;
  await assert.rejects(request(`http://127.0.0.1:${gw.port}/`, { headers: { host: 'app.example.com' } }));
});
