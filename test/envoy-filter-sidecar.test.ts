// The local rate limits of Istio's task "Enabling Rate Limits using Envoy", applied as written
// (test/fixtures/istio-tasks/rate-limit/) to processes on loopback: a control plane reading a folder,
// productpage's sidecar in front of its app, and ratings' sidecar calling productpage:9080 as the
// task's curl from the ratings pod does. Each form lets 4 requests through per minute and answers
// the fifth 429 `local_rate_limited` with x-local-rate-limit: true; the bucket is productpage's
// (ratings' sidecar is not selected and is sent no EnvoyFilter). Intervals are a minute and each
// form's counts start fresh (a new configuration is a new bucket), so no refill can land mid-test.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from './helpers/gateway.js';
import { meshServiceYaml } from './helpers/mesh-tls.js';
import { viaProxy } from './helpers/mesh.js';
import { allReady, exited, meshgate, type MeshgateProcess } from './helpers/processes.js';
import { repoPath } from './helpers/route-table.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

const TASK = repoPath('test/fixtures/istio-tasks/rate-limit');

describe("EnvoyFilter local rate limit on a sidecar's inbound side (Istio's task YAML, processes)", () => {
  let dir: string;
  let config: string;
  let productpage: Upstream, ratings: Upstream;
  let control: MeshgateProcess | undefined, pp: MeshgateProcess | undefined, rt: MeshgateProcess | undefined;
  let outbound = 0;
  let ppAdmin = 0, rtAdmin = 0;

  const sidecar = (cp: number, ca: string, name: string, labels: string, appPort: number): MeshgateProcess =>
    meshgate([
      'sidecar', '--control', `https://127.0.0.1:${cp}`, '--root-cert', join(ca, 'root-cert.pem'), '--token', join(dir, `${name}.token`),
      '--namespace', 'default', '--service-account', `bookinfo-${name}`, '--workload', `${name}-1`, '--labels', labels,
      '--app-port', String(appPort), '--inbound-port', '0', '--outbound-port', '0',
      '--status-port', '0', '--admin-port', '0', '--listen-host', '127.0.0.1', '--access-log', 'off', '--metrics-port', '0',
    ]);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-envoyfilter-'));
    config = join(dir, 'config');
    await mkdir(config);
    productpage = await startUpstream('productpage');
    ratings = await startUpstream('ratings');
    await writeFile(join(dir, 'tokens.yaml'), ['productpage', 'ratings'].map((n) => `- {token: tok-${n}, namespace: default, serviceAccount: bookinfo-${n}}\n`).join(''));
    for (const n of ['productpage', 'ratings']) await writeFile(join(dir, `${n}.token`), `tok-${n}\n`);
    const ca = join(dir, 'ca');
    control = meshgate(['control', '--config', config, '--tokens', join(dir, 'tokens.yaml'), '--ca-dir', ca, '--port', '0', '--status-port', '0', '--debug-port', '0', '--listen-host', '127.0.0.1']);
    const cp = Number((await control.serving()).port);
    pp = sidecar(cp, ca, 'productpage', 'app=productpage,security.istio.io/tlsMode=istio', productpage.port);
    rt = sidecar(cp, ca, 'ratings', 'app=ratings,version=v1', ratings.port);
    const [ppLine, rtLine] = await Promise.all([pp.serving(), rt.serving()]);
    outbound = Number(rtLine.outbound);
    ppAdmin = Number(ppLine.admin);
    rtAdmin = Number(rtLine.admin);
    // productpage:9080 is reached through its sidecar's inbound port, as a pod's port would be under capture;
    // the sidecar's labels are its pod's, as injection gives them.
    await writeFile(join(config, 'services.yaml'), meshServiceYaml('productpage', Number(ppLine.inbound), { sa: 'bookinfo-productpage', servicePort: 9080 }));
    await allReady({ pp: { proc: pp, statusPort: Number(ppLine.status) }, rt: { proc: rt, statusPort: Number(rtLine.status) } }, 20_000);
    await eventually(async () => (await call()).status === 200, 20_000).catch((err: Error) => assert.fail(`${err.message}\n${rt!.log()}\n${pp!.log()}`));
  });

  after(async () => {
    for (const c of [rt, pp, control]) c?.kill('SIGKILL');
    await Promise.all([exited(rt), exited(pp), exited(control)]);
    await productpage.close();
    await ratings.close();
    await rm(dir, { recursive: true, force: true });
  });

  const call = () => viaProxy(outbound, 'http://productpage:9080/productpage');
  const ruleIds = async (admin: number): Promise<string[]> => ((await (await fetch(`http://127.0.0.1:${admin}/rate_limits`)).json()) as { rules: Array<{ id: string }> }).rules.map((r) => r.id);

  async function fiveCalls(): Promise<Array<{ status: number; headers: Record<string, unknown>; text: string }>> {
    const out = [];
    for (let i = 0; i < 5; i++) out.push(await call());
    return out;
  }

  function assertTaskOutcome(replies: Awaited<ReturnType<typeof fiveCalls>>): void {
    assert.deepEqual(replies.map((r) => r.status), [200, 200, 200, 200, 429]);
    const refused = replies[4]!;
    assert.equal(refused.text, 'local_rate_limited');
    assert.equal(refused.headers['x-local-rate-limit'], 'true');
    assert.equal(refused.headers['x-envoy-ratelimited'], undefined, 'Envoy sends only the configured headers');
    // Envoy's local rate limit adds no x-ratelimit-* headers unless asked to (enable_x_ratelimit_headers).
    assert.equal(replies[0]!.headers['x-ratelimit-limit'], undefined);
    assert.equal(replies[0]!.headers['x-local-rate-limit'], undefined);
  }

  it('the HTTP_FILTER form: 4 requests a minute reach productpage, the fifth is refused by its sidecar', async () => {
    await copyFile(join(TASK, 'local-rate-limit.yaml'), join(config, 'envoyfilter.yaml'));
    const id = 'EnvoyFilter istio-system/filter-local-ratelimit-svc configPatches[0]';
    await eventually(async () => (await ruleIds(ppAdmin)).includes(id), 20_000);
    const before = productpage.seen.length;
    assertTaskOutcome(await fiveCalls());
    assert.equal(productpage.seen.length - before, 4, 'the refused request never reached the app');
    // The root namespace's EnvoyFilter selects app: productpage only: ratings' sidecar has no limit.
    assert.deepEqual(await ruleIds(rtAdmin), []);
  });

  it('the HTTP_ROUTE form: the bucket of the inbound|http|9080 route does the same', async () => {
    await copyFile(join(TASK, 'local-rate-limit-route.yaml'), join(config, 'envoyfilter.yaml'));
    const id = 'EnvoyFilter istio-system/filter-local-ratelimit-svc configPatches[1]';
    await eventually(async () => JSON.stringify(await ruleIds(ppAdmin)) === JSON.stringify([id]), 20_000);
    assertTaskOutcome(await fiveCalls());
  });
});
