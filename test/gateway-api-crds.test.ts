// deploy/crds/gateway-api-*.yaml define every Gateway API collection KubeSource reads, with the
// group, version, scope and status subresource the gateway lists, watches and writes.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';
import { KUBE_KINDS } from '../src/core/sources/kube-objects.js';
import { repoPath } from './helpers/route-table.js';

describe('Gateway API CRDs', () => {
  it('cover every Gateway API kind KubeSource reads, with a status subresource', async () => {
    const docs: Array<Record<string, any>> = [];
    for (const f of ['deploy/crds/gateway-api-standard.yaml', 'deploy/crds/gateway-api-experimental.yaml']) {
      for (const d of parseAllDocuments(await readFile(repoPath(f), 'utf8'))) docs.push(d.toJS());
    }
    const kinds = KUBE_KINDS.filter((k) => k.apiVersion.startsWith('gateway.networking.k8s.io/'));
    assert.equal(kinds.length, 9);
    for (const k of kinds) {
      const crd = docs.find((d) => d.metadata.name === `${k.plural}.gateway.networking.k8s.io`);
      assert.ok(crd, k.plural);
      assert.equal(crd.spec.names.kind, k.kind);
      assert.equal(crd.spec.scope, k.clusterScoped ? 'Cluster' : 'Namespaced');
      const version = crd.spec.versions.find((v: any) => v.name === k.apiVersion.split('/')[1]);
      assert.ok(version?.served, `${k.plural} serves ${k.apiVersion}`);
      assert.deepEqual(version.subresources, { status: {} });
      assert.equal(crd.spec.versions.filter((v: any) => v.storage).length, 1);
      assert.match(crd.metadata.annotations['api-approved.kubernetes.io'], /^unapproved/);
    }
  });
});
