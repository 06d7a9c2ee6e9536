// A real redis-server for tests, on loopback and a free port, with no persistence, started and
// stopped by PID. Where redis-server is not installed the tests that need it are skipped, except in
// CI (process.env.CI set), where a missing redis-server is a broken machine and must fail.

import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closedPort } from './upstream.js';

export interface TestRedis {
  readonly port: number;
  readonly url: string;
  /** Kills the server at once (SIGKILL), as a crash would; counters are lost. */
  kill(): Promise<void>;
  /** Starts it again on the same port, empty. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Why Redis tests cannot run here (pass it as `skip`), or false when they can. Throws under CI,
 * so that a machine without redis-server fails the run instead of quietly testing less.
 */
export function redisSkipReason(): string | false {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (!probe.error && probe.status === 0) return false;
  const why = `redis-server is not installed (${probe.error?.message ?? `exit ${probe.status}`})`;
  if (process.env.CI) throw new Error(`${why}; CI must install it (.ci/run installs redis-server)`);
  return `${why}; install redis-server to run this test`;
}

export async function startRedis(): Promise<TestRedis> {
  const port = await closedPort();
  const dir = await mkdtemp(join(tmpdir(), 'meshgate-redis-'));
  const pidFile = join(dir, 'redis.pid');
  let pid: number | undefined;

  const start = async (): Promise<void> => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'yes', '--pidfile', pidFile, '--logfile', join(dir, 'redis.log'), '--dir', dir];
    const run = spawnSync('redis-server', args, { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`redis-server did not start: ${run.stderr || run.stdout}`);
    await until(() => ping(port), 'redis-server answering PING');
    pid = Number((await readFile(pidFile, 'utf8')).trim());
  };
  const kill = async (): Promise<void> => {
    if (pid === undefined) return;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
    pid = undefined;
    await until(async () => !(await ping(port)), 'redis-server gone');
  };

  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill,
    restart: start,
    close: async () => {
      await kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** True when a Redis server answers PING on the port. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let data = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('latin1');
      if (data.includes('\r\n')) done(data.startsWith('+PONG'));
    });
  });
}

async function until(check: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
