// meshgate as separate processes, started with the CLI as an operator would: spawn one, ask whether it
// is ready, wait for it to exit. Its last few kilobytes of stderr are kept for a failing test's message.

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';

const BIN = fileURLToPath(new URL('../../../bin/meshgate.js', import.meta.url));

/** `log()`: the last of stderr; `count(msg)`: how many JSON log lines so far had that `msg`. */
export type MeshgateProcess = ChildProcess & { log(): string; count(msg: string): number };

export function meshgate(args: string[]): MeshgateProcess {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] }) as MeshgateProcess;
  let err = '';
  let partial = '';
  const counts = new Map<string, number>();
  child.stderr!.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      const msg = /"msg":"((?:[^"\\]|\\.)*)"/.exec(line)?.[1];
      if (msg !== undefined) counts.set(msg, (counts.get(msg) ?? 0) + 1);
    }
  });
  child.log = () => err;
  child.count = (msg) => counts.get(msg) ?? 0;
  return child;
}

/** GET /healthz/ready answers 200 (a refused connection is not ready either). */
export async function ready(statusPort: number): Promise<boolean> {
  try {
    const r = await request(`http://127.0.0.1:${statusPort}/healthz/ready`, { reset: true });
    await r.body.dump();
    return r.statusCode === 200;
  } catch {
    return false;
  }
}

/** Resolves with the exit code (or the signal's name) once the process has ended. */
export function exited(child: ChildProcess | undefined): Promise<number | string | null> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child ? (child.exitCode ?? child.signalCode) : null);
  return new Promise((r) => child.once('exit', (code, signal) => r(code ?? signal)));
}
