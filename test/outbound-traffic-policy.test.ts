// Istio's outboundTrafficPolicy at a sidecar: which mode applies (the workload's Sidecar resource,
// then the mesh config, then the sidecar's flag), and what a running sidecar does with a host the
// mesh does not know under each: pass it through, or answer 502 until a ServiceEntry makes it known.
// docs/tasks/egress.md.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { parseConfigText } from '../src/core/config/load.js';
import { outboundTrafficModeOf } from '../src/core/policy/outbound-traffic-policy.js';
import type { OutboundTrafficMode } from '../src/core/policy/sidecar-scope.js';
import { buildSnapshot } from '../src/core/snapshot/build.js';
import { FileSource } from '../src/core/sources/file-source.js';
import { startSidecar, type RunningSidecar } from '../src/sidecar/main.js';
import { FIXED_DEPS } from './helpers/route-table.js';
import { fixedIdentity, testAuthority, viaProxy } from './helpers/mesh.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { tunnel } from './helpers/tunnel.js';

const meshConfig = (mode: OutboundTrafficMode): string => `apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    outboundTrafficPolicy:
      mode: ${mode}
`;

const sidecarResource = (name: string, namespace: string, mode: OutboundTrafficMode, app?: string): string => `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: ${name}, namespace: ${namespace}}
spec:
${app ? `  workloadSelector: {labels: {app: ${app}}}\n` : ''}  outboundTrafficPolicy: {mode: ${mode}}
`;

function modeFor(yaml: string, workload: { namespace?: string; app?: string; flag?: OutboundTrafficMode } = {}): OutboundTrafficMode {
  const role = { kind: 'sidecar' as const, namespace: workload.namespace ?? 'default', labels: { app: workload.app ?? 'sleep' }, serviceAccount: 'sleep', outboundTrafficPolicy: workload.flag ?? 'ALLOW_ANY' };
  const { snapshot, problems } = buildSnapshot(parseConfigText(yaml, 'mesh.yaml'), role, FIXED_DEPS);
  assert.deepEqual(problems.filter((p) => p.severity === 'error'), []);
  return outboundTrafficModeOf(snapshot);
}

describe('outboundTrafficPolicy: which mode a sidecar applies', () => {
  it('is the flag when nothing in the configuration sets one', () => {
    assert.equal(modeFor(''), 'ALLOW_ANY');
    assert.equal(modeFor('', { flag: 'REGISTRY_ONLY' }), 'REGISTRY_ONLY');
  });

  it('is the mesh config when it sets one, whatever the flag says', () => {
    assert.equal(modeFor(meshConfig('REGISTRY_ONLY')), 'REGISTRY_ONLY');
    assert.equal(modeFor(meshConfig('ALLOW_ANY'), { flag: 'REGISTRY_ONLY' }), 'ALLOW_ANY');
  });

  it('is the Sidecar resource that applies to the workload before the mesh config', () => {
    const yaml = [meshConfig('REGISTRY_ONLY'), sidecarResource('default', 'legacy', 'ALLOW_ANY'), sidecarResource('reviews', 'default', 'ALLOW_ANY', 'reviews')].join('---\n');
    assert.equal(modeFor(yaml, { namespace: 'legacy' }), 'ALLOW_ANY', "the namespace's default Sidecar");
    assert.equal(modeFor(yaml, { namespace: 'default', app: 'reviews' }), 'ALLOW_ANY', 'a Sidecar selecting the workload');
    assert.equal(modeFor(yaml, { namespace: 'default', app: 'ratings' }), 'REGISTRY_ONLY', 'a Sidecar that selects another workload does not apply');
  });

  it("is the root namespace's default Sidecar for namespaces without their own", () => {
    const yaml = [sidecarResource('default', 'istio-system', 'REGISTRY_ONLY'), sidecarResource('default', 'legacy', 'ALLOW_ANY')].join('---\n');
    assert.equal(modeFor(yaml, { namespace: 'default' }), 'REGISTRY_ONLY');
    assert.equal(modeFor(yaml, { namespace: 'legacy' }), 'ALLOW_ANY');
  });

  it('is the mesh config when the applicable Sidecar does not set one', () => {
    const yaml = [meshConfig('REGISTRY_ONLY'), 'apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: default, namespace: default}\nspec:\n  egress: [{hosts: ["./*"]}]\n'].join('---\n');
    assert.equal(modeFor(yaml), 'REGISTRY_ONLY');
  });
});

/** A MESH_EXTERNAL ServiceEntry for `localhost` (a name that resolves here) on one port. */
const localhostEntry = (name: string, port: number, protocol: 'TCP' | 'TLS', resolution: 'DNS' | 'NONE'): string => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: default}
spec:
  hosts: [localhost]
  location: MESH_EXTERNAL
  ports: [{number: ${port}, name: ${protocol.toLowerCase()}, protocol: ${protocol}}]
  resolution: ${resolution}
