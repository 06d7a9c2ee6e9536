// HAProxy as a plain-HTTP reference beside meshgate: the distribution's haproxy, run as a child
// process (never as a service) in the foreground with a configuration generated into a temporary
// folder, one thread (`nbthread 1`) so that it uses one core as meshgate's single process does,
// kept-alive connections to the same upstream (`http-reuse always`), no logging.

import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { answersHttp, findCommand, freePorts, tempDir, track } from './processes.js';
import { BENCH_HOST } from './servers.js';
import type { Target } from './targets.js';

export const HAPROXY = 'haproxy (nbthread 1)';

/** BENCH_HAPROXY: the haproxy binary to run, or `none` to leave it out; default the one on PATH. */
export function findHaproxy(): string | undefined {
  const chosen = process.env.BENCH_HAPROXY;
  if (chosen === 'none') return undefined;
  return chosen || findCommand('haproxy');
}

function haproxyConfig(port: number, upstreamPort: number): string {
  return `global
  nbthread 1
  maxconn 4096

defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always

frontend bench
  bind 127.0.0.1:${port}
  default_backend upstream

backend upstream
  server up 127.0.0.1:${upstreamPort}
`;
}

export async function startHaproxy(haproxy: string, upstreamPort: number): Promise<Target> {
  const dir = await tempDir('meshgate-bench-haproxy-');
  const [port] = (await freePorts(1)) as [number];
  const file = join(dir, 'haproxy.cfg');
  await writeFile(file, haproxyConfig(port, upstreamPort));
  // -db: stay in the foreground, so the child is haproxy itself and its CPU is what is measured.
  const child = track(spawn(haproxy, ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] }), 'haproxy');
  await child.until(() => answersHttp(port), 10_000);
  return { name: HAPROXY, url: `http://127.0.0.1:${port}/`, host: BENCH_HOST, pid: child.pid, stop: () => child.stop() };
}
