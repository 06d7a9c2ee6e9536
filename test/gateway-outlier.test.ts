// Integration: outlier detection at a real gateway with an injected clock. An endpoint that keeps
// answering 503 is ejected and traffic goes to the healthy one; it returns after baseEjectionTime
// (twice as long after a second ejection); connect failures eject too; maxEjectionPercent holds.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { closedPort, startUpstream, type Upstream } from './helpers/upstream.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';

interface EndpointView {
  address: string;
  ejected: boolean;
  ejectedUntil: string | null;
  ejections: number;
}

const failing = (res: import('node:http').ServerResponse): boolean => {
  res.writeHead(503, { 'content-length': '4' });
  res.end('oops');
  return true;
};

describe('outlier detection', () => {
  let good: Upstream, bad: Upstream, partner: Upstream;
  const broken: Upstream[] = [];
  let dead: number;
  let gw: TestGateway;
  let now = Date.UTC(2030, 0, 1);

  const endpoints = async (cluster: string): Promise<EndpointView[]> => {
    const r = await request(`http://127.0.0.1:${gw.gw.adminPort}/clusters`);
    const all = (await r.body.json()) as Array<{ name: string; endpoints: EndpointView[] }>;
    const c = all.find((x) => x.name === cluster);
    assert.ok(c, `cluster ${cluster} on /clusters`);
    return c.endpoints;
  };
  const endpoint = async (cluster: string, port: number): Promise<EndpointView> => {
    const e = (await endpoints(cluster)).find((x) => x.address === `127.0.0.1:${port}`);
    assert.ok(e);
    return e;
  };

  before(async () => {
    good = await startUpstream('good');
    bad = await startUpstream('bad', (_req, res) => failing(res));
    partner = await startUpstream('partner');
    for (let i = 0; i < 4; i++) broken.push(await startUpstream(`broken-${i}`, (_req, res) => failing(res)));
    dead = await closedPort();
    gw = await startTestGateway(
      {
        'gateway.yaml': gatewayYaml(['*.example.com']),
        'services.yaml': [
          serviceYaml('flaky', [{ pod: 'flaky-good', port: good.port }, { pod: 'flaky-bad', port: bad.port }]),
          serviceYaml('half-dead', [{ pod: 'hd-dead', port: dead }, { pod: 'hd-ok', port: partner.port }]),
          serviceYaml('broken', broken.map((u, i) => ({ pod: `broken-${i}`, port: u.port }))),
        ].join('---\n'),
        'rules.yaml': `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: flaky}
spec:
  host: flaky
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 3, interval: 10s, baseEjectionTime: 30s}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: half-dead}
spec:
  host: half-dead
  trafficPolicy:
    outlierDetection: {consecutiveGatewayErrors: 1, consecutive5xxErrors: 0}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: broken}
spec:
  host: broken
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 1, maxEjectionPercent: 50}
`,
        'vs.yaml': ['flaky', 'half-dead', 'broken']
          .map(
            (name) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}}
spec:
  hosts: [${name}.example.com]
  gateways: [gw]
  http:
  - route: [{destination: {host: ${name}}}]
`,
          )
          .join('---\n'),
      },
      { now: () => now },
    );
  });

  after(async () => {
    await gw.close();
    await Promise.all([good, bad, partner, ...broken].map((u) => u.close()));
  });

  const FLAKY = 'outbound|80||flaky.default.svc.cluster.local';

  it('ejects an endpoint that keeps answering 503, sends everything to the healthy one, and lets it back after baseEjectionTime', async () => {
    // Until the third 503 in a row the bad endpoint is still picked.
    let errors = 0;
    for (let i = 0; i < 200 && bad.seen.length < 3; i++) {
      if ((await gw.get('flaky.example.com', '/')).status === 503) errors++;
    }
    assert.equal(errors, 3);
    const ejected = await endpoint(FLAKY, bad.port);
    assert.equal(ejected.ejected, true);
    // Ejected at t0 for 30 s, back on the first 10 s tick after that.
    assert.equal(ejected.ejectedUntil, new Date(now + 30_000).toISOString());
    assert.equal((await endpoint(FLAKY, good.port)).ejected, false);

    // Once ejected, no client sees an error.
    for (let i = 0; i < 30; i++) assert.equal((await gw.get('flaky.example.com', '/')).status, 200);
    assert.equal(bad.seen.length, 3);

    now += 30_000;
    assert.equal((await endpoint(FLAKY, bad.port)).ejected, false);
    for (let i = 0; i < 200 && bad.seen.length < 6; i++) await gw.get('flaky.example.com', '/');
    assert.equal(bad.seen.length, 6, 'back in rotation, and failing again');
    const again = await endpoint(FLAKY, bad.port);
    assert.equal(again.ejected, true);
    assert.equal(again.ejections, 2);
    // The second ejection lasts twice as long.
    assert.equal(again.ejectedUntil, new Date(now + 60_000).toISOString());
  });

  it('connect failures count as gateway errors', async () => {
    // The gateway retries a refused connection on the other endpoint, so clients see no error.
    for (let i = 0; i < 20; i++) assert.equal((await gw.get('half-dead.example.com', '/')).status, 200);
    const d = await endpoint('outbound|80||half-dead.default.svc.cluster.local', dead);
    assert.equal(d.ejected, true);
    assert.equal(d.ejections, 1);
  });

  it('never ejects more than maxEjectionPercent of the endpoints', async () => {
    for (let i = 0; i < 40; i++) assert.equal((await gw.get('broken.example.com', '/')).status, 503);
    const eps = await endpoints('outbound|80||broken.default.svc.cluster.local');
    assert.equal(eps.filter((e) => e.ejected).length, 2, JSON.stringify(eps));
  });
});
