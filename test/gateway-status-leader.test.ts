// Of the replicas of one gateway, the holder of its Lease writes the Gateway API status
// (src/core/gateway-api/status-leader.ts), as istiod writes status under istio-gateway-status-leader:
// two gateways against one API stand-in, each with a client of its own, and only one writes; the
// other takes over when it closes (the Lease given up) and writes what changed meanwhile. Waits are
// for states of the stand-in, never for time.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startKubeApi, type KubeApiStandIn } from './helpers/kube-api.js';
import { startKubeGateway } from './helpers/kube-gateway.js';
import { INFRA, baseYaml, httpRouteYaml } from './helpers/gateway-api-yaml.js';
import { GATEWAY_STATUS_ELECTION } from '../src/core/sources/kube-leader-election.js';
import { statusLeaseName } from '../src/core/gateway-api/status-leader.js';
import type { RunningGateway } from '../src/gateway/main.js';

describe('gateway status: one replica writes it', () => {
  let api: KubeApiStandIn;
  const gateways: Array<{ gw: RunningGateway; token: string; id: string }> = [];
  before(async () => {
    api = await startKubeApi();
    api.applyYaml(baseYaml({ v1: 1, v2: 2, v3: 3, web: 4 }));
    api.applyYaml(httpRouteYaml('first', { gateway: 'all-namespaces', hostname: 'one.example.com', backend: 'infra-backend-v1', port: 8080, namespace: INFRA }));
  });
  after(async () => {
    await Promise.all(gateways.map((g) => g.gw.close()));
    await api?.close();
  });

  it('names its Lease after what it serves: every Gateway (istiod\'s name), or a --gateway-name list in any order', () => {
    assert.equal(statusLeaseName(undefined), GATEWAY_STATUS_ELECTION);
    assert.equal(statusLeaseName(new Set(['shop/web', 'a/b'])), statusLeaseName(new Set(['a/b', 'shop/web'])));
    assert.notEqual(statusLeaseName(new Set(['shop/web'])), statusLeaseName(new Set(['shop/edge'])));
    assert.match(statusLeaseName(new Set(['shop/web'])), /^[a-z0-9-]{1,63}$/);
  });

  it('the holder of the Lease writes status, the other none; closing it hands the writing over', async () => {
    for (const id of ['gateway-a', 'gateway-b']) {
      const { kubeconfig, token } = api.clientKubeconfig();
      gateways.push({ gw: (await startKubeGateway(kubeconfig, { namespace: 'istio-system', identity: id })).gw, token, id });
    }
    const writesBy = (token: string, from = 0) => api.requests.slice(from).filter((r) => r.authorization === `Bearer ${token}` && r.method === 'PUT' && r.path.endsWith('/status'));
    const holder = () => api.get('coordination.k8s.io/v1', 'Lease', 'istio-system', GATEWAY_STATUS_ELECTION)?.spec?.holderIdentity as string | undefined;
    const routeWritten = (name: string) => api.statusWrites.includes(`httproutes ${INFRA}/${name}`);
    await api.until(() => gateways.some((g) => g.id === holder()) && routeWritten('first'), 'a holder, and the route\'s status written');
    const leader = gateways.find((g) => g.id === holder())!;
    const other = gateways.find((g) => g !== leader)!;
    // The other has read the Lease held since, and left it.
    const seen = api.requests.length;
    await api.until(() => api.requests.slice(seen).some((r) => r.authorization === `Bearer ${other.token}` && r.path.endsWith(`/leases/${GATEWAY_STATUS_ELECTION}`) && r.status === 200), 'the other gateway read the Lease');
    assert.ok(writesBy(leader.token).length > 0);
    assert.deepEqual(writesBy(other.token), [], 'the other gateway serves and writes no status');

    await leader.gw.close();
    gateways.splice(gateways.indexOf(leader), 1);
    const mark = api.requests.length;
    api.applyYaml(httpRouteYaml('second', { gateway: 'all-namespaces', hostname: 'two.example.com', backend: 'infra-backend-v1', port: 8080, namespace: INFRA }));
    await api.until(() => holder() === other.id && routeWritten('second'), 'the other gateway holds the Lease and wrote the new route\'s status');
    assert.ok(writesBy(other.token, mark).length > 0);
  });
});
