// The pure parts of automated deployment: which Gateways get one (Istio's manual-deployment rule),
// the names and labels Istio gives the objects, and how a controller's fields are compared with and
// written into objects that people and the API server also change.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { deploymentName, deploymentObjects, isAutomated, isManualDeployment, type GatewayObject } from '../src/core/gateway-api/deployment-objects.js';
import { covers, withOwned } from '../src/core/sources/kube-owned.js';
import { parseGatewayNames, runGatewayCommand } from '../src/cli/gateway.js';
import { parseLabels, parsePorts } from '../src/cli/options.js';

const gateway = (spec: Partial<GatewayObject['spec']> = {}, metadata: Partial<GatewayObject['metadata']> = {}): GatewayObject => ({
  metadata: { name: 'web', namespace: 'shop', uid: 'u-1', ...metadata },
  spec: { gatewayClassName: 'istio', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }], ...spec },
});

describe('automated deployment objects', () => {
  it("follows Istio's rule for manual deployments: a Hostname address or several addresses", () => {
    assert.equal(isManualDeployment({}), false);
    assert.equal(isManualDeployment({ addresses: [{}] }), false, 'one address of the default type, IPAddress: the Service’s load-balancer IP');
    assert.equal(isManualDeployment({ addresses: [{ type: 'IPAddress' }] }), false);
    assert.equal(isManualDeployment({ addresses: [{ type: 'Hostname' }] }), true);
    assert.equal(isManualDeployment({ addresses: [{ type: 'IPAddress' }, { type: 'IPAddress' }] }), true);
    const classes = new Map([['other', 'example.com/controller'], ['mine', 'meshgate.io/gateway-controller']]);
    assert.equal(isAutomated(gateway(), classes), true, 'the built-in istio class');
    assert.equal(isAutomated(gateway({ gatewayClassName: 'mine' }), classes), true);
    assert.equal(isAutomated(gateway({ gatewayClassName: 'other' }), classes), false);
    assert.equal(isAutomated(gateway({ gatewayClassName: 'unknown' }), classes), false);
  });

  it('names, labels and ports as Istio does, and carries infrastructure labels and annotations', () => {
    assert.equal(deploymentName(gateway()), 'web-istio');
    assert.equal(deploymentName(gateway({}, { annotations: { 'gateway.istio.io/name-override': 'edge' } })), 'edge');
    const gw = gateway(
      {
        addresses: [{ value: '203.0.113.9' }],
        listeners: [{ name: 'a.b', port: 443, protocol: 'HTTPS' }, { name: 'again', port: 443, protocol: 'TLS' }, { port: 9000, protocol: 'TCP' }],
        infrastructure: { labels: { team: 'shop', 'gateway.networking.k8s.io/x': 'no' }, annotations: { 'cloud.example/lb': 'internal' } },
      },
      { labels: { ignored: 'because infrastructure is set' } },
    );
    const o = deploymentObjects(gw, 'istio.io/gateway-controller', { image: 'img' });
    const meta = (o.service as { metadata: { labels: Record<string, string>; annotations: Record<string, string> } }).metadata;
    assert.equal(meta.labels.team, 'shop');
    assert.equal(meta.labels.ignored, undefined);
    assert.equal(meta.labels['gateway.networking.k8s.io/x'], undefined);
    // Beside the Gateway's, the record of the keys handed down (so that one removed later comes off).
    assert.deepEqual(meta.annotations, { 'cloud.example/lb': 'internal', 'gateway.meshgate.io/owned-metadata': '{"labels":["team"],"annotations":["cloud.example/lb"]}' });
    const spec = (o.service as { spec: { ports: unknown[]; loadBalancerIP?: string; type: string } }).spec;
    assert.deepEqual(spec.ports, [
      { name: 'status-port', port: 15021, protocol: 'TCP', appProtocol: 'tcp' },
      { name: 'a-b', port: 443, protocol: 'TCP', appProtocol: 'https' },
      { name: 'tcp-2', port: 9000, protocol: 'TCP', appProtocol: 'tcp' },
    ]);
    assert.equal(spec.type, 'LoadBalancer');
    assert.equal(spec.loadBalancerIP, '203.0.113.9');
  });

  it('runs the gateway with flags and values `meshgate gateway` accepts', async (t) => {
    const o = deploymentObjects(gateway({}, { labels: { team: 'shop' } }), 'istio.io/gateway-controller', { image: 'img' });
    const pod = (o.deployment as { spec: { template: { metadata: { labels: Record<string, string> }; spec: { containers: Array<{ args: string[] }> } } } }).spec.template;
    const args = pod.spec.containers[0]!.args.map((a) => (a === '$(POD_NAMESPACE)' ? 'shop' : a));
    assert.equal(args[0], 'gateway');
    const value = (flag: string) => args[args.indexOf(flag) + 1]!;
    assert.deepEqual([...parseGatewayNames(value('--gateway-name'))], ['shop/web']);
    assert.deepEqual([...parsePorts(value('--ports'))], [[80, 80]], 'no port moved');
    const { 'sidecar.istio.io/inject': _, ...selectable } = pod.metadata.labels;
    assert.deepEqual(parseLabels(value('--labels')), selectable, 'the gateway’s labels are its pod’s');
    // Every flag is known (the parser is strict); --help stops before anything starts.
    t.mock.method(console, 'log', () => undefined);
    assert.equal(await runGatewayCommand([...args.slice(1), '--help']), 0);
  });
});

