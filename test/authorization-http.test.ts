// Istio's "Authorization for HTTP traffic" task on bookinfo, its policies unchanged
// (test/fixtures/istio-tasks/authz-http/), each proxy a meshgate sidecar with bookinfo's service
// accounts and auto mTLS, the page loaded through the ingress gateway:
// - allow-nothing: the page is `RBAC: access denied`;
// - productpage-viewer: the page loads, but details and reviews deny productpage (the page's
//   "Error fetching product details/reviews");
// - details-viewer, reviews-viewer (productpage's principal): both answer, but ratings denies
//   reviews ("Ratings service currently unavailable");
// - ratings-viewer (reviews' principal): the whole page.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { startBookinfoMesh, type BookinfoMesh, type Page } from './helpers/bookinfo-mesh.js';
import { repoPath } from './helpers/route-table.js';

const task = (file: string): Promise<string> => readFile(repoPath(`test/fixtures/istio-tasks/authz-http/${file}`), 'utf8');
const DENIED = { status: 403, body: 'RBAC: access denied' };

describe('Authorization for HTTP traffic (bookinfo)', () => {
  let mesh: BookinfoMesh;
  /** Pages until one shows a reviews version that calls ratings (v2 or v3; reviews round-robins without a route). */
  const pageWithRatings = async (): Promise<Page> => {
    for (let i = 0; i < 12; i++) {
      const page = await mesh.page();
      if (page.reviews?.version !== 'v1') return page;
    }
    throw new Error('reviews never answered from v2 or v3');
  };

  before(async () => {
    mesh = await startBookinfoMesh();
  });
  after(async () => {
    await mesh?.close();
  });

  it('without a policy the whole page loads', async () => {
    const page = await pageWithRatings();
    assert.equal(page.status, 200);
    assert.equal(page.details, 200);
    assert.equal(page.ratings?.status, 200);
  });

  it('allow-nothing: the page is RBAC: access denied', async () => {
    await mesh.apply(await task('allow-nothing.yaml'));
    const page = await mesh.page();
    assert.equal(page.status, 403);
    assert.equal(page.text, 'RBAC: access denied');
  });

  it('productpage-viewer: the page loads; details and reviews deny productpage', async () => {
    await mesh.apply(await task('productpage-viewer.yaml'));
    const page = await mesh.page();
    assert.equal(page.status, 200);
    assert.equal(page.details, 403);
    assert.deepEqual({ status: page.reviews?.status, body: page.reviews?.body }, DENIED);
  });

  it('details-viewer, reviews-viewer: both answer productpage; ratings denies reviews', async () => {
    await mesh.apply(await task('details-viewer.yaml'));
    await mesh.apply(await task('reviews-viewer.yaml'));
    const page = await pageWithRatings();
    assert.equal(page.status, 200);
    assert.equal(page.details, 200);
    assert.equal(page.reviews?.status, 200);
    assert.deepEqual(page.ratings, DENIED);
  });

  it('ratings-viewer: the whole page, ratings included', async () => {
    await mesh.apply(await task('ratings-viewer.yaml'));
    const page = await pageWithRatings();
    assert.equal(page.details, 200);
    assert.equal(page.ratings?.status, 200);
  });

  it('removing the policies opens everything again', async () => {
    for (const file of ['allow-nothing', 'productpage-viewer', 'details-viewer', 'reviews-viewer', 'ratings-viewer']) await mesh.remove(await task(`${file}.yaml`));
    assert.equal((await pageWithRatings()).ratings?.status, 200);
  });
});
