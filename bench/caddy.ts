// Caddy as a plain-HTTP reference beside meshgate: the distribution's caddy, run as a child process
// (never as a service) with a Caddyfile generated into a temporary folder, `reverse_proxy` to the same
// upstream, GOMAXPROCS=1 so that it uses one core as meshgate's single process does, no admin API,
// no automatic HTTPS and no access log.

import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { answersHttp, findCommand, freePorts, tempDir, track } from './processes.js';
import { BENCH_HOST } from './servers.js';
import type { Target } from './targets.js';

export const CADDY = 'caddy (reverse_proxy, GOMAXPROCS=1)';

/** BENCH_CADDY: the caddy binary to run, or `none` to leave caddy out; default the one on PATH. */
export function findCaddy(): string | undefined {
  const chosen = process.env.BENCH_CADDY;
  if (chosen === 'none') return undefined;
  return chosen || findCommand('caddy');
}

function caddyfile(port: number, upstreamPort: number): string {
  return `{
  admin off
  auto_https off
}
http://:${port} {
  bind 127.0.0.1
  reverse_proxy 127.0.0.1:${upstreamPort}
}
`;
}

export async function startCaddy(caddy: string, upstreamPort: number): Promise<Target> {
  const dir = await tempDir('meshgate-bench-caddy-');
  const [port] = (await freePorts(1)) as [number];
  const file = join(dir, 'Caddyfile');
  await writeFile(file, caddyfile(port, upstreamPort));
  // HOME and XDG dirs in the temporary folder: caddy writes its data and config state there.
  const env = { ...process.env, GOMAXPROCS: '1', HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir };
  const child = track(spawn(caddy, ['run', '--config', file, '--adapter', 'caddyfile'], { stdio: ['ignore', 'ignore', 'pipe'], env }), 'caddy');
  await child.until(() => answersHttp(port), 10_000);
  return { name: CADDY, url: `http://127.0.0.1:${port}/`, host: BENCH_HOST, pid: child.pid, stop: () => child.stop() };
}
