// Istio's "Locality Load Balancing" tasks, their DestinationRules unchanged
// (test/fixtures/istio-tasks/locality-load-balancing/): helloworld in region1.zone1, region1.zone2,
// region2.zone3 and region3.zone4 (its `version` label, as "Before you begin" deploys it), each
// beside its sidecar, and sleep in region1.zone1 calling `helloworld.sample:5000/hello`:
// - "Locality failover": every reply comes from region1.zone1; `POST /drain_listeners` on that
//   helloworld's sidecar admin port moves the replies to region1.zone2, draining that one to
//   region2.zone3 (the failover rule region1 → region2, before region3), and then to region3.zone4;
//   Each drained pod's readiness probe then fails, as the kubelet would find it, and it leaves the
//   Service's endpoints;
// - "Locality weighted distribution": 70 / 20 / 0 / 10 per cent to zone1, zone2, zone3, zone4.
// The pods carry `istio-locality` (meshgate reads no Node objects, where a cluster keeps its zones).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import type { CertificateAuthority } from '../src/core/pki/authority.js';
import { startSidecar, type RunningSidecar } from '../src/sidecar/main.js';
import { serviceYaml, type TestEndpoint } from './helpers/cluster-yaml.js';
import { eventually } from './helpers/gateway.js';
import { sidecarOptions, testAuthority, untilSnapshot } from './helpers/mesh.js';
import { NO_APP } from './helpers/ports.js';
import { seededRandom } from './helpers/random.js';
import { repoPath } from './helpers/route-table.js';
import { inNamespace, kubectlApply, untilServed } from './helpers/task-mesh.js';

const CLUSTER = 'outbound|5000||helloworld.sample.svc.cluster.local';
const ZONES = ['region1.zone1', 'region1.zone2', 'region2.zone3', 'region3.zone4'] as const;
const fixture = (file: string): Promise<string> => readFile(repoPath(`test/fixtures/istio-tasks/locality-load-balancing/${file}`), 'utf8');

/** The helloworld sample's /hello, with the version its Deployment sets. */
async function helloworld(version: string): Promise<Server> {
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`Hello version: ${version}, instance: helloworld-${version}-86f77cd7b-cpxhv\n`);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

