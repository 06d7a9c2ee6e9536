// meshgate as separate processes, started with the CLI as an operator would: spawn one, ask whether it
// is ready, wait for it to exit. Its last few kilobytes of stderr are kept for a failing test's message.

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';

const BIN = fileURLToPath(new URL('../../../bin/meshgate.js', import.meta.url));

/**
 * `log()`: the last of stderr; `count(msg)`: how many JSON log lines so far had that `msg`;
 * `serving()`: the first `… serving` line (`control plane serving`, `sidecar serving`, `gateway
 * serving`), which names the ports the process listens on — so tests start processes on port 0 and
 * read the ports they got, instead of handing them a port that was free a moment ago (another test
 * may take it in between).
 */
export type MeshgateProcess = ChildProcess & { log(): string; count(msg: string): number; serving(): Promise<ServingLine> };

/** The JSON of a `… serving` log line: ports by name (`port`, `statusPort`, `status`, `inbound`, `ports`, …). */
export type ServingLine = Record<string, unknown> & { readonly msg: string };

/** `env`: variables added to this process's environment (NODE_EXTRA_CA_CERTS, say). */
export function meshgate(args: string[], env: Record<string, string> = {}): MeshgateProcess {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } }) as MeshgateProcess;
  let err = '';
  let partial = '';
  const counts = new Map<string, number>();
  let served: ServingLine | undefined;
  const waiting: Array<(line: ServingLine | Error) => void> = [];
  child.stderr!.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      const msg = /"msg":"((?:[^"\\]|\\.)*)"/.exec(line)?.[1];
      if (msg !== undefined) counts.set(msg, (counts.get(msg) ?? 0) + 1);
      if (!served && msg?.endsWith(' serving')) {
        served = JSON.parse(line) as ServingLine;
        for (const w of waiting.splice(0)) w(served);
      }
    }
  });
  child.once('exit', (code, signal) => {
    const failure = new Error(`exited (${code ?? signal}) before serving\n${err}`);
    for (const w of waiting.splice(0)) w(failure);
  });
  child.log = () => err;
  child.count = (msg) => counts.get(msg) ?? 0;
  child.serving = () =>
    new Promise((resolve, reject) => {
      if (served) return resolve(served);
      if (child.exitCode !== null || child.signalCode !== null) return reject(new Error(`exited (${child.exitCode ?? child.signalCode}) before serving\n${err}`));
      waiting.push((r) => (r instanceof Error ? reject(r) : resolve(r)));
    });
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

/**
 * Waits until every process answers ready on its status port; if one does not in `ms`, fails with
 * each process's exit status and the tail of its stderr, so that a slow or failed start says why.
 */
export async function allReady(procs: Record<string, { proc: MeshgateProcess | undefined; statusPort: number }>, ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const states = await Promise.all(Object.values(procs).map((p) => ready(p.statusPort)));
    if (states.every(Boolean)) return;
    if (Date.now() > until) {
      const report = Object.entries(procs).map(([name, { proc }], i) =>
        `--- ${name}: ${states[i] ? 'ready' : 'not ready'}, exit ${proc?.exitCode ?? proc?.signalCode ?? 'none'}\n${proc?.log() ?? ''}`);
      throw new Error(`not ready within ${ms} ms\n${report.join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Resolves with the exit code (or the signal's name) once the process has ended. */
export function exited(child: ChildProcess | undefined): Promise<number | string | null> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child ? (child.exitCode ?? child.signalCode) : null);
  return new Promise((r) => child.once('exit', (code, signal) => r(code ?? signal)));
}
