// `meshgate gateway --workers 2`: two processes share the ports; a worker that dies is replaced while
// the other keeps serving, a memory-store rate limit is one limit across both, and SIGTERM stops both.
// A gateway that cannot start (a port in use) exits 1 with one clear line, with workers or without.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { eventually, send } from './helpers/gateway.js';
import { startWorkersGateway, type WorkersGateway } from './helpers/gateway-workers.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { freshGet } from './helpers/ports.js';

const BIN = fileURLToPath(new URL('../../bin/meshgate.js', import.meta.url));

describe('gateway --workers', () => {
  let dir: string;
  let up: Upstream;
  let gw: WorkersGateway;
  let port: number;

  before(async () => {
    up = await startUpstream('app');
    dir = await mkdtemp(join(tmpdir(), 'meshgate-workers-'));
    await writeFile(join(dir, 'gw.yaml'), gatewayYaml(['app.example.com']));
    await writeFile(join(dir, 'svc.yaml'), serviceYaml('app', [{ pod: 'app-0', port: up.port }]));
    await writeFile(
      join(dir, 'vs.yaml'),
      'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: app}\nspec:\n  hosts: [app.example.com]\n  gateways: [gw]\n  http:\n  - {name: limited, match: [{uri: {prefix: /limited}}], route: [{destination: {host: app}}]}\n  - {name: main, route: [{destination: {host: app}}]}\n',
    );
    await writeFile(
      join(dir, 'limit.yaml'),
      'apiVersion: meshgate.io/v1\nkind: RateLimitPolicy\nmetadata: {name: ten, namespace: default}\nspec:\n  targetRef: {kind: VirtualService, name: app, route: limited}\n  limits: [{key: {clientIp: {}}, requests: 10, interval: 1h}]\n  store: memory\n',
    );
    gw = await startWorkersGateway(dir, 2);
    port = gw.port;
    assert.equal((await send(port, 'app.example.com', '/')).status, 200);
  });

  after(async () => {
    gw?.kill();
    await up.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('replaces a worker that dies, and serves on', async () => {
    const [victim, survivor] = gw.workers();
    process.kill(victim!, 'SIGKILL');
    // Connections the dead worker held are lost with it; once the primary has reaped it, new ones
    // go to the survivor, before the replacement listens.
    await eventually(async () => !gw.workers().includes(victim!), 20_000);
    for (let i = 0; i < 5; i++) assert.equal((await freshGet(port, 'app.example.com', `/during/${i}`)).status, 200);
    await gw.allServing(2);
    const now = gw.workers();
    assert.ok(!now.includes(victim!) && now.includes(survivor!), 'the dead worker was replaced, the other kept');
    for (let i = 0; i < 20; i++) assert.equal((await freshGet(port, 'app.example.com', `/after/${i}`)).status, 200);
  });

  it('holds a memory-store rate limit across workers: one limit, not one per worker', async () => {
    const codes: number[] = [];
    for (let i = 0; i < 20; i++) codes.push((await freshGet(port, 'app.example.com', `/limited/${i}`)).status);
    assert.equal(codes.filter((c) => c === 200).length, 10, codes.join(' '));
    assert.equal(codes.filter((c) => c === 429).length, 10, codes.join(' '));
  });

  it('stops every worker on SIGTERM', async () => {
    const workers = gw.workers();
    const exited = new Promise<number | null>((r) => gw.proc.once('exit', (code) => r(code)));
    gw.proc.kill('SIGTERM');
    assert.equal(await exited, 0);
    for (const pid of workers) assert.throws(() => process.kill(pid, 0), 'worker is gone');
  });
});

describe('a gateway that cannot start', () => {
  for (const workers of ['2', '1']) {
    it(`exits 1 with a clear message when its status port is in use (--workers ${workers})`, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'meshgate-busy-'));
      const busy = createServer();
      await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
      const busyPort = (busy.address() as { port: number }).port;
      try {
        await writeFile(join(dir, 'gw.yaml'), gatewayYaml(['app.example.com']));
        const args = [BIN, 'gateway', '--config', dir, '--ports', '80=0', '--status-port', String(busyPort), '--admin-port', '0', '--listen-host', '127.0.0.1', '--access-log', 'off', '--metrics-port', '0', '--workers', workers];
        const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
        const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
        const messages = stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => (JSON.parse(l) as { msg: string }).msg);
        assert.equal(code, 1, stderr);
        assert.ok(messages.includes(`gateway could not start: status port (--status-port): cannot listen on 127.0.0.1:${busyPort}: the address is already in use`), stderr);
        if (workers !== '1') assert.ok(messages.some((m) => /^gateway worker \d could not start .*stopping the gateway$/.test(m)), stderr);
        assert.doesNotMatch(stderr, /^\s+at /m, 'no stack trace');
      } finally {
        busy.close();
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});
