// Gateway API automated deployment after the first round, against the Kubernetes API stand-in: labels
// and annotations removed from a Gateway's spec.infrastructure come off the generated objects (and
// the pod template) while keys someone else set stay; and the gateway the Deployment runs reports
// Programmed False with Istio's AddressNotAssigned while its LoadBalancer Service has no ingress
// address, True with the address once it has one.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { GatewayDeployer } from '../src/control/gateway-deployer.js';
import type { RunningGateway } from '../src/gateway/main.js';
import { startKubeApi, type KubeApiStandIn } from './helpers/kube-api.js';
import { startKubeGateway } from './helpers/kube-gateway.js';

const GW = 'gateway.networking.k8s.io/v1';
const FAST = { initialMs: 50, maxMs: 400 };

const gateway = (name: string, infrastructure?: { labels?: Record<string, string>; annotations?: Record<string, string> }) => ({
  apiVersion: GW,
  kind: 'Gateway',
  metadata: { name, namespace: 'default' },
  spec: {
    gatewayClassName: 'istio',
    listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }, { name: 'tcp', port: 3306, protocol: 'TCP' }],
    ...(infrastructure ? { infrastructure } : {}),
  },
});

describe('Gateway API automated deployment, later changes', () => {
  let api: KubeApiStandIn;
  let deployer: GatewayDeployer;

  before(async () => {
    api = await startKubeApi();
    deployer = new GatewayDeployer({ kubeconfig: api.kubeconfig(), image: 'registry.example/meshgate:test', logger: pino({ level: 'silent' }), backoff: FAST });
    await deployer.start();
  });
  after(async () => {
    await deployer?.close();
    await api?.close();
  });

  it('takes labels and annotations removed from spec.infrastructure off the objects, and leaves keys others set', async () => {
    api.apply(gateway('infra', { labels: { team: 'shop', tier: 'edge' }, annotations: { 'cloud.example/lb': 'internal', 'cloud.example/zone': 'a' } }));
    const svc = () => api.get('v1', 'Service', 'default', 'infra-istio');
    const dep = () => api.get('apps/v1', 'Deployment', 'default', 'infra-istio');
    await api.until(() => svc()?.metadata.labels?.tier === 'edge' && dep()?.spec.template.metadata.labels.tier === 'edge', 'the objects with the infrastructure labels');
    assert.equal(svc()!.metadata.annotations['cloud.example/zone'], 'a');
    // Someone else's label and annotation on the Service.
    const s = svc()!;
    api.apply({ ...s, metadata: { ...s.metadata, labels: { ...s.metadata.labels, owner: 'ops' }, annotations: { ...s.metadata.annotations, 'ops.example/ticket': '42' } } });

    api.apply(gateway('infra', { labels: { team: 'shop' }, annotations: { 'cloud.example/lb': 'internal' } }));
    await api.until(() => svc()?.metadata.labels?.tier === undefined && dep()?.spec.template.metadata.labels.tier === undefined && dep()?.metadata.labels?.tier === undefined, 'the removed label gone');
    const after = svc()!;
    assert.equal(after.metadata.labels.team, 'shop');
    assert.equal(after.metadata.labels.owner, 'ops', 'a label meshgate did not set stays');
    assert.equal(after.metadata.annotations['cloud.example/zone'], undefined, 'the removed annotation is gone');
    assert.equal(after.metadata.annotations['cloud.example/lb'], 'internal');
    assert.equal(after.metadata.annotations['ops.example/ticket'], '42', 'an annotation meshgate did not set stays');
    assert.equal(dep()!.spec.template.metadata.annotations['cloud.example/zone'], undefined);
    assert.equal(after.metadata.labels['gateway.networking.k8s.io/gateway-name'], 'infra', 'its own labels are not among the handed-down keys');
  });

  describe('the gateway the Deployment runs', () => {
    let own: RunningGateway | undefined;
    after(async () => {
      await own?.close();
    });

    it('reports Programmed False, AddressNotAssigned, until the LoadBalancer Service has an address', async () => {
      api.apply(gateway('edge'));
      const svc = () => api.get('v1', 'Service', 'default', 'edge-istio');
      await api.until(() => svc() !== undefined && api.get('apps/v1', 'Deployment', 'default', 'edge-istio') !== undefined, 'the objects of Gateway edge');
      assert.equal(svc()!.spec.type, 'LoadBalancer');
      const args: string[] = api.get('apps/v1', 'Deployment', 'default', 'edge-istio')!.spec.template.spec.containers[0].args;
      const labels = Object.fromEntries(args[args.indexOf('--labels') + 1]!.split(',').map((kv) => kv.split('=') as [string, string]));
      own = (await startKubeGateway(api.kubeconfig(), { gatewayNames: new Set(['default/edge']), labels, namespace: 'default' })).gw;
      const programmed = () => (api.get(GW, 'Gateway', 'default', 'edge')?.status?.conditions as Array<Record<string, string>> | undefined)?.find((c) => c.type === 'Programmed');
      const host = 'edge-istio.default.svc.cluster.local';
      await api.until(() => programmed() !== undefined, 'a Programmed condition');
      assert.equal(programmed()!.status, 'False');
      assert.equal(programmed()!.reason, 'AddressNotAssigned');
      assert.equal(programmed()!.message, `Assigned to service(s) ${host}:3306 and ${host}:80, but failed to assign to all requested addresses: address pending for hostname "${host}"`);
      assert.deepEqual(api.get(GW, 'Gateway', 'default', 'edge')!.status.addresses, []);
      const accepted = (api.get(GW, 'Gateway', 'default', 'edge')!.status.conditions as Array<Record<string, string>>).find((c) => c.type === 'Accepted');
      assert.equal(accepted?.status, 'True', 'Accepted is not the address\'s business');

      api.apply({ ...svc()!, status: { loadBalancer: { ingress: [{ ip: '203.0.113.20' }] } } });
      await api.until(() => programmed()?.status === 'True', 'Programmed True once the address is there');
      assert.equal(programmed()!.reason, 'Programmed');
      assert.equal(programmed()!.message, `Resource programmed, assigned to service(s) ${host}:3306 and ${host}:80`);
      assert.deepEqual(api.get(GW, 'Gateway', 'default', 'edge')!.status.addresses, [{ type: 'IPAddress', value: '203.0.113.20' }]);
    });
  });
});
