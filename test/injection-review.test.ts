// The AdmissionReview v1 exchange as kube-apiserver makes it for a pod a ReplicaSet creates: the pod
// has only generateName and no namespace (the namespace is the request's), the request may be a dry
// run (`kubectl apply --dry-run=server`: the webhook has no side effects, so it answers the same),
// and the answer echoes the request's uid with a base64 JSONPatch.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { review } from '../src/control/injection-webhook.js';
import { applyPatch } from '../src/core/inject/json-patch.js';

type Json = Record<string, any>;

const OPTS = { image: 'registry.example/meshgate:1.2.3', controlAddress: 'https://meshgate-control.istio-system.svc:15012' };

/** A pod as the ReplicaSet controller sends it: no name, no namespace. */
const replicaSetPod = (): Json => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { generateName: 'product-7f9c4d8b6-', labels: { app: 'product' }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'product-7f9c4d8b6', controller: true, uid: 'rs-uid' }] },
  spec: { serviceAccountName: 'product', containers: [{ name: 'app', image: 'product:2', ports: [{ containerPort: 8080 }] }] },
});

function admission(object: Json, extra: Json = {}): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid: '705ab4f5-6393-11e8-b7cc-42010a800002', kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, namespace: 'shop', operation: 'CREATE', userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller' }, object, ...extra },
  });
}

describe('the AdmissionReview exchange', () => {
  for (const dryRun of [false, true]) {
    it(`takes the namespace from the request when the pod has none${dryRun ? ', in a dry run too' : ''}`, () => {
      const asked: string[] = [];
      const answer = review(admission(replicaSetPod(), { dryRun }), { inject: OPTS, log: pino({ level: 'silent' }), namespaceLabels: (ns) => (asked.push(ns), { 'istio-injection': 'enabled' }) });
      assert.equal(answer.apiVersion, 'admission.k8s.io/v1');
      assert.equal(answer.kind, 'AdmissionReview');
      const response = answer.response as Json;
      assert.equal(response.uid, '705ab4f5-6393-11e8-b7cc-42010a800002', 'the uid echoed');
      assert.equal(response.allowed, true);
      assert.equal(response.patchType, 'JSONPatch');
      const ops = JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as Json[];
      assert.ok(Array.isArray(ops) && ops.every((op) => ['add', 'replace', 'remove'].includes(op.op) && typeof op.path === 'string'));
      assert.deepEqual(asked, ['shop'], "the namespace's labels looked up under the request's namespace");
      const pod = applyPatch(replicaSetPod(), ops as never) as Json;
      const proxy = (pod.spec.containers as Json[]).find((c) => c.name === 'istio-proxy')!;
      const env = Object.fromEntries((proxy.env as Json[]).filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
      assert.equal(env.ISTIO_META_OWNER, 'kubernetes://apis/apps/v1/namespaces/shop/deployments/product');
      assert.equal(env.ISTIO_META_WORKLOAD_NAME, 'product');
    });
  }
});
