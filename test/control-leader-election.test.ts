// Leader election between control-plane replicas (src/core/sources/kube-leader-election.ts), against the API
// stand-in with the real @kubernetes/client-node: the stand-in's Leases answer as kube-apiserver's
// do (409 AlreadyExists, 409 Conflict on a stale resourceVersion, MicroTimes checked); of two
// control planes exactly one runs each leader-only controller (the root publisher, the gateway
// deployer) while both serve; the leader closing gives the Lease up and the other takes over; a
// leader that cannot renew stops its controller before the other may take the Lease; and two real
// `meshgate control` processes, as deploy/ runs them (POD_NAME), hand over on SIGTERM. Leases are
// short in-process (options), and nothing is timed: every wait is for a state of the stand-in.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kubeJson, KubeApiError } from '../src/core/sources/kube-request.js';
import { KubeSource } from '../src/core/sources/kube-source.js';
import { startControlPlane, type RunningControlPlane } from '../src/control/main.js';
import { loadOrCreateCaSecrets } from '../src/control/ca-secrets.js';
import { TokenReviewAuthenticator } from '../src/control/token-review.js';
import { ROOT_CONFIGMAP } from '../src/control/root-cert-publisher.js';
import { GATEWAY_DEPLOYMENT_ELECTION, LeaderElection, NAMESPACE_CONTROLLER_ELECTION, microTime } from '../src/core/sources/kube-leader-election.js';
import { startKubeApi, type KubeApiStandIn } from './helpers/kube-api.js';
import { memoryLogger } from './helpers/memory-logger.js';
import { exited, meshgate, type MeshgateProcess } from './helpers/processes.js';

const silent = pino({ level: 'silent' });
const FAST = { initialMs: 50, maxMs: 400 };
/** Short, and with room between the deadline and the lease even on a loaded machine. */
const TIMING = { leaseDurationMs: 3000, renewDeadlineMs: 1500, retryPeriodMs: 100 };
const LEASES = '/apis/coordination.k8s.io/v1/namespaces/istio-system/leases';
const namespace = (name: string) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name }, status: { phase: 'Active' } });

describe('the API stand-in serves Leases as kube-apiserver does', () => {
  let api: KubeApiStandIn;
  before(async () => {
    api = await startKubeApi();
  });
  after(async () => {
    await api?.close();
  });

  it('create of an existing Lease: 409 AlreadyExists; replace from a stale resourceVersion: 409 Conflict; a MicroTime without six digits: 400', async () => {
    const kc = api.kubeconfig();
    const lease = (holder: string) => ({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'l', namespace: 'istio-system' }, spec: { holderIdentity: holder, leaseDurationSeconds: 30, renewTime: microTime(Date.now()) } });
    const created = await kubeJson(kc, 'POST', LEASES, [201], lease('a'));
    const again = await kubeJson(kc, 'POST', LEASES, [409], lease('b'));
    assert.equal(again.body.reason, 'AlreadyExists');
    const rv = (created.body.metadata as { resourceVersion: string }).resourceVersion;
    await kubeJson(kc, 'PUT', `${LEASES}/l`, [200], { ...lease('a'), metadata: { name: 'l', namespace: 'istio-system', resourceVersion: rv } });
    const stale = await kubeJson(kc, 'PUT', `${LEASES}/l`, [409], { ...lease('b'), metadata: { name: 'l', namespace: 'istio-system', resourceVersion: rv } });
    assert.equal(stale.body.reason, 'Conflict');
    assert.equal(api.get('coordination.k8s.io/v1', 'Lease', 'istio-system', 'l')!.spec.holderIdentity, 'a');
    const millis = { ...lease('c'), metadata: { name: 'm', namespace: 'istio-system' }, spec: { renewTime: new Date().toISOString() } };
    await assert.rejects(kubeJson(kc, 'POST', LEASES, [201], millis), (e: unknown) => e instanceof KubeApiError && e.statusCode === 400);
    assert.match(microTime(Date.UTC(2026, 0, 2, 3, 4, 5, 678)), /^2026-01-02T03:04:05\.678000Z$/);
  });
});

