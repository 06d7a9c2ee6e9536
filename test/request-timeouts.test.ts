// Istio's "Request Timeouts" task on sidecars, its YAML unchanged
// (test/fixtures/istio-tasks/request-timeouts/, with bookinfo's destination rules): productpage
// calls reviews v2, which calls ratings through its own sidecar, where the task's fault delays every
// call 2 s. Without a timeout the page waits and gets reviews' answer, ratings included; with
// reviews' `timeout: 0.5s` productpage's sidecar gives up first: 504 `upstream request timeout`.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BackendReply, RunningBackend } from '../src/demo/backend.js';
import { startBackend } from '../src/demo/backend.js';
import { startSidecar, type RunningSidecar } from '../src/sidecar/main.js';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { sidecarOptions, testAuthority, viaProxy } from './helpers/mesh.js';
import { NO_APP } from './helpers/ports.js';
import { repoPath } from './helpers/route-table.js';
import { untilServed } from './helpers/task-mesh.js';

const task = (file: string): Promise<string> => readFile(repoPath(`test/fixtures/istio-tasks/request-timeouts/${file}`), 'utf8');
const RATINGS = 'http://ratings:9080/ratings/0';

describe('Request Timeouts', () => {
  let dir: string;
  let ratings: RunningBackend, reviews: RunningBackend;
  let sidecars: { productpage: RunningSidecar; reviews: RunningSidecar; ratings: RunningSidecar };
  const apply = async (file: string, yaml: string): Promise<void> => {
    await writeFile(join(dir, file), yaml);
    await Promise.all(Object.values(sidecars).map((s) => untilServed(s.holder, yaml)));
  };

  before(async () => {
    const ca = await testAuthority();
    dir = await mkdtemp(join(tmpdir(), 'meshgate-timeouts-'));
    await copyFile(repoPath('test/fixtures/bookinfo/destination-rule-all.yaml'), join(dir, 'destination-rule-all.yaml'));
    ratings = await startBackend({ service: 'ratings', version: 'v1', instance: 'ratings-v1', port: 0 });
    let reviewsOutbound = 0;
    reviews = await startBackend({ service: 'reviews', version: 'v2', instance: 'reviews-v2', port: 0, calls: { proxyPort: () => reviewsOutbound, urls: [RATINGS] } });
    const meshed = (name: string, app: number, version?: string): Promise<RunningSidecar> =>
      startSidecar({ ...sidecarOptions(ca, dir, name, app), labels: { app: name, ...(version ? { version } : {}) } });
    sidecars = { productpage: await meshed('productpage', NO_APP), reviews: await meshed('reviews', reviews.port, 'v2'), ratings: await meshed('ratings', ratings.port, 'v1') };
    reviewsOutbound = sidecars.reviews.outboundPort;
    const tls = { 'security.istio.io/tlsMode': 'istio' };
    const services =
      serviceYaml('reviews', [{ pod: 'reviews-v2', port: sidecars.reviews.inboundPort, serviceAccount: 'reviews', labels: { version: 'v2', ...tls } }], { port: 9080 }) +
      '---\n' +
      serviceYaml('ratings', [{ pod: 'ratings-v1', port: sidecars.ratings.inboundPort, serviceAccount: 'ratings', labels: { version: 'v1', ...tls } }], { port: 9080 });
    await apply('services.yaml', services);
    await apply('reviews.yaml', await task('reviews-v2.yaml'));
    await apply('ratings.yaml', await task('ratings-delay.yaml'));
  });
  after(async () => {
    await Promise.all(Object.values(sidecars ?? {}).map((s) => s.destroy()));
    await Promise.all([ratings?.close(), reviews?.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  it('with the delay alone, productpage waits and gets reviews v2 with ratings in it', async () => {
    const r = await viaProxy(sidecars.productpage.outboundPort, 'http://reviews:9080/reviews/0');
    assert.equal(r.status, 200, r.text);
    const reply = JSON.parse(r.text) as BackendReply;
    assert.equal(reply.version, 'v2');
    assert.equal(reply.calls?.[RATINGS]?.status, 200);
  });

  it('with timeout 0.5s on reviews: 504 upstream request timeout', async () => {
    await apply('reviews.yaml', await task('reviews-timeout.yaml'));
    const r = await viaProxy(sidecars.productpage.outboundPort, 'http://reviews:9080/reviews/0');
    assert.equal(r.status, 504);
    assert.equal(r.text, 'upstream request timeout');
  });
});
