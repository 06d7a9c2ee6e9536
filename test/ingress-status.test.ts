// The status a gateway writes on Ingresses, round by round, as istiod's status collection does: the
// addresses for each Ingress served; an empty status for one it served and no longer serves (class
// changed, mode OFF), once; nothing for one it never served (another controller's addresses stay);
// nothing from a gateway the Ingresses' Gateway does not select. With `ingressService: ""`, the
// ExternalIP addresses of the node of the first running ingress gateway pod whose node can be read.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ingressStatusNodes, ingressStatusObjects, nodeExternalAddresses } from '../src/core/ingress/status.js';
import type { Snapshot } from '../src/core/snapshot/snapshot.js';
import { compileYaml } from './helpers/route-table.js';
import { serviceYaml } from './helpers/cluster-yaml.js';
import { INGRESS_CLASSES, ingressYaml } from './helpers/ingress-yaml.js';

const LB_SERVICE = `apiVersion: v1
kind: Service
metadata: {name: istio-ingressgateway, namespace: istio-system}
spec: {type: LoadBalancer, selector: {istio: ingressgateway}, ports: [{name: http, port: 80}]}
status: {loadBalancer: {ingress: [{ip: 203.0.113.9}]}}
---
`;
const BASE = INGRESS_CLASSES + LB_SERVICE + serviceYaml('web', [{ pod: 'web-1', port: 9000 }]) + '---\n';

/** An Ingress of `className` whose status already lists `ips` (`[]`: an empty status, as a clear leaves it). */
function ingress(name: string, className: string, ips?: readonly string[]): string {
  const status = ips === undefined ? '' : ips.length === 0 ? 'status: {loadBalancer: {}}\n' : `status: {loadBalancer: {ingress: [${ips.map((ip) => `{ip: ${ip}}`).join(', ')}]}}\n`;
  return ingressYaml(name, `${name}.example.com`, { className }).replace(/---\n$/, `${status}---\n`);
}

function snapshot(yaml: string, labels?: Record<string, string>): Snapshot {
  const c = compileYaml(BASE + yaml, labels ? { role: { labels } } : {});
  assert.deepEqual(c.errors, []);
  return c.snapshot;
}

const written = (round: ReturnType<typeof ingressStatusObjects>): Record<string, unknown> => Object.fromEntries(round.objects.map((o) => [o.resource.metadata.name, o.status]));

describe('Ingress status, round by round', () => {
  it('writes the addresses of the Ingresses served, and never touches another controller\'s', () => {
    const round = ingressStatusObjects(snapshot(ingress('shop', 'istio') + ingress('theirs', 'nginx', ['192.0.2.50'])));
    assert.deepEqual(written(round), { shop: { loadBalancer: { ingress: [{ ip: '203.0.113.9' }] } } });
    assert.deepEqual([...round.served], ['default/shop']);
  });

  it('clears an Ingress it stops serving, until the cleared status is seen; one it never served stays as it is', () => {
    const first = ingressStatusObjects(snapshot(ingress('shop', 'istio', ['203.0.113.9']) + ingress('theirs', 'nginx', ['192.0.2.50'])));
    // The class moves to nginx: istiod writes IngressStatus{} for an Ingress that leaves its collection.
    const moved = ingressStatusObjects(snapshot(ingress('shop', 'nginx', ['203.0.113.9']) + ingress('theirs', 'nginx', ['192.0.2.50'])), first.served);
    assert.deepEqual(written(moved), { shop: { loadBalancer: {} } });
    assert.deepEqual([...moved.served], ['default/shop'], 'kept until its status reads cleared (a write may conflict)');
    const seen = ingressStatusObjects(snapshot(ingress('shop', 'nginx', []) + ingress('theirs', 'nginx', ['192.0.2.50'])), moved.served);
    assert.deepEqual(written(seen), {});
    assert.deepEqual([...seen.served], []);
    // An Ingress of another class that this gateway never served is never cleared, whatever its status.
    assert.deepEqual(written(ingressStatusObjects(snapshot(ingress('theirs', 'nginx', ['203.0.113.9'])), new Set())), {});
  });

  it('clears on ingressControllerMode OFF too, but not when the Ingresses move to another gateway (that one writes)', () => {
    const before = new Set(['default/shop']);
    const off = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata:\n  mesh: |\n    ingressControllerMode: "OFF"\n---\n';
    assert.deepEqual(written(ingressStatusObjects(snapshot(off + ingress('shop', 'istio', ['203.0.113.9'])), before)), { shop: { loadBalancer: {} } });
    const elsewhere = off.replace('ingressControllerMode: "OFF"', 'ingressSelector: edge');
    const round = ingressStatusObjects(snapshot(elsewhere + ingress('shop', 'istio', ['203.0.113.9'])), before);
    assert.deepEqual(round.objects, []);
  });

  it('with ingressService "": the nodes of the running ingress gateway pods, in pod name order, ExternalIP only', () => {
    const mesh = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata:\n  mesh: |\n    ingressService: ""\n---\n';
    const pod = (name: string, node: string, phase: string, labels = '{istio: ingressgateway}', ns = 'istio-system') =>
      `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, namespace: ${ns}, labels: ${labels}}\nspec: {nodeName: ${node}}\nstatus: {phase: ${phase}}\n---\n`;
    const pods = pod('gw-c', 'node-c', 'Running') + pod('gw-a', 'node-a', 'Pending') + pod('gw-b', 'node-b', 'Running') + pod('gw-d', 'node-b', 'Running') + pod('other', 'node-x', 'Running', '{app: web}') + pod('gw-elsewhere', 'node-y', 'Running', '{istio: ingressgateway}', 'default');
    const snap = snapshot(mesh + pods + ingress('shop', 'istio'));
    assert.deepEqual(ingressStatusNodes(snap), ['node-b', 'node-c']);
    const node = { status: { addresses: [{ type: 'InternalIP', address: '10.0.0.7' }, { type: 'ExternalIP', address: '198.51.100.7' }, { type: 'Hostname', address: 'node-b' }, { type: 'ExternalIP', address: '198.51.100.7' }] } };
    assert.deepEqual(nodeExternalAddresses(node), ['198.51.100.7']);
    assert.deepEqual(written(ingressStatusObjects(snap, new Set(), new Map([['node-c', ['198.51.100.7']]]))), { shop: { loadBalancer: { ingress: [{ ip: '198.51.100.7' }] } } });
    // No node could be read: no address (istiod's answer too), not the LoadBalancer Service's.
    assert.deepEqual(written(ingressStatusObjects(snap)), { shop: { loadBalancer: { ingress: [] } } });
    // With an ingressService, nodes are not read at all.
    assert.deepEqual(ingressStatusNodes(snapshot(pods + ingress('shop', 'istio'))), []);
  });
});
