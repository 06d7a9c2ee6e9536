// The Gateway API's mesh support (GAMMA) as processes on loopback: a control plane reading a folder,
// a productpage sidecar started with the CLI, and reviews-v1/v2/v3 backends. The HTTPRoutes are
// those of Istio's bookinfo tasks (Gateway API tab) as written, attached to Service reviews:
// end-user jason goes to reviews-v2 and everyone else to reviews-v1, then a 50/50 weight split
// between reviews-v1 and reviews-v3 once the route file is replaced. Waits are on conditions.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { REQUEST_ROUTING, TRAFFIC_SHIFTING } from './helpers/gamma-yaml.js';
import { eventually } from './helpers/gateway.js';
import { viaProxy } from './helpers/mesh.js';
import { allReady, exited, meshgate, type MeshgateProcess } from './helpers/processes.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

describe('GAMMA with processes: HTTPRoutes attached to a Service steer a real sidecar', () => {
  let dir: string;
  let config: string;
  const backends: Record<string, Upstream> = {};
  let control: MeshgateProcess | undefined, sidecar: MeshgateProcess | undefined;
  let outbound = 0;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-gamma-'));
    config = join(dir, 'config');
    await mkdir(config);
    for (const v of ['v1', 'v2', 'v3']) backends[v] = await startUpstream(`reviews-${v}`);
    const productpage = await startUpstream('productpage');
    backends.productpage = productpage;
    // Service reviews selects every version; reviews-v1/v2/v3 one each, as Istio's bookinfo-versions.yaml.
    const reviews = serviceYaml('reviews', ['v1', 'v2', 'v3'].map((v) => ({ pod: `reviews-${v}-0`, port: backends[v]!.port, labels: { version: v } })), { port: 9080 });
    const versions = ['v1', 'v2', 'v3'].map((v) => serviceYaml(`reviews-${v}`, [{ pod: `reviews-${v}-pod`, port: backends[v]!.port }], { port: 9080 }));
    await writeFile(join(config, 'services.yaml'), [reviews, ...versions, serviceYaml('productpage', [{ pod: 'productpage-0', port: productpage.port }], { port: 9080 })].join('---\n'));
    await writeFile(join(config, 'route.yaml'), REQUEST_ROUTING);
    await writeFile(join(dir, 'tokens.yaml'), '- {token: tok-productpage, namespace: default, serviceAccount: bookinfo-productpage}\n');
    await writeFile(join(dir, 'productpage.token'), 'tok-productpage\n');
    const ca = join(dir, 'ca');
    control = meshgate(['control', '--config', config, '--tokens', join(dir, 'tokens.yaml'), '--ca-dir', ca, '--port', '0', '--status-port', '0', '--debug-port', '0', '--listen-host', '127.0.0.1']);
    const cp = await control.serving();
    sidecar = meshgate([
      'sidecar', '--control', `https://127.0.0.1:${Number(cp.port)}`, '--root-cert', join(ca, 'root-cert.pem'), '--token', join(dir, 'productpage.token'),
      '--namespace', 'default', '--service-account', 'bookinfo-productpage', '--workload', 'productpage-0', '--labels', 'app=productpage,version=v1',
      '--app-port', String(productpage.port), '--inbound-port', '0', '--outbound-port', '0',
      '--status-port', '0', '--admin-port', '0', '--listen-host', '127.0.0.1', '--access-log', 'off', '--metrics-port', '0',
    ]);
    const sc = await sidecar.serving();
    outbound = Number(sc.outbound);
    await allReady({ control: { proc: control, statusPort: Number(cp.statusPort) }, sidecar: { proc: sidecar, statusPort: Number(sc.status) } }, 20_000);
  });

  after(async () => {
    for (const c of [sidecar, control]) c?.kill('SIGKILL');
    await Promise.all([exited(sidecar), exited(control)]);
    for (const b of Object.values(backends)) await b.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Which backend answered a GET the productpage app sends through its sidecar. */
  async function reviewsVersion(headers: Record<string, string> = {}): Promise<string> {
    const r = await viaProxy(outbound, 'http://reviews:9080/reviews/0', headers);
    return r.status === 200 ? String(r.headers['x-upstream']) : `${r.status} ${r.text.slice(0, 200)}`;
  }

  it("request routing: end-user jason reaches reviews-v2, every other request reviews-v1 (Istio's task, Gateway API tab)", async () => {
    await eventually(async () => (await reviewsVersion({ 'end-user': 'jason' })) === 'reviews-v2', 20_000);
    for (let i = 0; i < 10; i++) {
      assert.equal(await reviewsVersion({ 'end-user': 'jason' }), 'reviews-v2');
      assert.equal(await reviewsVersion(), 'reviews-v1', sidecar!.log());
      assert.equal(await reviewsVersion({ 'end-user': 'someone' }), 'reviews-v1');
    }
    // The other services keep their default route.
    const pp = await viaProxy(outbound, 'http://productpage:9080/', { 'end-user': 'jason' });
    assert.equal(pp.headers['x-upstream'], 'productpage');
  });

  it('the sidecar admin /routes names the HTTPRoute rule each route came from', async () => {
    const admin = Number((await sidecar!.serving()).admin);
    const text = await (await fetch(`http://127.0.0.1:${admin}/routes`)).text();
    assert.match(text, /route config 9080 \(outbound\)/);
    assert.match(text, /vhost reviews\.default\.svc\.cluster\.local/);
    assert.match(text, /\[HTTPRoute default\/reviews http\[0\]\.match\[0\]\] when uri prefix "\/" and header end-user exact "jason"/);
    assert.match(text, /outbound\|9080\|\|reviews-v2\.default\.svc\.cluster\.local 100%/);
  });

  it('traffic shifting: with the weighted route, requests split between reviews-v1 and reviews-v3, none to v2', async () => {
    await writeFile(join(config, 'route.yaml'), TRAFFIC_SHIFTING);
    await eventually(async () => (await reviewsVersion()) === 'reviews-v3', 20_000);
    const seen = new Map<string, number>();
    // 60 requests at 50/50: each side is hit unless 60 fair coins all land alike (2^-59).
    for (let i = 0; i < 60; i++) {
      const v = await reviewsVersion({ 'end-user': 'jason' });
      seen.set(v, (seen.get(v) ?? 0) + 1);
    }
    assert.deepEqual([...seen.keys()].sort(), ['reviews-v1', 'reviews-v3'], JSON.stringify([...seen]));
  });
});
