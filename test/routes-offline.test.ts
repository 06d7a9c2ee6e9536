// `meshgate routes` prints what a running gateway's admin `/routes` prints for the same config and
// ports: the offline command and the admin page are one view of one table, so a user can read the
// one before starting and compare with the other while it runs.

import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { exited, meshgate, type MeshgateProcess } from './helpers/processes.js';

const BIN = fileURLToPath(new URL('../../bin/meshgate.js', import.meta.url));
const CONFIG = fileURLToPath(new URL('../../gateway-config', import.meta.url));

describe('meshgate routes and the admin /routes', () => {
  let gw: MeshgateProcess | undefined;
  let dir = '';
  after(async () => {
    gw?.kill('SIGTERM');
    await exited(gw);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('print the same table for the demo config', async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshgate-routes-'));
    gw = meshgate(['gateway', '--config', CONFIG, '--certs', join(dir, 'certs'), '--ports', '80=0,443=0', '--status-port', '0', '--admin-port', '0', '--metrics-port', '0', '--workers', '1', '--drain-seconds', '0', '--log-format', 'json']);
    const serving = await gw.serving();
    const ports = serving['ports'] as Record<string, number>;
    const admin = await (await request(`http://127.0.0.1:${serving['adminPort'] as number}/routes`)).body.text();
    const offline = spawnSync(process.execPath, [BIN, 'routes', '--config', CONFIG, '--ports', `80=${ports['80']},443=${ports['443']}`], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(offline.status, 0, offline.stderr);
    assert.match(admin, new RegExp(`^listener ${ports['443']} HTTPS$`, 'm'));
    assert.equal(offline.stdout, admin);
  });
});
