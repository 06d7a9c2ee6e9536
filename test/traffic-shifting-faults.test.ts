// Istio's "Request Routing", "Fault Injection" and "Traffic Shifting" tasks on bookinfo, the
// sample's YAML unchanged (test/fixtures/bookinfo/, test/fixtures/istio-tasks/fault-injection/ and
// traffic-shifting/), each proxy a meshgate sidecar and the page loaded through the ingress gateway:
// - virtual-service-all-v1: every page shows reviews v1; reviews-test-v2: jason's shows v2, with
//   ratings, everyone else's v1;
// - ratings-test-abort: jason's reviews gets 500 `fault filter abort` from ratings (the page's
//   "Ratings service is currently unavailable"), counted with response flag FI at reviews' sidecar,
//   and ratings never sees the call; ratings-test-delay: jason's call to ratings is held (flag DI)
//   and then reaches ratings; nobody else's is;
// - reviews-50-v3 splits the pages between v1 and v3 and never v2; reviews-v3 sends every one to v3.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { eventually } from './helpers/gateway.js';
import { startBookinfoMesh, type BookinfoMesh } from './helpers/bookinfo-mesh.js';
import { scrapeSamples } from './helpers/prometheus-text.js';
import { repoPath } from './helpers/route-table.js';

const sample = (file: string): Promise<string> => readFile(repoPath(`test/fixtures/${file}`), 'utf8');
const LOADS = 40;

describe('Request Routing, Fault Injection, Traffic Shifting (bookinfo)', () => {
  let mesh: BookinfoMesh;
  const versions = async (user?: string): Promise<Map<string | undefined, number>> => {
    const seen = new Map<string | undefined, number>();
    for (let i = 0; i < LOADS; i++) {
      const page = await mesh.page(user);
      assert.equal(page.status, 200, page.text);
      seen.set(page.reviews?.version, (seen.get(page.reviews?.version) ?? 0) + 1);
    }
    return seen;
  };
  /** reviews v2's calls to ratings as its sidecar counts them (reporter source), by response flags. */
  const ratingsCalls = async (): Promise<Map<string, number>> => {
    const samples = await scrapeSamples(mesh.sidecars.get('reviews-v2')!.metricsPort, 'istio_requests_total');
    const out = new Map<string, number>();
    for (const s of samples) if (s.labels['reporter'] === 'source' && s.labels['destination_service_name'] === 'ratings') out.set(`${s.labels['response_code']} ${s.labels['response_flags']}`, s.value);
    return out;
  };

  before(async () => {
    mesh = await startBookinfoMesh((name) => (name === 'reviews-v2' ? { metricsPort: 0 } : {}));
    await mesh.apply(await sample('bookinfo/virtual-service-all-v1.yaml'));
  });
  after(async () => {
    await mesh?.close();
  });

  it('Request Routing, virtual-service-all-v1: every page shows reviews v1, with no ratings', async () => {
    assert.deepEqual([...(await versions())], [['v1', LOADS]]);
    const page = await mesh.page();
    assert.equal(page.details, 200);
    assert.equal(page.ratings, undefined);
  });

  it('Request Routing, reviews-test-v2: jason sees v2 with ratings, everyone else v1', async () => {
    await mesh.apply(await sample('istio-tasks/fault-injection/virtual-service-reviews-test-v2.yaml'));
    const jason = await mesh.page('jason');
    assert.equal(jason.reviews?.version, 'v2');
    assert.equal(jason.ratings?.status, 200);
    assert.deepEqual([...(await versions())], [['v1', LOADS]]);
    assert.equal((await mesh.page('alice')).reviews?.version, 'v1');
  });

  it('Fault Injection, ratings-test-abort: jason\'s ratings call is 500 fault filter abort (flag FI); the page still loads', async () => {
    const ratingsApp = (await mesh.page('jason')).ratings;
    assert.equal(ratingsApp?.status, 200);
    await mesh.apply(await sample('istio-tasks/fault-injection/virtual-service-ratings-test-abort.yaml'));
    const jason = await mesh.page('jason');
    assert.equal(jason.status, 200);
    assert.equal(jason.reviews?.version, 'v2');
    assert.deepEqual(jason.ratings, { status: 500, body: 'fault filter abort' });
    await eventually(async () => ((await ratingsCalls()).get('500 FI') ?? 0) >= 1);
    assert.equal((await mesh.page()).reviews?.version, 'v1', 'anyone else still gets v1, which does not call ratings');
  });

  it('Fault Injection, ratings-test-delay: jason\'s ratings call is held (flag DI), then answered by ratings', async () => {
    await mesh.apply(await sample('istio-tasks/fault-injection/virtual-service-ratings-test-delay.yaml'));
    const before = (await ratingsCalls()).get('200 DI') ?? 0;
    // The delay is 7 s: reviews' own 10 s timeout outlasts it, so ratings answers. (bookinfo's
    // productpage would have given up on reviews at 6 s; this stand-in has no such timeout.)
    const jason = await mesh.page('jason');
    assert.equal(jason.ratings?.status, 200);
    assert.equal((jason.ratings?.body as { service?: string }).service, 'ratings');
    await eventually(async () => ((await ratingsCalls()).get('200 DI') ?? 0) === before + 1);
  });

  it('Traffic Shifting, reviews-50-v3: pages split between v1 and v3, none v2', async () => {
    await mesh.apply(await sample('bookinfo/virtual-service-all-v1.yaml'));
    await mesh.apply(await sample('istio-tasks/traffic-shifting/virtual-service-reviews-50-v3.yaml'));
    const seen = await versions();
    assert.deepEqual([...seen.keys()].sort(), ['v1', 'v3']);
    // 40 loads at 50/50: fewer than 8 of either is a 1-in-100,000 event for a fair split.
    assert.ok(seen.get('v1')! >= 8 && seen.get('v3')! >= 8, JSON.stringify([...seen]));
  });

  it('Traffic Shifting, reviews-v3: every page shows v3, with ratings', async () => {
    await mesh.apply(await sample('istio-tasks/traffic-shifting/virtual-service-reviews-v3.yaml'));
    assert.deepEqual([...(await versions())], [['v3', LOADS]]);
    assert.equal((await mesh.page()).ratings?.status, 200);
  });
});
