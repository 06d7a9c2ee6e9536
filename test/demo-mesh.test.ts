// The demo mesh as `npm start` runs it (control plane, apps behind sidecars, gateway joined to the
// mesh), on ephemeral ports and a copy of gateway-config/: the README's curl commands answer as it says.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import type { BackendReply } from '../src/demo/backend.js';
import { startDemoMesh, type RunningDemoMesh } from '../src/demo/mesh.js';
import { DEMO_WORKLOADS, type DemoWorkload } from '../src/demo/topology.js';
import { eventually, send } from './helpers/gateway.js';
import { freePort } from './helpers/ports.js';

const CONFIG_DIR = fileURLToPath(new URL('../../gateway-config/', import.meta.url));


describe('the demo mesh', () => {
  let mesh: RunningDemoMesh;
  let dir: string;
  let port: number;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-demo-mesh-'));
    const config = join(dir, 'config');
    await cp(CONFIG_DIR, config, { recursive: true });
    let services = await readFile(join(config, 'services.yaml'), 'utf8');
    const workloads: DemoWorkload[] = [];
    for (const w of DEMO_WORKLOADS) {
      const moved = { ...w, port: await freePort(), appPort: await freePort(), outboundPort: await freePort() };
      services = services.replace(new RegExp(`\\b${w.port}\\b`, 'g'), String(moved.port));
      workloads.push(moved);
    }
    await writeFile(join(config, 'services.yaml'), services);
    mesh = await startDemoMesh({
      configDir: config,
      certsDir: join(dir, 'certs'),
      gatewayPorts: new Map([[80, 0]]),
      listenHost: '127.0.0.1',
      statusPort: 0,
      adminPort: 0,
      accessLog: 'off',
      workloads,
      controlPort: 0,
      logger: pino({ level: 'silent' }),
    });
    port = mesh.gateway.listenPorts.get(80)!;
  });

  after(async () => {
    await mesh?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('product.example.com crosses gateway → product sidecar → product app → user sidecar → user app, each hop with the caller identity', async () => {
    const r = await send(port, 'product.example.com', '/');
    assert.equal(r.status, 200, r.text);
    const product = r.json<BackendReply>();
    assert.equal(product.service, 'product-service');
    assert.match(String(product.headers['x-forwarded-client-cert']), /URI=spiffe:\/\/cluster\.local\/ns\/istio-system\/sa\/meshgate-ingressgateway$/);
    const call = product.calls?.['http://user-service/users/1'];
    assert.equal(call?.status, 200, JSON.stringify(call));
    const user = call!.body as BackendReply;
    assert.equal(user.service, 'user-service');
    assert.match(String(user.headers['x-forwarded-client-cert']), /URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/product-service$/);
    assert.equal(user.headers['x-request-id'], product.headers['x-request-id'], 'the request id travels the whole chain');
  });

  it("denies user-service's admin paths by AuthorizationPolicy", async () => {
    const r = await send(port, 'api.example.com', '/user/admin');
    assert.equal(r.status, 403);
    assert.equal(r.text, 'RBAC: access denied');
    assert.equal((await send(port, 'api.example.com', '/user/42')).status, 200);
  });

  it('a sidecar refuses plaintext (PeerAuthentication STRICT)', async () => {
    const sidecarPort = mesh.sidecars[0]!.inboundPort;
    const answer = await new Promise<string>((resolve) => {
      const s = netConnect(sidecarPort, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nhost: user-service\r\n\r\n'));
      let data = '';
      s.on('data', (d: Buffer) => (data += d.toString()));
      s.on('close', () => resolve(data));
      s.on('error', () => undefined);
    });
    assert.equal(answer, '');
  });

  it('the control plane lists every proxy with the version it acknowledged', async () => {
    // Acknowledgements travel on their own; wait for them rather than for a fixed time.
    await eventually(async () => {
      const proxies = mesh.control.registry.list();
      return proxies.length === DEMO_WORKLOADS.length + 1 && proxies.every((p) => p.acknowledgedVersion === mesh.control.version());
    });
  });
});