`;

/** `CONNECT host:port` through a sidecar's outbound port: the status line it answers. */
function connectStatus(proxyPort: number, target: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: proxyPort, method: 'CONNECT', path: target });
    req.on('connect', (res, socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 0);
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('outboundTrafficPolicy: a sidecar under the mesh config REGISTRY_ONLY', () => {
  let dir: string;
  let outside: Upstream;
  let strict: RunningSidecar, lenient: RunningSidecar;
  let secret: Server;
  let secretAccepted = 0;

  before(async () => {
    const ca = await testAuthority();
    outside = await startUpstream('outside');
    dir = await mkdtemp(join(tmpdir(), 'meshgate-egress-'));
    // What Istio's egress task writes: REGISTRY_ONLY for the mesh, and a ServiceEntry that makes one
    // outside host known; one workload keeps ALLOW_ANY through its own Sidecar resource.
    const serviceEntry = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: known-outside, namespace: default}
spec:
  hosts: [known.outside.test]
  location: MESH_EXTERNAL
  ports: [{number: ${outside.port}, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 127.0.0.1}]
`;
    // A known name that resolves here: CONNECT to its declared port works, to any other port it must not.
    const byName = localhostEntry('loopback-by-name', outside.port, 'TLS', 'DNS');
    secret = createNetServer((s) => {
      secretAccepted++;
      s.destroy();
    });
    await new Promise<void>((r) => secret.listen(0, '127.0.0.1', r));
    await writeFile(join(dir, 'mesh.yaml'), [meshConfig('REGISTRY_ONLY'), serviceEntry, byName, sidecarResource('lenient', 'default', 'ALLOW_ANY', 'lenient')].join('---\n'));
    const common = { statusPort: 0, adminPort: 0, outboundPort: 0, inboundPort: 0, listenHost: '127.0.0.1', accessLog: 'off', logger: pino({ level: 'silent' }), namespace: 'default', appPort: 1 };
    strict = await startSidecar({ ...common, identity: fixedIdentity(ca, 'default', 'sleep'), source: new FileSource({ dir }), serviceAccount: 'sleep', labels: { app: 'sleep' } });
    lenient = await startSidecar({ ...common, identity: fixedIdentity(ca, 'default', 'lenient'), source: new FileSource({ dir }), serviceAccount: 'lenient', labels: { app: 'lenient' } });
  });

  after(async () => {
    await Promise.all([strict?.destroy(), lenient?.destroy()]);
    await outside?.close();
    secret?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('CONNECT to a known host passes on its declared port only: any other port is 502, never connected', async () => {
    assert.equal(await connectStatus(strict.outboundPort, `localhost:${outside.port}`), 200);
    assert.equal(await connectStatus(strict.outboundPort, `localhost:${(secret.address() as AddressInfo).port}`), 502);
    assert.equal(secretAccepted, 0);
  });

  it('answers 502 for a host the mesh does not know, over HTTP and CONNECT', async () => {
    const r = await viaProxy(strict.outboundPort, `http://127.0.0.1:${outside.port}/out`);
    assert.equal(r.status, 502);
    assert.equal(outside.seen.length, 0);
    assert.equal(await connectStatus(strict.outboundPort, `127.0.0.1:${outside.port}`), 502);
  });

  it('reaches a host a ServiceEntry makes known', async () => {
    const r = await viaProxy(strict.outboundPort, `http://known.outside.test:${outside.port}/known`);
    assert.equal(r.status, 200, r.text);
    assert.equal(outside.seen.at(-1)?.url, '/known');
  });

  it('CONNECT to a port no TCP port can be is 400, and the sidecar keeps serving', async () => {
    // Under ALLOW_ANY the target goes to a socket connect, which throws on a port past 65535.
    assert.equal(await connectStatus(lenient.outboundPort, '127.0.0.1:99999'), 400);
    assert.equal(await connectStatus(lenient.outboundPort, 'example.test:0'), 400);
    const r = await viaProxy(lenient.outboundPort, `http://127.0.0.1:${outside.port}/after-bad-port`);
    assert.equal(r.status, 200, r.text);
  });

  it("passes unknown hosts through for the workload whose Sidecar resource says ALLOW_ANY", async () => {
    const r = await viaProxy(lenient.outboundPort, `http://127.0.0.1:${outside.port}/lenient`);
    assert.equal(r.status, 200, r.text);
    assert.equal(outside.seen.at(-1)?.url, '/lenient');
  });
});

describe('CONNECT to a ServiceEntry with resolution NONE (REGISTRY_ONLY)', () => {
  let dir: string;
  let echo: Server;
  let sidecar: RunningSidecar;

  before(async () => {
    echo = createNetServer((s) => s.on('error', () => s.destroy()).on('data', (d) => s.end(`echo ${d.toString()}`)));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const port = (echo.address() as AddressInfo).port;
    dir = await mkdtemp(join(tmpdir(), 'meshgate-egress-none-'));
    // Istio's ORIGINAL_DST: the entry names no endpoint; the connection goes where the app sent it,
    // which through CONNECT is the name and port it asked for.
    const entry = localhostEntry('by-original-destination', port, 'TCP', 'NONE');
    await writeFile(join(dir, 'mesh.yaml'), [meshConfig('REGISTRY_ONLY'), entry].join('---\n'));
    const ca = await testAuthority();
    sidecar = await startSidecar({ statusPort: 0, adminPort: 0, outboundPort: 0, inboundPort: 0, listenHost: '127.0.0.1', accessLog: 'off', logger: pino({ level: 'silent' }), namespace: 'default', appPort: 1, identity: fixedIdentity(ca, 'default', 'sleep'), source: new FileSource({ dir }), serviceAccount: 'sleep', labels: { app: 'sleep' } });
  });
  after(async () => {
    await sidecar?.destroy();
    echo?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('reaches the host and port it names', async () => {
    const reply = await tunnel(sidecar.outboundPort, `localhost:${(echo.address() as AddressInfo).port}`, 'hello');
    assert.deepEqual(reply, { status: 200, body: 'echo hello' });
  });
});