describe('Locality Load Balancing (helloworld in four zones)', () => {
  let ca: CertificateAuthority;
  let dir: string;
  const apps: Server[] = [];
  const sidecars = new Map<string, RunningSidecar>();
  let sleep: RunningSidecar;
  const all = (): RunningSidecar[] => [sleep, ...sidecars.values()];

  /** `curl -sL helloworld.sample:5000/hello` from sleep: the zone that answered, or the status. */
  const hello = (): Promise<string> =>
    new Promise((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port: sleep.outboundPort, path: 'http://helloworld.sample:5000/hello', agent: false, headers: { host: 'helloworld.sample:5000' } }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (s: string) => (text += s));
        res.on('end', () => resolve(res.statusCode === 200 ? (/^Hello version: ([^,]+),/.exec(text)?.[1] ?? text) : `${res.statusCode}`));
      });
      req.on('error', (err) => resolve(err.message));
      req.end();
    });
  const tally = async (n: number): Promise<Map<string, number>> => {
    const seen = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const zone = await hello();
      seen.set(zone, (seen.get(zone) ?? 0) + 1);
    }
    return seen;
  };
  /** `kubectl apply -n sample -f`. */
  const apply = async (task: string): Promise<void> => {
    const yaml = inNamespace(task, 'sample');
    await kubectlApply(dir, yaml);
    await Promise.all(all().map((s) => untilServed(s.holder, yaml)));
  };
  const drainListeners = async (zone: string): Promise<void> => {
    const r = await request(`http://127.0.0.1:${sidecars.get(zone)!.adminPort}/drain_listeners`, { method: 'POST' });
    assert.equal(r.statusCode, 200);
    await r.body.text();
  };

  const endpoints: TestEndpoint[] = [];
  /** The kubelet: once `zone`'s readiness probe is refused, its endpoint is marked not ready, and sleep's sidecar drops it. */
  const kubeletProbe = async (zone: string): Promise<void> => {
    const probe = (): Promise<boolean> => request(`http://127.0.0.1:${sidecars.get(zone)!.statusPort}/healthz/ready`).then((r) => (r.body.dump(), r.statusCode === 200), () => false);
    await eventually(async () => !(await probe()));
    const i = endpoints.findIndex((e) => e.pod === `helloworld-${zone}`);
    endpoints[i] = { ...endpoints[i]!, ready: false };
    await writeFile(join(dir, 'helloworld.yaml'), serviceYaml('helloworld', endpoints, { namespace: 'sample', port: 5000 }));
    const ready = endpoints.filter((e) => e.ready !== false).length;
    await untilSnapshot(sleep.holder, (snap) => snap.clusters.get(CLUSTER)?.endpoints.length === ready);
  };

  before(async () => {
    ca = await testAuthority();
    dir = await mkdtemp(join(tmpdir(), 'meshgate-locality-'));
    for (const zone of ZONES) {
      const app = await helloworld(zone);
      apps.push(app);
      const sidecar = await startSidecar({ ...sidecarOptions(ca, dir, 'helloworld', (app.address() as AddressInfo).port, 'sample'), labels: { app: 'helloworld', version: zone }, locality: zone.replace('.', '/') });
      sidecars.set(zone, sidecar);
      endpoints.push({ pod: `helloworld-${zone}`, port: sidecar.inboundPort, serviceAccount: 'helloworld', labels: { version: zone, 'istio-locality': zone, 'security.istio.io/tlsMode': 'istio' } });
    }
    sleep = await startSidecar({ ...sidecarOptions(ca, dir, 'sleep', NO_APP, 'sample'), locality: 'region1/zone1', random: seededRandom(7) });
    await writeFile(join(dir, 'helloworld.yaml'), serviceYaml('helloworld', endpoints, { namespace: 'sample', port: 5000 }));
    await Promise.all(all().map((s) => untilSnapshot(s.holder, (snap) => snap.registry.lookup('helloworld.sample.svc.cluster.local') !== undefined)));
  });
  after(async () => {
    await Promise.all(all().map((s) => s?.destroy()));
    for (const app of apps) app.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('Locality weighted distribution: 70 / 20 / 0 / 10 per cent from region1.zone1', async () => {
    await apply(await fixture('distribute.yaml'));
    const n = 400;
    const seen = await tally(n);
    assert.deepEqual([...seen.keys()].sort(), ['region1.zone1', 'region1.zone2', 'region3.zone4'], JSON.stringify([...seen]));
    // Seeded choices; each share within 5 points of the table's (over 4 standard deviations at n=400).
    for (const [zone, share] of [['region1.zone1', 70], ['region1.zone2', 20], ['region3.zone4', 10]] as const) {
      assert.ok(Math.abs((100 * seen.get(zone)!) / n - share) <= 5, `${zone}: ${seen.get(zone)} of ${n}`);
    }
  });

  it('Locality failover: region1.zone1, then zone2, then region2 (the failover rule), then region3', async () => {
    await apply(await fixture('failover.yaml'));
    assert.deepEqual([...(await tally(10))], [['region1.zone1', 10]]);
    for (const [drained, next] of [['region1.zone1', 'region1.zone2'], ['region1.zone2', 'region2.zone3'], ['region2.zone3', 'region3.zone4']] as const) {
      await drainListeners(drained);
      // "The first call will fail, which triggers the failover": outlier detection ejects the first
      // zone at once; past maxEjectionPercent (10) it is the pod leaving the Service that moves the
      // traffic, as in a cluster, where the drained status port (15021) fails its readiness probe.
      const first = await hello();
      assert.ok(first === next || first === '503', `first call after draining ${drained}: ${first}`);
      await kubeletProbe(drained);
      assert.deepEqual([...(await tally(10))], [[next, 10]], `after draining ${drained}`);
    }
  });
});
