// Istio's peer metadata on the wire (telemetry/peer-metadata.ts, proxy/protobuf-struct.ts): the
// Struct meshgate writes is byte for byte what protobufjs writes for the same node metadata with
// Envoy's sorted keys; what an Envoy peer sends is read into the peer's names and labels; the
// previous release's base64 JSON is still read; bytes that are not peer metadata leave only the
// principal known, and never throw.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeStruct, encodeStruct, type StructObject } from '../src/core/proxy/protobuf-struct.js';
import { headerOfExchange, nodeMetadataOf, peerMetadataOf } from '../src/core/telemetry/peer-metadata.js';
import { describeWorkload, PEER_METADATA_HEADER, peerOfRequest } from '../src/core/telemetry/workload.js';
import { envoyFrame, envoyStruct, readAsEnvoy, splitFrame, STRUCT_TYPE_URL } from './helpers/envoy-peer-metadata.js';
import { bytesField, msg, str } from '../src/core/proxy/protobuf-wire.js';

const reviews = describeWorkload({ namespace: 'bookinfo', labels: { app: 'reviews', version: 'v2' }, serviceAccount: 'bookinfo-reviews' });
const NODE_ID = 'sidecar~10.1.2.3~reviews-v2.bookinfo~bookinfo.svc.cluster.local';
const PRINCIPAL = 'spiffe://cluster.local/ns/bookinfo/sa/bookinfo-reviews';

/** An Istio sidecar's node metadata, as its Envoy sends it (keys of extractStructFromNodeFlatBuffer). */
const envoyNode = {
  NAME: 'productpage-v1-6b746f74dc-9stvs',
  NAMESPACE: 'bookinfo',
  OWNER: 'kubernetes://apis/apps/v1/namespaces/bookinfo/deployments/productpage-v1',
  WORKLOAD_NAME: 'productpage-v1',
  ISTIO_VERSION: '1.24.0',
  MESH_ID: 'cluster.local',
  CLUSTER_ID: 'Kubernetes',
  LABELS: { app: 'productpage', version: 'v1', 'service.istio.io/canonical-name': 'productpage', 'service.istio.io/canonical-revision': 'v1', 'pod-template-hash': '6b746f74dc' },
  APP_CONTAINERS: ['productpage'],
};
const PRODUCTPAGE = 'spiffe://cluster.local/ns/bookinfo/sa/bookinfo-productpage';

