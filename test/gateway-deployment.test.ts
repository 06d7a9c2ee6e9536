// Gateway API automated deployment against the Kubernetes API stand-in, as Istio's Getting Started
// (Gateway API flavour) uses it: the bookinfo Gateway gets a ServiceAccount, Deployment, Service and
// RoleBinding named bookinfo-gateway-istio with Istio's labels and owner references, the
// networking.istio.io/service-type annotation switches the Service's type, listener changes reach
// its ports, a manual deployment gets nothing, a round with nothing to do writes nothing, a user's
// edits outside what the controller owns stay, and a failing API server is retried. A gateway
// started as that Deployment starts it then serves the Gateway and reports the Service's name as
// its address, while a shared gateway leaves the Gateway to it.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { GatewayDeployer } from '../src/control/gateway-deployer.js';
import { startKubeApi, type KubeApiStandIn } from './helpers/kube-api.js';
import { startKubeGateway } from './helpers/kube-gateway.js';
import { eventually } from './helpers/gateway.js';
import type { RunningGateway } from '../src/gateway/main.js';

const GW = 'gateway.networking.k8s.io/v1';
const NAME = 'bookinfo-gateway-istio';
const FAST = { initialMs: 50, maxMs: 400 };

// samples/bookinfo/gateway-api/bookinfo-gateway.yaml, the part that matters here.
const bookinfoGateway = (extra: { annotations?: Record<string, string>; listeners?: unknown[]; addresses?: unknown[] } = {}) => ({
  apiVersion: GW,
  kind: 'Gateway',
  metadata: { name: 'bookinfo-gateway', namespace: 'default', ...(extra.annotations ? { annotations: extra.annotations } : {}) },
  spec: {
    gatewayClassName: 'istio',
    listeners: extra.listeners ?? [{ name: 'http', port: 80, protocol: 'HTTP', allowedRoutes: { namespaces: { from: 'Same' } } }],
    ...(extra.addresses ? { addresses: extra.addresses } : {}),
  },
});

