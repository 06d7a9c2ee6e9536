// The sidecar's end, on real processes: POST /quitquitquit on the agent port (15020) and on the
// admin port (15000) answers 200 and the process exits 0 (how a Job's app ends its sidecar), other
// methods are 405; the pod's ProxyConfig reaches the drain through PROXY_CONFIG
// (terminationDrainDuration) and EXIT_ON_ZERO_ACTIVE_CONNECTIONS (stop once the last connection
// closes, not after a fixed period); POST /drain (a native sidecar's preStop) drains before SIGTERM.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from './helpers/gateway.js';
import { exited, meshgate, ready, type MeshgateProcess } from './helpers/processes.js';
import { Http1Connection } from './helpers/raw-clients.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { createAppProbeServer } from '../src/sidecar/app-probes.js';
import { readShutdownEnv } from '../src/sidecar/shutdown-settings.js';

describe('quitquitquit from outside the pod, and the shutdown env', () => {
  // 15020 listens on the pod's address for the kubelet: a mesh peer must not be able to end the sidecar.
  const external = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
  it('a POST from an address other than loopback is 403 and quits nothing', { skip: external === undefined && 'no non-loopback IPv4 address here' }, async () => {
    let quits = 0;
    const server = createAppProbeServer({ probers: {}, appHost: '127.0.0.1', quit: () => quits++ });
    const port = await server.listen(0, '0.0.0.0');
    try {
      const far = await fetch(`http://${external}:${port}/quitquitquit`, { method: 'POST' });
      assert.equal(far.status, 403);
      assert.equal(quits, 0);
      const near = await fetch(`http://127.0.0.1:${port}/quitquitquit`, { method: 'POST' });
      assert.equal(near.status, 200);
      assert.equal(quits, 1);
    } finally {
      await server.close();
    }
  });

  it('reads terminationDrainDuration from PROXY_CONFIG, EXIT_ON_ZERO_ACTIVE_CONNECTIONS and MINIMUM_DRAIN_DURATION', () => {
    assert.deepEqual(readShutdownEnv({}), { exitOnZeroActiveConnections: false, minimumDrainSeconds: 5, problems: [] });
    assert.deepEqual(readShutdownEnv({ PROXY_CONFIG: '{"terminationDrainDuration":"45s"}', EXIT_ON_ZERO_ACTIVE_CONNECTIONS: 'true', MINIMUM_DRAIN_DURATION: '1m30s' }), {
      terminationDrainSeconds: 45, exitOnZeroActiveConnections: true, minimumDrainSeconds: 90, problems: [],
    });
    const bad = readShutdownEnv({ PROXY_CONFIG: '{"terminationDrainDuration":"soon"}', MINIMUM_DRAIN_DURATION: 'x' });
    assert.equal(bad.terminationDrainSeconds, undefined);
    assert.equal(bad.minimumDrainSeconds, 5);
    assert.equal(bad.problems.length, 2);
  });
});