describe("Istio's peer metadata wire format", () => {
  it('writes the node metadata Struct byte for byte as protobufjs does, with Istio key names', () => {
    const node = nodeMetadataOf(reviews);
    assert.deepEqual(node, {
      NAME: 'reviews-v2',
      NAMESPACE: 'bookinfo',
      WORKLOAD_NAME: 'reviews-v2',
      CLUSTER_ID: 'Kubernetes',
      SERVICE_ACCOUNT: 'bookinfo-reviews',
      LABELS: { app: 'reviews', version: 'v2', 'service.istio.io/canonical-name': 'reviews', 'service.istio.io/canonical-revision': 'v2' },
    });
    const mine = peerMetadataOf(reviews, NODE_ID);
    assert.equal(mine.header, envoyStruct(node).toString('base64'));
    assert.equal(mine.id, NODE_ID);
    // The TCP payload, read as Envoy reads it: an Any holding a Struct with both header names.
    assert.deepEqual(readAsEnvoy(mine.exchange), { 'x-envoy-peer-metadata': { ...node }, 'x-envoy-peer-metadata-id': NODE_ID });
    assert.ok(mine.exchange.includes(Buffer.from(STRUCT_TYPE_URL)));
  });

  it('round-trips: a meshgate peer is known by its workload, app, version and canonical names', () => {
    assert.deepEqual(
      { ...peerOfRequest({ [PEER_METADATA_HEADER]: peerMetadataOf(reviews, NODE_ID).header }, PRINCIPAL) },
      { workload: 'reviews-v2', namespace: 'bookinfo', principal: PRINCIPAL, app: 'reviews', version: 'v2', canonicalService: 'reviews', canonicalRevision: 'v2', cluster: 'Kubernetes' },
    );
  });

  it("reads an Envoy peer's header: names and labels from it, principal and namespace from the certificate", () => {
    const header = envoyStruct(envoyNode).toString('base64');
    assert.deepEqual(
      { ...peerOfRequest({ [PEER_METADATA_HEADER]: header }, PRODUCTPAGE) },
      { workload: 'productpage-v1', namespace: 'bookinfo', principal: PRODUCTPAGE, app: 'productpage', version: 'v1', canonicalService: 'productpage', canonicalRevision: 'v1', cluster: 'Kubernetes' },
    );
    // The same metadata from a certificate of another namespace: that namespace, not the claimed one.
    assert.equal(peerOfRequest({ [PEER_METADATA_HEADER]: header }, 'spiffe://cluster.local/ns/other/sa/x')?.namespace, 'other');
  });

  it("reads an Envoy peer's TCP payload into the same header value", () => {
    const frame = splitFrame(envoyFrame(envoyNode, 'sidecar~10.0.0.1~p.bookinfo~bookinfo.svc.cluster.local'))!;
    assert.equal(headerOfExchange(frame.payload), envoyStruct(envoyNode).toString('base64'));
  });

  it("still reads the previous release's base64 JSON (a rolling upgrade)", () => {
    const legacy = Buffer.from(JSON.stringify({ workload: 'cart-v3', namespace: 'shop', app: 'cart', version: 'v3', canonicalService: 'cart', canonicalRevision: 'v3', cluster: 'Kubernetes' })).toString('base64');
    const peer = peerOfRequest({ [PEER_METADATA_HEADER]: legacy }, 'spiffe://cluster.local/ns/shop/sa/cart');
    assert.deepEqual({ workload: peer?.workload, app: peer?.app, version: peer?.version }, { workload: 'cart-v3', app: 'cart', version: 'v3' });
  });

  it('decodes what it encodes, for any Struct', () => {
    const key = fc.string({ maxLength: 12 });
    const leaf = fc.oneof(fc.constant(null), fc.boolean(), fc.string({ maxLength: 20 }), fc.double({ noNaN: true }));
    const { struct } = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('struct'), fc.array(tie('value'), { maxLength: 3 })),
      struct: fc.dictionary(key, tie('value'), { maxKeys: 4, noNullPrototype: true }),
    }));
    fc.assert(fc.property(struct, (s) => assert.deepEqual(decodeStruct(encodeStruct(s as StructObject)), s)), { numRuns: 200 });
  });

  it('bytes that are not peer metadata leave the principal known and never throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const peer = peerOfRequest({ [PEER_METADATA_HEADER]: Buffer.from(bytes).toString('base64') }, PRINCIPAL);
        assert.equal(peer?.principal, PRINCIPAL);
        assert.equal(peer?.namespace, 'bookinfo');
        assert.doesNotThrow(() => {
          try {
            headerOfExchange(Buffer.from(bytes));
          } catch (err) {
            assert.ok(err instanceof Error);
          }
        });
      }),
      { numRuns: 500 },
    );
    // Nested past any node metadata: refused, not recursed into.
    let deep = encodeStruct({});
    for (let i = 0; i < 50; i++) deep = msg(1, str(1, 'a'), msg(2, bytesField(5, deep)));
    assert.throws(() => decodeStruct(deep));
    const peer = peerOfRequest({ [PEER_METADATA_HEADER]: deep.toString('base64') }, PRINCIPAL);
    assert.equal(peer?.workload, 'bookinfo-reviews');
    // Oversized: ignored without decoding.
    const big = envoyStruct({ ...envoyNode, LABELS: { ...envoyNode.LABELS, filler: 'x'.repeat(20_000) } }).toString('base64');
    assert.equal(peerOfRequest({ [PEER_METADATA_HEADER]: big }, PRODUCTPAGE)?.app, undefined);
  });
});
