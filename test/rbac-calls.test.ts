// RBAC in deploy/ against the calls the code really makes: the gateway and the control plane run
// against the API stand-in, doing what they do on a cluster (reading every collection, writing
// status, ACME Secrets, the CA Secret, the root ConfigMaps, the automated deployment's objects, the
// injector's caBundle, TokenReviews, the leader-election Leases, the ACME Lease and the Secret of
// HTTP-01 answers the replicas share), and every request the stand-in
// received is checked, by its verb, group, resource, subresource, namespace and name, against what
// the manifests grant that service account. A call missing here is a 403 that only a real cluster
// would show.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { KubeSecrets, putSecret } from '../src/core/sources/kube-secrets.js';
import { KubeSource } from '../src/core/sources/kube-source.js';
import { startControlPlane } from '../src/control/main.js';
import { loadOrCreateCaSecrets } from '../src/control/ca-secrets.js';
import { TokenReviewAuthenticator } from '../src/control/token-review.js';
import { caBundleUpdater } from '../src/control/webhook-ca-bundle.js';
import { NodeVersions } from '../src/control/node-versions.js';
import { GATEWAYS_BINDING } from '../src/control/gateway-deployer.js';
import { ROOT_CONFIGMAP } from '../src/control/root-cert-publisher.js';
import { GATEWAY_DEPLOYMENT_ELECTION, GATEWAY_STATUS_ELECTION, NAMESPACE_CONTROLLER_ELECTION } from '../src/core/sources/kube-leader-election.js';
import { startKubeApi, type KubeApiStandIn } from './helpers/kube-api.js';
import { startKubeGateway } from './helpers/kube-gateway.js';
import { INFRA, baseYaml, httpRouteYaml } from './helpers/gateway-api-yaml.js';
import { INGRESS_CLASSES, ingressPath, ingressYaml } from './helpers/ingress-yaml.js';
import { allowed, attributesOf, deployObjects, uncoveredCalls } from './helpers/rbac.js';
import { DEFAULT_GATEWAY_SERVICE_ACCOUNT } from '../src/core/model/gateway-names.js';
import { deploymentObjects, serviceAccountName, type GatewayObject } from '../src/core/gateway-api/deployment-objects.js';
import { statusLeaseName } from '../src/core/gateway-api/status-leader.js';
import { AcmeElection, ACME_ELECTION, acmeLeaseName } from '../src/gateway/acme/acme-election.js';
import { AcmeManager } from '../src/gateway/acme/acme-manager.js';
import { secretStorage } from '../src/gateway/acme/certificate-secrets.js';
import { SnapshotHolder } from '../src/core/snapshot/holder.js';
import type { KubeConfig } from '@kubernetes/client-node';

const silent = pino({ level: 'silent' });
const FAST = { initialMs: 50, maxMs: 400 };
const GATEWAY_SA = { namespace: 'istio-system', name: DEFAULT_GATEWAY_SERVICE_ACCOUNT };
const CONTROL_SA = { namespace: 'istio-system', name: 'meshgate-control' };
const LEASES = '/apis/coordination.k8s.io/v1/namespaces/istio-system/leases';

/**
 * What a gateway replica does for ACME besides its Secrets: takes, renews and gives up the ACME
 * Lease, and as its holder publishes an HTTP-01 answer, reads the Secret again on a miss, clears a
 * predecessor's leftovers and withdraws it (the order itself needs an ACME server: gateway-acme-replicas.test.ts).
 */
async function coordinateAcme(api: KubeApiStandIn, kubeconfig: KubeConfig, namespace: string, gatewayNames?: ReadonlySet<string>): Promise<void> {
  const secrets = new KubeSecrets({ kubeconfig, namespace, logger: silent, backoff: FAST });
  await secrets.start();
  const election = new AcmeElection({ kubeconfig, namespace, identity: 'gateway-0', logger: silent, timing: { leaseDurationMs: 3000, renewDeadlineMs: 1500, retryPeriodMs: 50 }, ...(gatewayNames ? { gatewayNames } : {}) });
  const board = election.challenges(secrets);
  const manager = new AcmeManager({ storage: secretStorage(secrets), holder: new SnapshotHolder(), logger: silent, election });
  manager.start();
  election.attach(manager, board);
  const lease = () => api.get('coordination.k8s.io/v1', 'Lease', namespace, acmeLeaseName(gatewayNames))?.spec;
  try {
    await api.until(() => lease()?.holderIdentity === 'gateway-0' && api.requests.some((r) => r.method === 'PUT' && r.path.endsWith(`/leases/${acmeLeaseName(gatewayNames)}`)), 'the ACME Lease taken and renewed');
    const token = 'a'.repeat(43);
    await board.publish(token, `${token}.thumbprint`);
    assert.equal(await board.answer('b'.repeat(43)), undefined, 'a miss, read again');
    await board.withdrawLeftovers();
    await board.withdraw(token);
  } finally {
    await election.close();
    await manager.close();
    await secrets.close();
  }
  assert.equal(lease()?.holderIdentity, '', 'the ACME Lease given up');
}

