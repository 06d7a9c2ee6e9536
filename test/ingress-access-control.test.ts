// Istio's "Ingress Access Control" task at the ingress gateway, its policies unchanged
// (test/fixtures/istio-tasks/ingress-access-control/) but for `$CLIENT_IP`, the client's address
// (127.0.0.1 here). `ipBlocks` is the gateway's peer: an ALLOW without it answers 403, with it 200,
// a DENY of it 403. `remoteIpBlocks` is the client x-forwarded-for names once the gateway trusts the
// proxy in front (the mesh config's gatewayTopology.numTrustedProxies), never the peer itself.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { gatewayRouteYaml, gatewayTopologyYaml, gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { startHttpbin, type Httpbin } from './helpers/httpbin.js';
import { repoPath } from './helpers/route-table.js';
import { untilServed } from './helpers/task-mesh.js';

const HOST = 'httpbin.example.com';
const CLIENT_IP = '127.0.0.1';
const task = async (file: string): Promise<string> => (await readFile(repoPath(`test/fixtures/istio-tasks/ingress-access-control/${file}`), 'utf8')).replaceAll('$CLIENT_IP', CLIENT_IP);

describe('Ingress Access Control', () => {
  let httpbin: Httpbin;
  let gw: TestGateway;
  const code = async (headers: Record<string, string> = {}): Promise<number> => (await gw.get(HOST, '/headers', headers)).status;
  const apply = async (yaml: string, file = 'policy.yaml'): Promise<void> => {
    await gw.write(file, yaml);
    await untilServed(gw.gw.holder, yaml);
  };

  before(async () => {
    httpbin = await startHttpbin();
    gw = await startTestGateway(
      { 'gw.yaml': gatewayYaml([HOST]), 'svc.yaml': serviceYaml('app', [{ pod: 'httpbin-0', port: httpbin.port }]), 'vs.yaml': gatewayRouteYaml([HOST]) },
      // Istio's ingress gateway's labels, which the task's policies select.
      { gateway: { labels: { app: 'istio-ingressgateway', istio: 'ingressgateway' } } },
    );
  });
  after(async () => {
    await gw?.close();
    await httpbin?.close();
  });

  it('ipBlocks without the client: 403 RBAC: access denied', async () => {
    await apply(await task('allow-ip-blocks.yaml'));
    const r = await gw.get(HOST, '/headers');
    assert.equal(r.status, 403);
    assert.equal(r.text, 'RBAC: access denied');
  });

  it('ipBlocks with the client: 200; x-forwarded-for cannot stand in for the peer', async () => {
    await apply(await task('allow-client-ip.yaml'));
    assert.equal(await code(), 200);
    await apply(await task('allow-ip-blocks.yaml'));
    assert.equal(await code({ 'x-forwarded-for': '5.6.7.8' }), 403);
  });

  it('a DENY of the client: 403', async () => {
    await apply(await task('deny-client-ip.yaml'));
    assert.equal(await code(), 403);
  });

  it('remoteIpBlocks behind one trusted proxy: the address x-forwarded-for names decides', async () => {
    const topology = gatewayTopologyYaml(1);
    await apply(topology, 'mesh.yaml');
    await apply(await task('allow-remote-ip-blocks.yaml'));
    assert.equal(await code({ 'x-forwarded-for': '5.6.7.8' }), 200);
    assert.equal(await code({ 'x-forwarded-for': '5.6.7.8, 9.9.9.9' }), 403, 'the last hop is the trusted one');
    assert.equal(await code({ 'x-forwarded-for': '9.9.9.9' }), 403);
    assert.equal(await code(), 403, 'no x-forwarded-for: the peer, 127.0.0.1');
  });
});
