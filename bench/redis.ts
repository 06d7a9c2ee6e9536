// redis-server for the benchmark's RateLimitPolicy row with `store: redis`: the distribution's
// redis-server, run as a child process on a free loopback port with no persistence. It is not
// daemonized, so the bench's process bookkeeping stops it with everything else, interrupted or not.

import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { findCommand, freePorts, track } from './processes.js';

export interface BenchRedis {
  readonly url: string;
  readonly pid: number | undefined;
  stop(): Promise<void>;
}

/** BENCH_REDIS: the redis-server binary to run, or `none` to leave the Redis row out; default the one on PATH. */
export function findRedis(): string | undefined {
  const chosen = process.env.BENCH_REDIS;
  if (chosen === 'none') return undefined;
  return chosen || findCommand('redis-server');
}

export async function startRedis(bin: string): Promise<BenchRedis> {
  const [port] = (await freePorts(1)) as [number];
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'];
  const child = track(spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] }), 'redis-server');
  await child.until(() => accepts(port), 10_000);
  return { url: `redis://127.0.0.1:${port}`, pid: child.pid, stop: () => child.stop() };
}

/** Redis listens once it can serve: with no persistence there is nothing to load first. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
