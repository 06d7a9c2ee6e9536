// `meshgate gateway` as an operator runs it, on a folder holding two Gateway API Gateways on one
// port: each listener's port goes through --ports as an Istio server's does, every Gateway of
// meshgate's class is served, and --gateway-name narrows that to the ones named.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exited, meshgate, ready, type MeshgateProcess } from './helpers/processes.js';
import { freshGet } from './helpers/ports.js';
import { eventually } from './helpers/gateway.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { serviceYaml } from './helpers/cluster-yaml.js';

function gatewayAndRoute(name: string, host: string): string {
  return `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ${name}, namespace: default}
spec:
  gatewayClassName: istio
  listeners: [{name: http, port: 80, protocol: HTTP, hostname: ${host}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ${name}, namespace: default}
spec:
  parentRefs: [{name: ${name}}]
  rules: [{backendRefs: [{name: app, port: 80}]}]
`;
}

describe('meshgate gateway serving Gateway API Gateways from files', () => {
  let app: Upstream;
  let dir: string;
  const children: MeshgateProcess[] = [];

  before(async () => {
    app = await startUpstream('app');
    dir = await mkdtemp(join(tmpdir(), 'meshgate-gwapi-proc-'));
    await writeFile(join(dir, 'one.yaml'), gatewayAndRoute('one', 'one.example'));
    await writeFile(join(dir, 'two.yaml'), gatewayAndRoute('two', 'two.example'));
    await writeFile(join(dir, 'services.yaml'), serviceYaml('app', [{ pod: 'app-1', port: app.port }]));
  });
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await Promise.all(children.map((c) => exited(c)));
    await app?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const start = async (extra: string[]): Promise<{ http: number; child: MeshgateProcess }> => {
    // Port 0: the gateway says in its `gateway serving` line which ports it got.
    const child = meshgate(['gateway', '--config', dir, '--ports', '80=0', '--status-port', '0', '--admin-port', '0', '--listen-host', '127.0.0.1', '--access-log', 'off', '--workers', '1', ...extra]);
    children.push(child);
    const line = await child.serving();
    const http = Number((line.ports as Record<string, number>)['80']);
    const status = Number(line.statusPort);
    await eventually(() => ready(status), 60_000).catch((err: Error) => assert.fail(`${err.message}\n${child.log()}`));
    return { http, child };
  };

  it('serves every Gateway of its class, listener port 80 on the --ports listen port', async () => {
    const { http } = await start([]);
    assert.equal((await freshGet(http, 'one.example', '/')).status, 200);
    assert.equal((await freshGet(http, 'two.example', '/')).status, 200);
  });

  it('--gateway-name serves only the Gateways it names', async () => {
    const { http } = await start(['--gateway-name', 'default/two']);
    assert.equal((await freshGet(http, 'one.example', '/')).status, 404);
    assert.equal(JSON.parse((await freshGet(http, 'two.example', '/')).text).name, 'app');
  });

  it('a --gateway-name that is not namespace/name is refused before anything starts', async () => {
    const child = meshgate(['gateway', '--config', dir, '--gateway-name', 'two']);
    children.push(child);
    assert.equal(await exited(child), 2);
    assert.match(child.log(), /--gateway-name: 'two' is not namespace\/name/);
  });
});