describe('sidecar lifecycle: quitquitquit and the pod\'s drain settings', () => {
  let dir: string;
  let app: Upstream;
  let controlPort = 0;
  const children: MeshgateProcess[] = [];
  const held = new Map<string, () => void>();
  let n = 0;

  before(async () => {
    app = await startUpstream('app', (req, res, e) => {
      if (!req.url?.includes('/hold/')) return false;
      held.set(req.url.slice(req.url.indexOf('/hold/')), () => res.end(JSON.stringify(e)));
      return true;
    });
    dir = await mkdtemp(join(tmpdir(), 'meshgate-lifecycle-'));
    await mkdir(join(dir, 'config'), { recursive: true });
    await writeFile(join(dir, 'tokens.yaml'), '- {token: tok-job, namespace: default, serviceAccount: job}\n');
    await writeFile(join(dir, 'job.token'), 'tok-job\n');
    const control = meshgate(['control', '--config', join(dir, 'config'), '--tokens', join(dir, 'tokens.yaml'), '--ca-dir', join(dir, 'ca'), '--port', '0', '--status-port', '0', '--listen-host', '127.0.0.1']);
    children.push(control);
    const cp = await control.serving();
    controlPort = Number(cp.port);
    await eventually(() => ready(Number(cp.statusPort)), 60_000);
  });
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await Promise.all(children.map((c) => exited(c)));
    await app.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A sidecar on ports it binds itself, ready; `env` as injection would set it. */
  async function sidecar(env: Record<string, string> = {}, extra: string[] = []): Promise<{ proc: MeshgateProcess; probe: number; admin: number; outbound: number; status: number }> {
    const proc = meshgate([
      'sidecar', '--control', `https://127.0.0.1:${controlPort}`, '--root-cert', join(dir, 'ca', 'root-cert.pem'), '--token', join(dir, 'job.token'),
      '--namespace', 'default', '--service-account', 'job', '--workload', `job-${n++}`, '--labels', 'app=job',
      '--app-port', String(app.port), '--inbound-port', '0', '--outbound-port', '0', '--probe-port', '0',
      '--status-port', '0', '--admin-port', '0', '--listen-host', '127.0.0.1', '--access-log', 'off', '--metrics-port', '0', ...extra,
    ], env);
    children.push(proc);
    const line = await proc.serving();
    const ports = { proc, probe: Number(line.probe), admin: Number(line.admin), outbound: Number(line.outbound), status: Number(line.status) };
    await eventually(() => ready(ports.status), 60_000);
    return ports;
  }

  it('POST /quitquitquit on the agent port: 405 for GET, then 200 and exit 0', async () => {
    const s = await sidecar();
    assert.notEqual(s.probe, 0, 'the agent port listens when the probe port is given, probes or not');
    const get = await fetch(`http://127.0.0.1:${s.probe}/quitquitquit`);
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST');
    assert.equal(await ready(s.status), true, 'a GET ends nothing');
    const post = await fetch(`http://127.0.0.1:${s.probe}/quitquitquit`, { method: 'POST' });
    assert.equal(post.status, 200);
    assert.equal(await post.text(), 'OK\n');
    assert.equal(await exited(s.proc), 0, s.proc.log());
    assert.equal(s.proc.count('quit requested (POST /quitquitquit): stopping without a drain period'), 1);
  });

  it('POST /quitquitquit on the admin port: 200 and exit 0, even with a long drain configured', async () => {
    const s = await sidecar({}, ['--drain-seconds', '600', '--drain-deadline-seconds', '900']);
    const put = await fetch(`http://127.0.0.1:${s.admin}/quitquitquit`, { method: 'PUT' });
    assert.equal(put.status, 405);
    const post = await fetch(`http://127.0.0.1:${s.admin}/quitquitquit`, { method: 'POST' });
    assert.equal(post.status, 200);
    assert.equal(await exited(s.proc), 0, s.proc.log());
  });

  it('POST /drain (a native sidecar\'s preStop) starts the drain while serving goes on; SIGTERM then stops without a second drain period', async () => {
    const s = await sidecar({}, ['--drain-seconds', '600', '--drain-deadline-seconds', '900']);
    assert.equal((await fetch(`http://127.0.0.1:${s.probe}/drain`)).status, 405);
    const post = await fetch(`http://127.0.0.1:${s.probe}/drain`, { method: 'POST' });
    assert.equal(post.status, 200);
    await eventually(async () => !(await ready(s.status)));
    const authority = `127.0.0.1:${app.port}`;
    const during = await (await Http1Connection.open(s.outbound)).get(authority, `http://${authority}/during-drain`);
    assert.equal(during.status, 200);
    assert.equal(during.headers.connection, 'close');
    s.proc.kill('SIGTERM');
    assert.equal(await exited(s.proc), 0, s.proc.log());
    assert.equal(s.proc.count('drained since POST /drain: stopping without a second drain period'), 1);
  });

  it("PROXY_CONFIG's terminationDrainDuration is the drain period on SIGTERM", async () => {
    const s = await sidecar({ PROXY_CONFIG: JSON.stringify({ terminationDrainDuration: '0.5s' }) });
    s.proc.kill('SIGTERM');
    assert.equal(await exited(s.proc), 0, s.proc.log());
    assert.match(s.proc.log(), /"seconds":0\.5,.*"msg":"draining: readiness fails now/);
  });

  it('EXIT_ON_ZERO_ACTIVE_CONNECTIONS: after the minimum drain the sidecar waits for the last connection, then exits', async () => {
    const s = await sidecar({ EXIT_ON_ZERO_ACTIVE_CONNECTIONS: 'true', MINIMUM_DRAIN_DURATION: '100ms' }, ['--drain-seconds', '20', '--drain-deadline-seconds', '120']);
    const conn = await Http1Connection.open(s.outbound);
    const authority = `127.0.0.1:${app.port}`;
    const inFlight = conn.get(authority, `http://${authority}/hold/zero`);
    await eventually(async () => held.has('/hold/zero'));
    s.proc.kill('SIGTERM');
    await eventually(async () => s.proc.count('waiting for active connections to close') === 1);
    // Still serving: a new connection's request is answered, told to close its connection.
    const during = await (await Http1Connection.open(s.outbound)).get(authority, `http://${authority}/during`);
    assert.equal(during.status, 200);
    assert.equal(during.headers.connection, 'close');
    held.get('/hold/zero')!();
    assert.equal((await inFlight).status, 200);
    assert.equal(await exited(s.proc), 0, s.proc.log());
    assert.equal(s.proc.count('no active connections: stopping'), 1);
  });
});
