// Integration: locality-aware load balancing at a gateway that runs in region-a/zone-1. With outlier
// detection, traffic stays in zone-1 until its endpoint is ejected, then fails over to zone-2, then
// to the failover region (region-b), then to the rest. Without outlier detection locality is not
// applied; distribute splits traffic by locality weight.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { gatewayYaml, staticServiceEntryYaml } from './helpers/cluster-yaml.js';

const LOCALITIES: Record<string, string> = {
  z1: 'region-a/zone-1',
  z2: 'region-a/zone-2',
  rb: 'region-b/zone-1',
  rc: 'region-c/zone-1',
};

const serviceEntry = (host: string, ups: readonly Upstream[]): string => staticServiceEntryYaml(host, ups.map((u) => ({ port: u.port, locality: LOCALITIES[u.name]! })));

describe('locality failover and distribution', () => {
  const failing = new Set<string>();
  const ups: Record<string, Upstream> = {};
  let gw: TestGateway;

  /** Who answered each of `n` requests (`503` for an error). */
  const who = async (host: string, n: number): Promise<Record<string, number>> => {
    const out: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const r = await gw.get(host, '/');
      const name = r.status === 200 ? String(r.headers['x-upstream']) : String(r.status);
      out[name] = (out[name] ?? 0) + 1;
    }
    return out;
  };

  before(async () => {
    for (const name of Object.keys(LOCALITIES)) {
      ups[name] = await startUpstream(name, (_req, res: ServerResponse) => {
        if (!failing.has(name)) return false;
        res.writeHead(503, { 'content-length': '0' });
        res.end();
        return true;
      });
    }
    const all = Object.values(ups);
    const route = (name: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}}
spec:
  hosts: [${name}.example.com]
  gateways: [gw]
  http:
  - route: [{destination: {host: ${name}.internal}}]
`;
    gw = await startTestGateway(
      {
        'gateway.yaml': gatewayYaml(['*.example.com']),
        'services.yaml': [serviceEntry('geo.internal', all), serviceEntry('flat.internal', [ups.z1!, ups.rb!]), serviceEntry('spread.internal', [ups.z1!, ups.z2!, ups.rb!])].join('---\n'),
        'rules.yaml': `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: geo}
spec:
  host: geo.internal
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 1, maxEjectionPercent: 100}
    loadBalancer:
      localityLbSetting:
        failover: [{from: region-a, to: region-b}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: spread}
spec:
  host: spread.internal
  trafficPolicy:
    loadBalancer:
      localityLbSetting:
        distribute:
        - from: region-a/zone-1/*
          to: {"region-a/zone-1/*": 80, "region-b/*": 20}
`,
        'vs.yaml': ['geo', 'flat', 'spread'].map(route).join('---\n'),
      },
      { locality: 'region-a/zone-1' },
    );
  });

  after(async () => {
    await gw.close();
    await Promise.all(Object.values(ups).map((u) => u.close()));
  });

  it('stays in zone-1, then fails over to zone-2, region-b and the rest as endpoints are ejected', async () => {
    assert.deepEqual(await who('geo.example.com', 20), { z1: 20 });

    failing.add('z1');
    // One client sees zone-1's 503, which ejects it.
    assert.deepEqual(await who('geo.example.com', 21), { 503: 1, z2: 20 });

    failing.add('z2');
    // The failover rule sends region-a's traffic to region-b before any other region.
    assert.deepEqual(await who('geo.example.com', 21), { 503: 1, rb: 20 });

    failing.add('rb');
    assert.deepEqual(await who('geo.example.com', 21), { 503: 1, rc: 20 });
    failing.clear();
  });

  it('without outlier detection, locality is not applied', async () => {
    const seen = await who('flat.example.com', 40);
    assert.ok((seen.z1 ?? 0) > 5 && (seen.rb ?? 0) > 5, JSON.stringify(seen));
  });

  it('distribute splits traffic by locality weight; localities in no rule get none', async () => {
    const seen = await who('spread.example.com', 200);
    assert.equal(seen.z2, undefined);
    assert.ok(Math.abs((seen.z1 ?? 0) - 160) <= 20, JSON.stringify(seen));
    assert.equal((seen.z1 ?? 0) + (seen.rb ?? 0), 200);
  });
});
