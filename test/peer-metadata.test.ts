// What a server sidecar learns of its caller from the verified principal and the x-envoy-peer-metadata
// header (telemetry/workload.ts): the answer is kept per (principal, header value), the last one at
// hand, so these requests take turns between callers to show that no caller gets another's answer.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeWorkload, PEER_METADATA_HEADER, peerOfRequest, type WorkloadInfo } from '../src/core/telemetry/workload.js';
import { peerMetadataOf } from '../src/core/telemetry/peer-metadata.js';

const encodePeerMetadata = (self: WorkloadInfo): string => peerMetadataOf(self, 'sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local').header;

const cart = encodePeerMetadata(describeWorkload({ namespace: 'shop', labels: { app: 'cart', version: 'v3' }, serviceAccount: 'cart' }));
const web = encodePeerMetadata(describeWorkload({ namespace: 'front', labels: { app: 'web' }, serviceAccount: 'web' }));
const CART = 'spiffe://cluster.local/ns/shop/sa/cart';
const WEB = 'spiffe://cluster.local/ns/front/sa/web';

describe('the peer of a request', () => {
  it('answers each caller with its own metadata, whatever came before', () => {
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(
        { ...peerOfRequest({ [PEER_METADATA_HEADER]: cart }, CART) },
        { workload: 'cart-v3', namespace: 'shop', principal: CART, app: 'cart', version: 'v3', canonicalService: 'cart', canonicalRevision: 'v3', cluster: 'Kubernetes' },
      );
      assert.equal(peerOfRequest({ [PEER_METADATA_HEADER]: web }, WEB)?.app, 'web');
      assert.equal(peerOfRequest({}, WEB)?.app, undefined, 'no metadata: only what the principal says');
      assert.equal(peerOfRequest({}, WEB)?.workload, 'web');
    }
  });

  it('takes the namespace from the certificate, not from the header', () => {
    // A caller sending another workload's metadata: the same header value, another principal.
    assert.equal(peerOfRequest({ [PEER_METADATA_HEADER]: cart }, CART)?.namespace, 'shop');
    const other = peerOfRequest({ [PEER_METADATA_HEADER]: cart }, WEB);
    assert.equal(other?.namespace, 'front');
    assert.equal(other?.principal, WEB);
  });

  it('knows no plaintext caller', () => {
    assert.equal(peerOfRequest({ [PEER_METADATA_HEADER]: cart }, undefined), undefined);
  });

  it('returns the same frozen answer for a caller that repeats itself', () => {
    const first = peerOfRequest({ [PEER_METADATA_HEADER]: `${cart}` }, CART);
    const again = peerOfRequest({ [PEER_METADATA_HEADER]: `${cart}` }, CART);
    assert.equal(first, again);
    assert.ok(Object.isFrozen(first));
  });
});