describe('Gateway API automated deployment', () => {
  let api: KubeApiStandIn;
  let deployer: GatewayDeployer;
  const logLines: Array<Record<string, unknown>> = [];
  const writes = (name = NAME) => api.requests.filter((r) => (r.method === 'POST' || r.method === 'PUT') && !r.path.endsWith('/status') && r.path.includes('/namespaces/default/') && (r.path.endsWith(`/${name}`) || (r.body as { metadata?: { name?: string } } | undefined)?.metadata?.name === name));
  const service = () => api.get('v1', 'Service', 'default', NAME);

  before(async () => {
    api = await startKubeApi();
    const sink = new Writable({ write: (chunk: Buffer, _e, done) => (logLines.push(JSON.parse(chunk.toString()) as Record<string, unknown>), done()) });
    deployer = new GatewayDeployer({ kubeconfig: api.kubeconfig(), image: 'registry.example/meshgate:test', logger: pino({ level: 'info' }, sink), backoff: FAST });
    await deployer.start();
  });
  after(async () => {
    await deployer?.close();
    await api?.close();
  });

  it("gives Getting Started's Gateway its ServiceAccount, Deployment, Service and RoleBinding, named and labelled as Istio's", async () => {
    api.apply(bookinfoGateway());
    const uid = api.get(GW, 'Gateway', 'default', 'bookinfo-gateway')!.metadata.uid;
    await eventually(async () => service() !== undefined && api.get('apps/v1', 'Deployment', 'default', NAME) !== undefined);
    await eventually(async () => api.get('v1', 'ServiceAccount', 'default', NAME) !== undefined && api.get('rbac.authorization.k8s.io/v1', 'RoleBinding', 'default', NAME) !== undefined);
    for (const [apiVersion, kind] of [['v1', 'ServiceAccount'], ['v1', 'Service'], ['apps/v1', 'Deployment'], ['rbac.authorization.k8s.io/v1', 'RoleBinding']] as const) {
      const o = api.get(apiVersion, kind, 'default', NAME)!;
      assert.equal(o.metadata.labels['gateway.networking.k8s.io/gateway-name'], 'bookinfo-gateway', kind);
      assert.equal(o.metadata.labels['istio.io/gateway-name'], 'bookinfo-gateway', kind);
      assert.equal(o.metadata.labels['gateway.networking.k8s.io/gateway-class-name'], 'istio', kind);
      assert.equal(o.metadata.labels['gateway.istio.io/managed'], 'istio.io-gateway-controller', kind);
      assert.deepEqual(o.metadata.ownerReferences, [{ apiVersion: GW, kind: 'Gateway', name: 'bookinfo-gateway', uid }], kind);
    }
    const svc = service()!;
    assert.equal(svc.spec.type, 'LoadBalancer', 'Istio’s default');
    assert.deepEqual(svc.spec.selector, { 'gateway.networking.k8s.io/gateway-name': 'bookinfo-gateway' });
    assert.deepEqual(svc.spec.ports, [
      { name: 'status-port', port: 15021, protocol: 'TCP', appProtocol: 'tcp' },
      { name: 'http', port: 80, protocol: 'TCP', appProtocol: 'http' },
    ]);
    const dep = api.get('apps/v1', 'Deployment', 'default', NAME)!;
    assert.equal(dep.spec.replicas, 1);
    assert.deepEqual(dep.spec.selector.matchLabels, { 'gateway.networking.k8s.io/gateway-name': 'bookinfo-gateway' });
    const pod = dep.spec.template;
    assert.equal(pod.metadata.labels['gateway.networking.k8s.io/gateway-name'], 'bookinfo-gateway', 'the Service selects the pods');
    assert.equal(pod.spec.serviceAccountName, NAME);
    assert.deepEqual(pod.spec.securityContext.sysctls, [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }]);
    const [container] = pod.spec.containers;
    assert.equal(container.image, 'registry.example/meshgate:test');
    const args: string[] = container.args;
    assert.equal(args[args.indexOf('--gateway-name') + 1], 'default/bookinfo-gateway');
    assert.equal(args[args.indexOf('--config-source') + 1], 'kubernetes');
    assert.match(args[args.indexOf('--labels') + 1]!, /(^|,)gateway\.networking\.k8s\.io\/gateway-name=bookinfo-gateway(,|$)/);
    const rb = api.get('rbac.authorization.k8s.io/v1', 'RoleBinding', 'default', NAME)!;
    assert.deepEqual(rb.subjects, [{ kind: 'ServiceAccount', name: NAME, namespace: 'default' }]);
    await eventually(async () => (api.get('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', '', 'meshgate-gateways')?.subjects ?? []).some((s: { name: string }) => s.name === NAME));
    assert.equal(api.get('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', '', 'meshgate-gateways')!.roleRef.name, 'meshgate-ingressgateway');
  });

  it('switches the Service type with networking.istio.io/service-type, and keeps a user’s own fields', async () => {
    // What a person might do to the objects: annotate the Service, scale the Deployment.
    const svc = service()!;
    api.apply({ ...svc, metadata: { ...svc.metadata, annotations: { 'example.com/team': 'books' } } });
    const dep = api.get('apps/v1', 'Deployment', 'default', NAME)!;
    api.apply({ ...dep, spec: { ...dep.spec, replicas: 3 } });
    api.apply(bookinfoGateway({ annotations: { 'networking.istio.io/service-type': 'ClusterIP' } }));
    await eventually(async () => service()?.spec.type === 'ClusterIP');
    assert.equal(service()!.metadata.annotations['example.com/team'], 'books', 'an annotation we do not own stays');
    assert.equal(service()!.metadata.annotations['networking.istio.io/service-type'], 'ClusterIP', 'the Gateway’s annotations are carried, as Istio carries them');
    assert.equal(api.get('apps/v1', 'Deployment', 'default', NAME)!.spec.replicas, 3, 'replicas are the user’s once created');
  });

  it('follows the listeners: a new one adds its port, a removed one takes its port away', async () => {
    const http = { name: 'http', port: 80, protocol: 'HTTP' };
    const https = { name: 'https.main', port: 443, protocol: 'HTTPS', tls: { certificateRefs: [{ name: 'bookinfo-cert' }] } };
    const annotations = { 'networking.istio.io/service-type': 'ClusterIP' };
    api.apply(bookinfoGateway({ annotations, listeners: [http, https] }));
    await eventually(async () => service()!.spec.ports.length === 3);
    assert.deepEqual(service()!.spec.ports[2], { name: 'https-main', port: 443, protocol: 'TCP', appProtocol: 'https' });
    api.apply(bookinfoGateway({ annotations, listeners: [https] }));
    await eventually(async () => service()!.spec.ports.length === 2);
    assert.deepEqual(service()!.spec.ports.map((p: { port: number }) => p.port), [15021, 443]);
    api.apply(bookinfoGateway({ annotations }));
    await eventually(async () => service()!.spec.ports.at(-1).port === 80);
  });

  it('writes nothing when nothing it owns changed, and puts back what it owns when edited', async () => {
    const before = writes().length;
    // Status written by a gateway, an unrelated label on the Gateway: events, but nothing to write.
    const gw = api.get(GW, 'Gateway', 'default', 'bookinfo-gateway')!;
    api.apply({ ...gw, status: { conditions: [{ type: 'Programmed', status: 'True' }] } });
    // Another Gateway: once its objects exist, a round that saw the changes above has run.
    api.apply({ ...bookinfoGateway(), metadata: { name: 'second', namespace: 'default' } });
    await eventually(async () => api.get('apps/v1', 'Deployment', 'default', 'second-istio') !== undefined && api.get('rbac.authorization.k8s.io/v1', 'RoleBinding', 'default', 'second-istio') !== undefined);
    assert.equal(writes().length, before, 'no write to bookinfo-gateway-istio objects');

    const dep = api.get('apps/v1', 'Deployment', 'default', NAME)!;
    const container = dep.spec.template.spec.containers[0];
    api.apply({ ...dep, spec: { ...dep.spec, template: { ...dep.spec.template, spec: { ...dep.spec.template.spec, containers: [{ ...container, args: ['gateway'], resources: { limits: { memory: '1Gi' } } }] } } } });
    await eventually(async () => api.get('apps/v1', 'Deployment', 'default', NAME)!.spec.template.spec.containers[0].args.includes('--gateway-name'));
    assert.deepEqual(api.get('apps/v1', 'Deployment', 'default', NAME)!.spec.template.spec.containers[0].resources, { limits: { memory: '1Gi' } }, 'resources are not ours');
  });

  it('deploys nothing for a manual deployment (spec.addresses names a Service), nor over an object it did not make', async () => {
    api.apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'edge-istio', namespace: 'default' }, spec: { type: 'ClusterIP', ports: [{ name: 'http', port: 80 }] } });
    api.apply({ ...bookinfoGateway(), metadata: { name: 'manual', namespace: 'default' }, spec: { ...bookinfoGateway().spec, addresses: [{ type: 'Hostname', value: 'istio-ingressgateway.istio-system.svc.cluster.local' }] } });
    api.apply({ ...bookinfoGateway(), metadata: { name: 'edge', namespace: 'default' } });
    await eventually(async () => api.get('apps/v1', 'Deployment', 'default', 'edge-istio') !== undefined);
    assert.equal(api.get('v1', 'Service', 'default', 'manual-istio'), undefined);
    assert.equal(api.get('apps/v1', 'Deployment', 'default', 'manual-istio'), undefined);
    assert.equal(api.get('v1', 'ServiceAccount', 'default', 'manual-istio'), undefined);
    assert.equal(api.get('v1', 'Service', 'default', 'edge-istio')!.metadata.labels, undefined, 'someone else’s Service is left as it was');
    assert.ok(logLines.some((l) => l.object === 'Service default/edge-istio' && /left alone/.test(String(l.msg))));
    // A Gateway that becomes manual is no longer reconciled: its objects stay as they are.
    const writesBefore = writes('second-istio').length;
    api.apply({ ...bookinfoGateway({ annotations: { 'networking.istio.io/service-type': 'NodePort' } }), metadata: { name: 'second', namespace: 'default', annotations: { 'networking.istio.io/service-type': 'NodePort' } }, spec: { ...bookinfoGateway().spec, addresses: [{ type: 'Hostname', value: 'elsewhere' }] } });
    api.apply({ ...bookinfoGateway(), metadata: { name: 'third', namespace: 'default' } });
    await eventually(async () => api.get('apps/v1', 'Deployment', 'default', 'third-istio') !== undefined && api.get('rbac.authorization.k8s.io/v1', 'RoleBinding', 'default', 'third-istio') !== undefined);
    assert.equal(writes('second-istio').length, writesBefore);
    assert.equal(writes('edge-istio').filter((r) => r.path.endsWith('/services')).length, 1, 'a Service found to be someone else’s is not asked for again while its Gateway stays the same');
    assert.equal(api.get('v1', 'Service', 'default', 'second-istio')!.spec.type, 'LoadBalancer');
  });

  it('logs a failed write and tries again until the API server takes it', async () => {
    api.failNext('services', { on: 'write', status: 500, times: 2 });
    api.apply({ ...bookinfoGateway(), metadata: { name: 'retried', namespace: 'default' } });
    await eventually(async () => api.get('v1', 'Service', 'default', 'retried-istio') !== undefined);
    // The stand-in refuses before reading the body, so the failed creates are known by path alone.
    const failed = api.requests.filter((r) => r.method === 'POST' && r.path === '/api/v1/namespaces/default/services' && r.status === 500);
    assert.equal(failed.length, 2);
    assert.ok(logLines.some((l) => l.object === 'Service default/retried-istio' && /cannot write/.test(String(l.msg)) && /500/.test(String(l.error))));
  });

  describe('the gateway the Deployment runs', () => {
    let own: RunningGateway | undefined;
    let shared: RunningGateway | undefined;
    after(async () => {
      await own?.close();
      await shared?.close();
    });

    it('serves the Gateway and reports its Service by name; a shared gateway leaves it alone', async () => {
      const args: string[] = api.get('apps/v1', 'Deployment', 'default', NAME)!.spec.template.spec.containers[0].args;
      const labels = Object.fromEntries(args[args.indexOf('--labels') + 1]!.split(',').map((kv) => kv.split('=') as [string, string]));
      const statusBefore = api.statusWrites.length;
      shared = (await startKubeGateway(api.kubeconfig())).gw;
      own = (await startKubeGateway(api.kubeconfig(), { gatewayNames: new Set(['default/bookinfo-gateway']), labels, namespace: 'default' })).gw;
      await eventually(async () => {
        const addresses = api.get(GW, 'Gateway', 'default', 'bookinfo-gateway')?.status?.addresses;
        return JSON.stringify(addresses) === JSON.stringify([{ type: 'Hostname', value: `${NAME}.default.svc.cluster.local` }]);
      });
      const conditions = api.get(GW, 'Gateway', 'default', 'bookinfo-gateway')!.status.conditions as Array<{ type: string; status: string }>;
      assert.equal(conditions.find((c) => c.type === 'Programmed')?.status, 'True');
      assert.ok(api.statusWrites.length > statusBefore);
      const served = (gw: RunningGateway | undefined) => gw!.holder.current()!.gatewayApi.gateways.map((g) => `${g.resource.metadata.namespace}/${g.resource.metadata.name}`);
      assert.ok(served(own).includes('default/bookinfo-gateway'));
      // The shared gateway keeps the manual deployments, and `edge`, whose Service is someone else's.
      assert.deepEqual(served(shared).sort(), ['default/edge', 'default/manual', 'default/second']);
    });
  });
});