describe('leader election: one Lease, two replicas', () => {
  let api: KubeApiStandIn;
  before(async () => {
    api = await startKubeApi();
  });
  after(async () => {
    await api?.close();
  });

  it('exactly one runs the work; closing it releases the Lease and the other takes over; a leader cut off from the Lease stops before the other starts', async () => {
    const events: string[] = [];
    const replica = (id: string) => {
      const { kubeconfig, token } = api.clientKubeconfig();
      const election = new LeaderElection({
        kubeconfig, namespace: 'istio-system', name: 'test-election', identity: id, logger: silent, timing: TIMING,
        lead: () => {
          events.push(`${id} started`);
          return { close: async () => void events.push(`${id} stopped`) };
        },
      });
      return { election, token, id };
    };
    const a = replica('a');
    const b = replica('b');
    a.election.start();
    b.election.start();
    const holder = () => api.get('coordination.k8s.io/v1', 'Lease', 'istio-system', 'test-election')?.spec;
    await api.until(() => a.election.leading || b.election.leading, 'a leader');
    const [leader, other] = a.election.leading ? [a, b] : [b, a];
    // The other has read the Lease since, and left it.
    const seen = api.requests.length;
    await api.until(() => api.requests.slice(seen).some((r) => r.authorization === `Bearer ${other.token}` && r.method === 'GET' && r.path === `${LEASES}/test-election` && r.status === 200), 'the other replica read the Lease held');
    assert.equal(other.election.leading, false);
    assert.deepEqual(events, [`${leader.id} started`]);
    assert.equal(holder()!.holderIdentity, leader.id);
    assert.equal(holder()!.leaseDurationSeconds, 3);

    // Closing: the work stops, the Lease is given up (no holder), and the other takes it at its next try.
    await leader.election.close();
    assert.deepEqual(events, [`${leader.id} started`, `${leader.id} stopped`]);
    await api.until(() => other.election.leading, 'the other replica leads');
    assert.equal(holder()!.holderIdentity, other.id);
    assert.equal(holder()!.leaseTransitions, 1);
    assert.ok(api.requests.some((r) => r.method === 'PUT' && r.authorization === `Bearer ${leader.token}` && (r.body as { spec?: { holderIdentity?: string } }).spec?.holderIdentity === ''), 'released with holderIdentity cleared');

    // A third replica joins; the leader then cannot reach the Lease: it stops its work at the renew
    // deadline, and only after that can the third take the Lease (its lease is longer than the deadline).
    const c = replica('c');
    c.election.start();
    await api.until(() => api.requests.some((r) => r.authorization === `Bearer ${c.token}` && r.path === `${LEASES}/test-election` && r.status === 200), 'the third replica read the Lease');
    api.refuseToken(other.token, true, 'leases');
    await api.until(() => c.election.leading, 'the third replica leads');
    assert.equal(other.election.leading, false);
    assert.deepEqual(events.slice(2), [`${other.id} started`, `${other.id} stopped`, 'c started'], 'the old leader stopped before the new one started');
    await Promise.all([other.election.close(), c.election.close()]);
  });
});

