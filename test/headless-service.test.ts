// Headless Services (`clusterIP: None`), as Istio's sidecars treat them: the registry marks them and
// names each StatefulSet pod `<hostname>.<service>.<ns>.svc.cluster.local` (the slice's `hostname`,
// or the pod's `hostname` + `subdomain`) with that pod alone; the service name keeps every endpoint;
// and a captured connection to one pod's address goes to that pod, not to one the load balancer
// picks. The last part runs a real sidecar with capture stood in for by the original-destination
// lookup, and two apps on their own loopback addresses as the pods.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigText } from '../src/core/config/load.js';
import { buildRegistry } from '../src/core/registry/build.js';
import { outboundRouteConfig, type MeshVirtualHost } from '../src/core/routing/compile-mesh.js';
import { buildSnapshot } from '../src/core/snapshot/build.js';
import { startSidecar, type RunningSidecar } from '../src/sidecar/main.js';
import { FIXED_DEPS } from './helpers/route-table.js';
import { sidecarOptions, testAuthority, untilSnapshot } from './helpers/mesh.js';
import { readCaptured, RecordedDestinations } from './helpers/original-destinations.js';
import { NO_APP } from './helpers/ports.js';

const SERVICE = (clusterIP: string): string => `apiVersion: v1
kind: Service
metadata: {name: db, namespace: default}
spec:
  clusterIP: ${clusterIP}
  selector: {app: db}
  ports: [{name: tcp, port: 9000}]
`;

const slice = (endpoints: ReadonlyArray<{ ip: string; port: number; hostname?: string }>): string => `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: db-abc, namespace: default, labels: {kubernetes.io/service-name: db}}
addressType: IPv4
ports: [{name: tcp, port: ${endpoints[0]?.port ?? 9000}}]
endpoints:
${endpoints.map((e) => `- {addresses: [${e.ip}]${e.hostname ? `, hostname: ${e.hostname}` : ''}}`).join('\n')}
`;

function registryOf(yaml: string) {
  const { resources, problems } = parseConfigText(yaml, 'test.yaml');
  assert.deepEqual(problems, []);
  return buildRegistry(resources).registry;
}

describe('headless Service in the registry', () => {
  it('is marked headless and names each pod with a hostname, that pod alone; the service keeps every endpoint', () => {
    const r = registryOf(SERVICE('None') + '---\n' + slice([{ ip: '10.1.0.1', port: 9000, hostname: 'db-0' }, { ip: '10.1.0.2', port: 9000, hostname: 'db-1' }, { ip: '10.1.0.3', port: 9000 }]));
    const svc = r.lookup('db.default.svc.cluster.local')!;
    assert.equal(svc.headless, true);
    assert.deepEqual(svc.endpoints.map((e) => e.address), ['10.1.0.1', '10.1.0.2', '10.1.0.3']);
    const pod1 = r.lookup('db-1.db.default.svc.cluster.local')!;
    assert.deepEqual(pod1.endpoints.map((e) => e.address), ['10.1.0.2']);
    assert.deepEqual(pod1.ports, svc.ports);
    assert.equal(r.lookup('db-2.db.default.svc.cluster.local')?.hostname, undefined, 'no name for a pod without a hostname');
  });

  it('takes a pod\'s hostname when its subdomain names the Service (Pods only, no slices)', () => {
    const pod = (name: string, ip: string, subdomain: string): string =>
      `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, namespace: default, labels: {app: db}}\nspec: {hostname: ${name}, subdomain: ${subdomain}}\nstatus: {phase: Running, podIP: ${ip}}\n`;
    const r = registryOf([SERVICE('None'), pod('db-0', '10.1.0.1', 'db'), pod('db-1', '10.1.0.2', 'other')].join('---\n'));
    assert.deepEqual(r.lookup('db-0.db.default.svc.cluster.local')?.endpoints.map((e) => e.address), ['10.1.0.1']);
    assert.equal(r.services.has('db-1.db.default.svc.cluster.local'), false, 'subdomain names another service');
  });

  it('gives a Service with a cluster IP no per-pod names, even when its slice has hostnames', () => {
    const r = registryOf(SERVICE('10.96.0.5') + '---\n' + slice([{ ip: '10.1.0.1', port: 9000, hostname: 'db-0' }]));
    assert.equal(r.lookup('db.default.svc.cluster.local')?.headless, undefined);
    assert.equal(r.services.has('db-0.db.default.svc.cluster.local'), false);
  });
});