describe('RBAC in deploy/ covers every call the code makes', () => {
  let objects: Awaited<ReturnType<typeof deployObjects>>;
  let api: KubeApiStandIn;
  before(async () => {
    objects = await deployObjects();
  });
  after(async () => {
    await api?.close();
  });

  it('the authorizer reads the manifests as the API server would: namespaces, names and subresources count', () => {
    const may = (sa: typeof GATEWAY_SA, a: Parameters<typeof allowed>[2]) => allowed(objects, sa, a);
    assert.ok(may(GATEWAY_SA, { verb: 'watch', group: '', resource: 'secrets', namespace: 'istio-system' }));
    assert.ok(!may(GATEWAY_SA, { verb: 'watch', group: '', resource: 'secrets', namespace: 'default' }), 'the Role grants its own namespace only');
    assert.ok(may(GATEWAY_SA, { verb: 'update', group: 'gateway.networking.k8s.io', resource: 'httproutes/status', namespace: 'default', name: 'r' }));
    assert.ok(!may(GATEWAY_SA, { verb: 'update', group: 'gateway.networking.k8s.io', resource: 'httproutes', namespace: 'default', name: 'r' }), 'status only');
    assert.ok(may(CONTROL_SA, { verb: 'watch', group: 'admissionregistration.k8s.io', resource: 'mutatingwebhookconfigurations', name: 'meshgate-sidecar-injector' }));
    assert.ok(!may(CONTROL_SA, { verb: 'watch', group: 'admissionregistration.k8s.io', resource: 'mutatingwebhookconfigurations' }), 'by name only');
    assert.deepEqual(attributesOf({ method: 'GET', path: '/api/v1/namespaces/default', query: {}, authorization: undefined, status: 200 }), { verb: 'get', group: '', resource: 'namespaces', name: 'default' });
    assert.deepEqual(attributesOf({ method: 'GET', path: '/api/v1/configmaps', query: { watch: 'true', fieldSelector: 'metadata.name=x' }, authorization: undefined, status: 200 }), { verb: 'watch', group: '', resource: 'configmaps', name: 'x' });
  });

  it('the gateway: every collection it reads, its Secrets, its ACME Secrets and Lease, the Gateway API and Ingress status it writes, its status Lease', async () => {
    api = await startKubeApi();
    api.applyYaml(baseYaml({ v1: 1, v2: 2, v3: 3, web: 4 }));
    api.applyYaml(httpRouteYaml('route', { gateway: 'all-namespaces', hostname: 'shop.example.com', backend: 'infra-backend-v1', port: 8080, namespace: INFRA }));
    // An Ingress of Istio's class, whose status takes the ingress Service's load balancer address.
    api.apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'istio-ingressgateway', namespace: 'istio-system' }, spec: { type: 'LoadBalancer', ports: [{ name: 'http', port: 80 }] }, status: { loadBalancer: { ingress: [{ ip: '203.0.113.9' }] } } });
    api.applyYaml(INGRESS_CLASSES);
    api.applyYaml(ingressYaml('shop', 'shop.example.com', { namespace: INFRA, className: 'istio', paths: [ingressPath('/', 'Prefix', 'infra-backend-v1', 8080)] }));
    const kubeconfig = api.kubeconfig();
    const secrets = new KubeSecrets({ kubeconfig, namespace: 'istio-system', logger: silent, backoff: FAST });
    await secrets.start();
    // What the ACME client stores: created once, replaced on renewal.
    const certificate = { namespace: 'istio-system', name: 'shop-tls', type: 'kubernetes.io/tls', data: { 'tls.crt': 'c', 'tls.key': 'k' } };
    await putSecret(kubeconfig, certificate);
    await putSecret(kubeconfig, certificate);
    await secrets.fetch('shop-tls');
    const { gw } = await startKubeGateway(kubeconfig, { namespace: 'istio-system' });
    try {
      const wrote = (plural: string) => api.statusWrites.some((w) => w.startsWith(`${plural} `));
      await api.until(() => ['gatewayclasses', 'gateways', 'httproutes', 'ingresses'].every(wrote), 'status written for the class, the Gateways, the route and the Ingress');
      assert.ok(api.get('coordination.k8s.io/v1', 'Lease', 'istio-system', GATEWAY_STATUS_ELECTION), 'status written as the holder of its Lease');
      await coordinateAcme(api, kubeconfig, 'istio-system');
      assert.ok(api.get('coordination.k8s.io/v1', 'Lease', 'istio-system', ACME_ELECTION));
    } finally {
      await gw.close();
      await secrets.close();
    }
    assert.deepEqual(uncoveredCalls(objects, GATEWAY_SA, api.requests), [], 'calls the gateway made that its RBAC does not allow');
    await api.close();
  });

  it('a Gateway\'s own gateway: with the RoleBinding and binding subject the control plane makes for it, its reads, status, status Lease and ACME coordination', async () => {
    api = await startKubeApi();
    api.applyYaml(baseYaml({ v1: 1, v2: 2, v3: 3, web: 4 }));
    const gateway = api.get('gateway.networking.k8s.io/v1', 'Gateway', INFRA, 'same-namespace')!;
    const made = deploymentObjects(gateway as unknown as GatewayObject, 'meshgate.io/gateway-controller', { image: 'registry.example/meshgate:1.2.3' });
    const sa = { namespace: INFRA, name: serviceAccountName(gateway as unknown as GatewayObject) };
    const granted = [
      ...objects,
      { ...made.roleBinding },
      // The control plane keeps the gateways' accounts as the subjects of this binding.
      { ...objects.find((o) => o.kind === 'ClusterRoleBinding' && o.metadata.name === GATEWAYS_BINDING), subjects: [{ kind: 'ServiceAccount', ...sa }] },
    ];
    const key = `${sa.namespace}/${gateway.metadata.name}`;
    const { gw } = await startKubeGateway(api.kubeconfig(), { namespace: sa.namespace, gatewayNames: new Set([key]) });
    try {
      await api.until(() => api.statusWrites.some((w) => w.startsWith('gateways ')) && api.get('coordination.k8s.io/v1', 'Lease', sa.namespace, statusLeaseName(new Set([key]))) !== undefined, 'its Gateway\'s status written, as the holder of its Lease');
      await coordinateAcme(api, api.kubeconfig(), sa.namespace, new Set([key]));
    } finally {
      await gw.close();
    }
    assert.deepEqual(uncoveredCalls(granted, sa, api.requests), [], 'calls a Gateway\'s own gateway made that its RBAC does not allow');
    await api.close();
  });

  it('the control plane: the CA Secret, TokenReviews, root ConfigMaps, automated deployment, the injector caBundle, Nodes, its leader Leases', async () => {
    api = await startKubeApi();
    for (const ns of ['default', 'istio-system']) api.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    api.apply({ apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: 'meshgate-sidecar-injector' }, webhooks: [{ name: 'a', clientConfig: {} }] });
    api.apply({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: GATEWAYS_BINDING }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'meshgate-ingressgateway' } });
    api.apply({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'istio' }, spec: { controllerName: 'istio.io/gateway-controller' } });
    api.apply({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'bookinfo-gateway', namespace: 'default' }, spec: { gatewayClassName: 'istio', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] } });
    api.addServiceAccountToken('proxy-token', 'default', 'bookinfo');
    const kubeconfig = api.kubeconfig();
    const ca = await loadOrCreateCaSecrets(kubeconfig, 'istio-system');
    assert.ok(ca.ok);
    const authenticator = new TokenReviewAuthenticator({ kubeconfig, cacheMs: 0 });
    const cp = await startControlPlane({
      ca: ca.ca,
      authenticator,
      source: new KubeSource({ kubeconfig, debounceMs: 20, backoff: FAST, logger: silent }),
      kubeconfig,
      kubeBackoff: FAST,
      gatewayImage: 'registry.example/meshgate:1.2.3',
      injection: {
        port: 0,
        serviceName: 'meshgate-sidecar-injector',
        namespace: 'istio-system',
        inject: { image: 'registry.example/meshgate:1.2.3', controlAddress: 'https://meshgate-control.istio-system.svc:15012' },
        caBundle: caBundleUpdater(kubeconfig, 'meshgate-sidecar-injector', silent),
        nodes: new NodeVersions({ kubeconfig, logger: silent, backoff: FAST }),
      },
      port: 0,
      statusPort: 0,
      listenHost: '127.0.0.1',
      logger: silent,
      election: { namespace: 'istio-system', identity: 'meshgate-control-0', timing: { leaseDurationMs: 3000, renewDeadlineMs: 1500, retryPeriodMs: 50 } },
    });
    try {
      const authenticated = await authenticator.authenticate('proxy-token');
      assert.ok(authenticated.ok, 'TokenReview answered');
      await api.until(
        () =>
          api.all('Deployment').length > 0 &&
          api.all('RoleBinding').length > 0 &&
          (api.get('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', '', GATEWAYS_BINDING)?.subjects?.length ?? 0) > 0 &&
          api.get('v1', 'ConfigMap', 'default', ROOT_CONFIGMAP) !== undefined &&
          api.requests.some((r) => r.method === 'PATCH') &&
          api.requests.some((r) => r.path === '/api/v1/nodes' && r.query.watch === 'true') &&
          api.requests.filter((r) => r.method === 'PUT' && r.path.startsWith(LEASES)).length >= 2,
        'the deployment made, the root published, the caBundle set, the Nodes watched, the Leases renewed',
      );
    } finally {
      await cp.close();
    }
    // Each Lease created, renewed (update), and given up on close.
    for (const e of [NAMESPACE_CONTROLLER_ELECTION, GATEWAY_DEPLOYMENT_ELECTION]) {
      assert.ok(api.requests.some((r) => r.method === 'POST' && r.path === LEASES && (r.body as { metadata: { name: string } }).metadata.name === e), `${e} created`);
      assert.equal(api.get('coordination.k8s.io/v1', 'Lease', 'istio-system', e)!.spec.holderIdentity, '', `${e} released`);
    }
    assert.deepEqual(uncoveredCalls(objects, CONTROL_SA, api.requests), [], 'calls the control plane made that its RBAC does not allow');
  });
});
