// The one way every long-running command (gateway, sidecar, control plane, demo) learns to stop:
// the first SIGTERM or SIGINT starts the stop, a second changes nothing, a third stops at once.
// Run in a child process, since the test sends it real signals.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadOrCreateAuthority } from '../src/core/pki/authority.js';
import { ROOT_CERT_FILE } from '../src/core/pki/ca-files.js';

const MODULE = fileURLToPath(new URL('../src/core/runtime/stop-signals.js', import.meta.url));

/** A process that stops the way the commands do, taking 1.5 s to drain; its stdout lines and exit. */
function stopper(): { child: ReturnType<typeof spawn>; lines: string[]; said(line: string): Promise<void> } {
  const script = `
    const { stopRequested } = await import(${JSON.stringify(MODULE)});
    const say = (m) => process.stdout.write(m + '\\n');
    const alive = setInterval(() => {}, 1000); // a command's servers keep it alive; here, this does
    const cause = stopRequested({ log: { info: (_f, m) => say(m), warn: (_f, m) => say(m) } });
    say('ready');
    say('stopping on ' + await cause);
    await new Promise((r) => setTimeout(r, 1500));
    say('drained');
    clearInterval(alive);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  let partial = '';
  child.stdout!.on('data', (d: Buffer) => {
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    waiters.splice(0).forEach((w) => w());
  });
  const said = (line: string): Promise<void> =>
    new Promise((resolve) => {
      const check = (): void => (lines.some((l) => l.startsWith(line)) ? resolve() : void waiters.push(check));
      check();
    });
  return { child, lines, said };
}

const exitOf = (child: ReturnType<typeof spawn>) => new Promise<number | null>((r) => child.once('exit', (code) => r(code)));

describe('stop signals', () => {
  it('a second signal during the stop changes nothing: the drain runs to its end', async () => {
    const p = stopper();
    const exit = exitOf(p.child);
    await p.said('ready');
    p.child.kill('SIGINT');
    await p.said('stopping on SIGINT');
    p.child.kill('SIGTERM');
    await p.said('already stopping');
    assert.equal(await exit, 0);
    assert.ok(p.lines.includes('drained'), p.lines.join('\n'));
  });

  it('a third signal stops at once, with 128 + its number', async () => {
    const p = stopper();
    const exit = exitOf(p.child);
    await p.said('ready');
    p.child.kill('SIGTERM');
    await p.said('stopping on SIGTERM');
    p.child.kill('SIGTERM');
    await p.said('already stopping');
    p.child.kill('SIGINT');
    assert.equal(await exit, 130);
    assert.ok(!p.lines.includes('drained'), 'the drain was not waited for');
  });
});

describe('a proxy stopped while it starts', () => {
  it('ends at once when its control plane cannot be reached: nothing to drain', async () => {
    const bin = fileURLToPath(new URL('../../bin/meshgate.js', import.meta.url));
    const dir = await mkdtemp(join(tmpdir(), 'meshgate-stop-'));
    assert.ok(loadOrCreateAuthority(dir).ok);
    await writeFile(join(dir, 'token'), 'a-token\n');
    // Port 1 on loopback: nothing listens there, so the certificate request is retried for ever.
    const child = spawn(process.execPath, [bin, 'sidecar', '--control', 'https://127.0.0.1:1', '--root-cert', join(dir, ROOT_CERT_FILE), '--token', join(dir, 'token'), '--namespace', 'default', '--service-account', 'sa', '--workload', 'w', '--app-port', '9', '--inbound-port', '0', '--outbound-port', '0', '--status-port', '0', '--admin-port', '0', '--listen-host', '127.0.0.1'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    const exit = exitOf(child);
    const asked = new Promise<void>((resolve, reject) => {
      child.stderr!.on('data', (d: Buffer) => ((log += d.toString()), log.includes('workload certificate') && resolve()));
      void exit.then(() => reject(new Error(`exited before asking for a certificate:\n${log}`)));
    });
    await asked;
    child.kill('SIGTERM');
    assert.equal(await exit, 0, log);
    assert.match(log, /stopped before it was serving/);
    await rm(dir, { recursive: true, force: true });
  });
});