describe('headless Service in the sidecar\'s TCP table', () => {
  const role = { kind: 'sidecar' as const, namespace: 'default', labels: { app: 'client' }, serviceAccount: 'client', outboundTrafficPolicy: 'ALLOW_ANY' as const };
  const { snapshot } = buildSnapshot(parseConfigText(SERVICE('None') + '---\n' + slice([{ ip: '10.1.0.1', port: 9000, hostname: 'db-0' }, { ip: '10.1.0.2', port: 9000, hostname: 'db-1' }]), 'mesh.yaml'), role, FIXED_DEPS);

  it('knows each endpoint address as the service\'s, keeping to the original destination', () => {
    const t = snapshot.meshTcp!.byAddress('10.1.0.2', 9000)!;
    assert.equal(t.service.hostname, 'db.default.svc.cluster.local');
    assert.equal(t.originalDestination, true);
    assert.equal(snapshot.meshTcp!.byAddress('None', 9000), undefined);
  });

  it('routes a pod\'s own name to a cluster of that pod alone', () => {
    const t = snapshot.meshTcp!.byHost('db-1.db.default.svc.cluster.local', 9000)!;
    assert.deepEqual(t.route.destinations[0]!.cluster!.endpoints.map((e) => e.address), ['10.1.0.2']);
  });
});

describe('headless Service in the sidecar\'s HTTP routes', () => {
  it('gives each pod\'s name a virtual host whose cluster is that pod alone; the service name keeps both', () => {
    const role = { kind: 'sidecar' as const, namespace: 'default', labels: { app: 'client' }, serviceAccount: 'client', outboundTrafficPolicy: 'ALLOW_ANY' as const };
    const yaml = SERVICE('None').replace('{name: tcp, port: 9000}', '{name: http, port: 80}') + '---\n' + slice([{ ip: '10.1.0.1', port: 8080, hostname: 'db-0' }, { ip: '10.1.0.2', port: 8080, hostname: 'db-1' }]).replace('name: tcp', 'name: http');
    const { snapshot } = buildSnapshot(parseConfigText(yaml, 'mesh.yaml'), role, FIXED_DEPS);
    const endpointsFor = (host: string): string[] => {
      const action = (outboundRouteConfig(snapshot, 80)!.findVirtualHost(host) as MeshVirtualHost).routes[0]!.action;
      assert.equal(action.kind, 'forward');
      return action.kind === 'forward' ? action.destinations[0]!.cluster!.endpoints.map((e) => e.address) : [];
    };
    assert.deepEqual(endpointsFor('db-1.db.default.svc.cluster.local'), ['10.1.0.2']);
    assert.deepEqual(endpointsFor('db-0.db'), ['10.1.0.1'], 'the short name from the same namespace too');
    assert.deepEqual(endpointsFor('db.default.svc.cluster.local'), ['10.1.0.1', '10.1.0.2']);
  });
});

describe('a captured connection to a headless Service\'s pod', () => {
  let dir: string;
  let client: RunningSidecar;
  const pods: Array<{ server: Server; ip: string; port: number }> = [];
  const destinations = new RecordedDestinations();

  before(async () => {
    const ca = await testAuthority();
    dir = await mkdtemp(join(tmpdir(), 'meshgate-headless-'));
    // Two pods on addresses of their own, each answering with its name.
    // db-2 is not ready yet: StatefulSet peers dial each other before they are.
    for (const [ip, name] of [['127.0.0.2', 'db-0'], ['127.0.0.3', 'db-1'], ['127.0.0.4', 'db-2']] as const) {
      const server = createServer((s) => {
        s.on('error', () => s.destroy());
        s.end(name);
      });
      await new Promise<void>((r) => server.listen(0, ip, r));
      pods.push({ server, ip, port: (server.address() as AddressInfo).port });
    }
    const endpoints = pods.map((p, i) => `- {addresses: [${p.ip}], hostname: db-${i}${i === 2 ? ', conditions: {ready: false}' : ''}}`).join('\n');
    // One slice per pod: the pods listen on ports of their own, as the service's target port.
    const slices = pods
      .map((p, i) => `apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: db-${i}, namespace: default, labels: {kubernetes.io/service-name: db}}\naddressType: IPv4\nports: [{name: tcp, port: ${p.port}}]\nendpoints:\n${endpoints.split('\n')[i]}\n`)
      .join('---\n');
    await writeFile(join(dir, 'db.yaml'), SERVICE('None') + '---\n' + slices);
    client = await startSidecar({ ...sidecarOptions(ca, dir, 'client', NO_APP), capture: true, originalDestination: destinations });
    await untilSnapshot(client.holder, (s) => s.meshTcp?.byAddress('127.0.0.3', 9000) !== undefined);
  });

  after(async () => {
    await client?.destroy();
    for (const p of pods) p.server.close();
    await rm(dir, { recursive: true, force: true });
  });

  const answerFrom = (ip: string, port: number): Promise<string> => readCaptured(client.outboundPort, destinations, ip, port);

  it('reaches the pod dialled on the service port, every time', async () => {
    const seen: string[] = [];
    for (let i = 0; i < 4; i++) seen.push(await answerFrom('127.0.0.3', 9000));
    for (let i = 0; i < 2; i++) seen.push(await answerFrom('127.0.0.2', 9000));
    assert.deepEqual(seen, ['db-1', 'db-1', 'db-1', 'db-1', 'db-0', 'db-0']);
  });

  it('reaches a pod that is not ready yet where it was dialled, never another one', async () => {
    assert.equal(await answerFrom('127.0.0.4', 9000), 'db-2');
  });
});