describe('owned fields', () => {
  const wanted = {
    metadata: { labels: { a: '1' }, ownerReferences: [{ uid: 'u', name: 'web' }] },
    spec: { type: 'ClusterIP', ports: [{ name: 'http', port: 80 }], template: { spec: { containers: [{ name: 'meshgate', args: ['x', 'y'] }] } } },
  };

  it('covers what the API server and people added, and sees what changed of ours', () => {
    const live = {
      metadata: { labels: { a: '1', mine: 'yes' }, ownerReferences: [{ uid: 'u', name: 'web', apiVersion: 'v1' }], resourceVersion: '7' },
      spec: { type: 'ClusterIP', clusterIP: '10.0.0.1', ports: [{ name: 'http', port: 80, targetPort: 80, protocol: 'TCP' }], template: { spec: { containers: [{ name: 'meshgate', args: ['x', 'y'], resources: {} }, { name: 'extra' }] } } },
    };
    assert.equal(covers(live, wanted), true);
    assert.equal(covers({ ...live, spec: { ...live.spec, type: 'NodePort' } }, wanted), false);
    assert.equal(covers({ ...live, spec: { ...live.spec, ports: [...live.spec.ports, { name: 'old', port: 81 }] } }, wanted), false, 'a port we no longer want');
    const argsChanged = { ...live, spec: { ...live.spec, template: { spec: { containers: [{ name: 'meshgate', args: ['x'] }] } } } };
    assert.equal(covers(argsChanged, wanted), false);
  });

  it('writes ours back, keeping what the server allocated for the same port and what others added', () => {
    const live = {
      metadata: { labels: { mine: 'yes' }, resourceVersion: '7' },
      spec: { type: 'LoadBalancer', ports: [{ name: 'http', port: 80, nodePort: 31000 }, { name: 'gone', port: 81, nodePort: 31001 }], template: { spec: { containers: [{ name: 'meshgate', args: ['z'], resources: { limits: {} } }, { name: 'extra' }] } } },
    };
    const out = withOwned(live, wanted) as typeof live & typeof wanted;
    assert.deepEqual(out.metadata, { labels: { mine: 'yes', a: '1' }, resourceVersion: '7', ownerReferences: [{ uid: 'u', name: 'web' }] });
    assert.deepEqual(out.spec.ports, [{ name: 'http', port: 80, nodePort: 31000 }]);
    assert.deepEqual(out.spec.template.spec.containers, [{ name: 'meshgate', args: ['x', 'y'], resources: { limits: {} } }, { name: 'extra' }]);
    assert.equal(covers(out, wanted), true);
  });
});