describe('two control planes against one API server', () => {
  let api: KubeApiStandIn;
  const planes: Array<{ cp: RunningControlPlane; token: string; id: string; log: ReturnType<typeof memoryLogger> }> = [];
  before(async () => {
    api = await startKubeApi();
    for (const ns of ['default', 'istio-system', 'shop']) api.apply(namespace(ns));
    api.apply({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', metadata: { name: 'istio' }, spec: { controllerName: 'istio.io/gateway-controller' } });
    api.apply({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'web', namespace: 'shop' }, spec: { gatewayClassName: 'istio', listeners: [{ name: 'http', port: 80, protocol: 'HTTP' }] } });
    const ca = await loadOrCreateCaSecrets(api.kubeconfig(), 'istio-system');
    assert.ok(ca.ok);
    for (const id of ['control-a', 'control-b']) {
      const { kubeconfig, token } = api.clientKubeconfig();
      const log = memoryLogger();
      const cp = await startControlPlane({
        ca: ca.ca,
        authenticator: new TokenReviewAuthenticator({ kubeconfig, cacheMs: 0 }),
        source: new KubeSource({ kubeconfig, debounceMs: 20, backoff: FAST, logger: silent }),
        kubeconfig,
        kubeBackoff: FAST,
        gatewayImage: 'registry.example/meshgate:1.2.3',
        election: { namespace: 'istio-system', identity: id, timing: TIMING },
        port: 0,
        statusPort: 0,
        debugPort: 0,
        listenHost: '127.0.0.1',
        logger: log.logger,
      });
      planes.push({ cp, token, id, log });
    }
  });
  after(async () => {
    await Promise.all(planes.map((p) => p.cp.destroy()));
    await api?.close();
  });

  const writesBy = (token: string, plural: string, from = 0) =>
    api.requests.slice(from).filter((r) => r.authorization === `Bearer ${token}` && ['POST', 'PUT', 'PATCH'].includes(r.method) && r.path.includes(`/${plural}`));
  const rootIn = (ns: string): string | undefined => api.get('v1', 'ConfigMap', ns, ROOT_CONFIGMAP)?.data?.['root-cert.pem'];

  it('exactly one replica publishes the root and deploys the gateways; both serve and are ready', async () => {
    for (const election of [NAMESPACE_CONTROLLER_ELECTION, GATEWAY_DEPLOYMENT_ELECTION]) {
      await api.until(() => planes.some((p) => p.cp.leading(election)), `a leader of ${election}`);
      assert.equal(planes.filter((p) => p.cp.leading(election)).length, 1, election);
    }
    await api.until(() => ['default', 'istio-system', 'shop'].every((ns) => rootIn(ns) !== undefined) && api.get('apps/v1', 'Deployment', 'shop', 'web-istio') !== undefined, 'the root published, the gateway deployed');
    // Each standby has read each Lease held by the other since, and left it.
    const seen = api.requests.length;
    await api.until(() => planes.every((p) => [NAMESPACE_CONTROLLER_ELECTION, GATEWAY_DEPLOYMENT_ELECTION].every((e) => p.cp.leading(e) || api.requests.slice(seen).some((r) => r.authorization === `Bearer ${p.token}` && r.path === `${LEASES}/${e}` && r.status === 200))), 'the standbys read the Leases');
    for (const p of planes) {
      if (!p.cp.leading(NAMESPACE_CONTROLLER_ELECTION)) assert.deepEqual(writesBy(p.token, 'configmaps'), [], `${p.id} wrote no ConfigMap`);
      if (!p.cp.leading(GATEWAY_DEPLOYMENT_ELECTION)) assert.deepEqual(writesBy(p.token, 'deployments'), [], `${p.id} wrote no Deployment`);
      const status = await fetch(`http://127.0.0.1:${p.cp.statusPort}/healthz/ready`);
      assert.equal(status.status, 200, `${p.id} is ready, leader or not`);
      const metrics = await (await fetch(`http://127.0.0.1:${p.cp.debugPort}/metrics`)).text();
      const gauge = metrics.match(new RegExp(`^meshgate_control_leader\\{election="${NAMESPACE_CONTROLLER_ELECTION}"\\} (\\d)$`, 'm'))?.[1];
      assert.equal(gauge, p.cp.leading(NAMESPACE_CONTROLLER_ELECTION) ? '1' : '0');
    }
    const leader = planes.find((p) => p.cp.leading(NAMESPACE_CONTROLLER_ELECTION))!;
    assert.ok(leader.log.lines.some((l) => l.msg === 'leader election lock obtained: running this controller' && l.lease === `istio-system/${NAMESPACE_CONTROLLER_ELECTION}`));
  });

  it('a leader that cannot renew stops publishing; the other takes over and puts back what was deleted', async () => {
    const leader = planes.find((p) => p.cp.leading(NAMESPACE_CONTROLLER_ELECTION))!;
    const other = planes.find((p) => p !== leader)!;
    api.refuseToken(leader.token, true, 'leases');
    await api.until(() => !leader.cp.leading(NAMESPACE_CONTROLLER_ELECTION), 'the leader stepped down');
    assert.equal(other.cp.leading(NAMESPACE_CONTROLLER_ELECTION), false, 'not before the old leader stopped');
    assert.ok(leader.log.lines.some((l) => l.msg === 'leader election lock lost: stopping this controller'));
    const mark = api.requests.length;
    api.delete('ConfigMap', 'shop', ROOT_CONFIGMAP);
    await api.until(() => other.cp.leading(NAMESPACE_CONTROLLER_ELECTION) && rootIn('shop') !== undefined, 'the other replica leads and put the ConfigMap back');
    assert.deepEqual(writesBy(leader.token, 'configmaps', mark), [], 'the old leader wrote nothing after it stepped down');
    assert.ok(writesBy(other.token, 'configmaps', mark).length > 0);
    api.refuseToken(leader.token, false);
  });

  it('closing the leader hands the gateway deployment over at once: its Lease is released', async () => {
    // The replica cut off above lost this election too, if it held it; whoever holds it now.
    await api.until(() => planes.some((p) => p.cp.leading(GATEWAY_DEPLOYMENT_ELECTION)), 'a leader of the gateway deployment');
    const leader = planes.find((p) => p.cp.leading(GATEWAY_DEPLOYMENT_ELECTION))!;
    const other = planes.find((p) => p !== leader)!;
    await leader.cp.close();
    assert.equal(api.get('coordination.k8s.io/v1', 'Lease', 'istio-system', GATEWAY_DEPLOYMENT_ELECTION)!.spec.holderIdentity, other.cp.leading(GATEWAY_DEPLOYMENT_ELECTION) ? other.id : '');
    await api.until(() => other.cp.leading(GATEWAY_DEPLOYMENT_ELECTION), 'the other replica deploys gateways');
    api.delete('Deployment', 'shop', 'web-istio');
    await api.until(() => api.get('apps/v1', 'Deployment', 'shop', 'web-istio') !== undefined, 'the deployment made again');
  });
});

describe('meshgate control, two processes with the manifests\' POD_NAME', () => {
  let api: KubeApiStandIn;
  let dir: string;
  const procs: MeshgateProcess[] = [];
  before(async () => {
    api = await startKubeApi();
    for (const ns of ['default', 'istio-system']) api.apply(namespace(ns));
    dir = await mkdtemp(join(tmpdir(), 'meshgate-leader-'));
  });
  after(async () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await Promise.all(procs.map((p) => exited(p)));
    await api?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('the pod named in the Lease publishes the root; on SIGTERM it gives the Lease up and the other takes it (istiod\'s timing)', async () => {
    const tokens = new Map<string, string>();
    for (const pod of ['meshgate-control-0', 'meshgate-control-1']) {
      const client = api.clientKubeconfig();
      tokens.set(pod, client.token);
      await writeFile(join(dir, pod), client.yaml);
      procs.push(meshgate(['control', '--config-source', 'kubernetes', '--kubeconfig', join(dir, pod), '--namespace', 'istio-system', '--port', '0', '--status-port', '0', '--debug-port', '0', '--injection-port', '0', '--listen-host', '127.0.0.1'], { POD_NAME: pod }));
    }
    await Promise.all(procs.map((p) => p.serving()));
    const holder = () => api.get('coordination.k8s.io/v1', 'Lease', 'istio-system', NAMESPACE_CONTROLLER_ELECTION)?.spec?.holderIdentity as string | undefined;
    await api.until(() => tokens.has(holder() ?? '') && ['default', 'istio-system'].every((ns) => api.get('v1', 'ConfigMap', ns, ROOT_CONFIGMAP) !== undefined), 'a pod holds the Lease and the root is published', 30_000);
    const leader = holder()!;
    const other = [...tokens.keys()].find((p) => p !== leader)!;
    const writes = (pod: string) => api.requests.filter((r) => r.authorization === `Bearer ${tokens.get(pod)}` && ['POST', 'PUT'].includes(r.method) && r.path.includes('/configmaps'));
    assert.ok(writes(leader).length > 0);
    assert.deepEqual(writes(other), [], 'the other pod serves, and publishes nothing');
    const leaderProc = procs[leader === 'meshgate-control-0' ? 0 : 1]!;
    leaderProc.kill('SIGTERM');
    assert.equal(await exited(leaderProc), 0);
    assert.notEqual(holder(), leader, 'released on the way out');
    await api.until(() => holder() === other, 'the other pod holds the Lease', 30_000);
    api.delete('ConfigMap', 'default', ROOT_CONFIGMAP);
    await api.until(() => api.get('v1', 'ConfigMap', 'default', ROOT_CONFIGMAP) !== undefined, 'the new leader put the ConfigMap back');
    assert.ok(writes(other).length > 0);
  });
});
