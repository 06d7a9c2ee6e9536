// `meshgate gateway --workers 2`: two processes share the ports; a worker that dies is replaced while
// the other keeps serving, a memory-store rate limit is one limit across both, and SIGTERM stops both.
// A gateway that cannot start (a port in use) exits 1 with one clear line, with workers or without.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { gatewayYaml, serviceYaml } from './helpers/cluster-yaml.js';
import { eventually, send } from './helpers/gateway.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { freePort, freshGet } from './helpers/ports.js';

const BIN = fileURLToPath(new URL('../../bin/meshgate.js', import.meta.url));

function childPids(pid: number): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' }).split('\n').map((l) => Number(l.trim())).filter((n) => n > 0);
  } catch {
    return [];
  }
}

describe('gateway --workers', () => {
  let dir: string;
  let up: Upstream;
  let gw: ChildProcess;
  let port: number;
  // Process ids of the workers that have logged 'gateway serving': a forked worker is not yet
  // listening, and the one listening worker's death closes the port until another one listens.
  const serving = new Set<number>();

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
    port = await freePort();
    const [statusPort, adminPort] = [await freePort(), await freePort()];
    gw = spawn(process.execPath, [BIN, 'gateway', '--config', dir, '--ports', `80=${port}`, '--status-port', String(statusPort), '--admin-port', String(adminPort), '--listen-host', '127.0.0.1', '--access-log', 'off', '--workers', '2', '--drain-seconds', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    createInterface({ input: gw.stderr! }).on('line', (line) => {
      if (!line.startsWith('{')) {
        process.stderr.write(`gateway: ${line}\n`);
        return;
      }
      const entry = JSON.parse(line) as { msg?: string; pid?: number };
      if (entry.msg === 'gateway serving' && entry.pid !== undefined) serving.add(entry.pid);
    });
    await eventually(async () => {
      const workers = childPids(gw.pid!);
      return workers.length === 2 && workers.every((pid) => serving.has(pid));
    }, 20_000);
    assert.equal((await send(port, 'app.example.com', '/')).status, 200);
  });

  after(async () => {
    for (const pid of childPids(gw.pid!)) process.kill(pid, 'SIGKILL');
    gw.kill('SIGKILL');
    await up.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('replaces a worker that dies, and serves on', async () => {
    const [victim, survivor] = childPids(gw.pid!);
    process.kill(victim!, 'SIGKILL');
    // Connections the dead worker held are lost with it; once the primary has reaped it, new ones
    // go to the survivor, before the replacement listens.
    await eventually(async () => !childPids(gw.pid!).includes(victim!), 20_000);
    for (let i = 0; i < 5; i++) assert.equal((await freshGet(port, 'app.example.com', `/during/${i}`)).status, 200);
    await eventually(async () => {
      const now = childPids(gw.pid!);
      return now.length === 2 && !now.includes(victim!) && now.includes(survivor!) && now.every((pid) => serving.has(pid));
    }, 20_000);
    for (let i = 0; i < 20; i++) assert.equal((await freshGet(port, 'app.example.com', `/after/${i}`)).status, 200);
  });

  it('holds a memory-store rate limit across workers: one limit, not one per worker', async () => {
    const codes: number[] = [];
    for (let i = 0; i < 20; i++) codes.push((await freshGet(port, 'app.example.com', `/limited/${i}`)).status);
    assert.equal(codes.filter((c) => c === 200).length, 10, codes.join(' '));
    assert.equal(codes.filter((c) => c === 429).length, 10, codes.join(' '));
  });

  it('stops every worker on SIGTERM', async () => {
    const workers = childPids(gw.pid!);
    const exited = new Promise<number | null>((r) => gw.once('exit', (code) => r(code)));
    gw.kill('SIGTERM');
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
        const args = [BIN, 'gateway', '--config', dir, '--ports', '80=0', '--status-port', String(busyPort), '--admin-port', '0', '--listen-host', '127.0.0.1', '--access-log', 'off', '--workers', workers];
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
