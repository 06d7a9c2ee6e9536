// `meshgate gateway --workers N` as a real process tree for tests: started on a config folder on
// port 0 (the workers share each port the primary bound; the first 'gateway serving' line names them,
// so no test hands it a port that another test could take first), and returned once every worker
// has logged 'gateway serving' (a forked worker is not yet listening, and while only one worker
// listens its death closes the port).

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { eventually } from './gateway.js';

const BIN = fileURLToPath(new URL('../../../bin/meshgate.js', import.meta.url));

export interface WorkersGateway {
  readonly proc: ChildProcess;
  /** The listening port of Gateway port 80 (0 when `--ports` in the extra arguments maps no 80). */
  readonly port: number;
  /** Listening ports by Gateway port, as the gateway reported them. */
  readonly ports: Readonly<Record<string, number>>;
  readonly statusPort: number;
  /** The primary's metrics port when `--metrics-port any` asked the OS for one (its log line names it); else 0. */
  readonly metricsPort: number;
  /** The first worker's 'gateway serving' log line, every field. */
  readonly servingLine: Readonly<Record<string, unknown>>;
  /** How many log lines so far had this `msg`, from any of the processes. */
  count(msg: string): number;
  /** Process ids of the workers that have logged 'gateway serving'. */
  readonly serving: ReadonlySet<number>;
  /** The primary's live children: the workers. */
  workers(): number[];
  /** Resolves when every current worker is one of `count` serving workers. */
  allServing(count: number): Promise<void>;
  /** SIGKILL to the workers and the primary. */
  kill(): void;
}

export function childPids(pid: number): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' }).split('\n').map((l) => Number(l.trim())).filter((n) => n > 0);
  } catch {
    return [];
  }
}

/** `detached`: the gateway leads a process group of its own, so a test can signal the whole group. */
export async function startWorkersGateway(configDir: string, workers: number, extraArgs: readonly string[] = [], opts: { detached?: boolean } = {}): Promise<WorkersGateway> {
  const proc = spawn(
    process.execPath,
    [BIN, 'gateway', '--config', configDir, '--ports', '80=0', '--status-port', '0', '--admin-port', '0', '--listen-host', '127.0.0.1', '--access-log', 'off', '--workers', String(workers), '--drain-seconds', '0', '--metrics-port', '0', ...extraArgs],
    { stdio: ['ignore', 'ignore', 'pipe'], detached: opts.detached === true },
  );
  const serving = new Set<number>();
  let firstServing: (e: { ports?: Record<string, number>; statusPort?: number }) => void = () => undefined;
  const served = new Promise<{ ports?: Record<string, number>; statusPort?: number }>((resolve) => (firstServing = resolve));
  const counts = new Map<string, number>();
  let metricsPort = 0;
  createInterface({ input: proc.stderr! }).on('line', (line) => {
    if (!line.startsWith('{')) {
      process.stderr.write(`gateway: ${line}\n`);
      return;
    }
    const entry = JSON.parse(line) as { msg?: string; pid?: number };
    if (entry.msg !== undefined) counts.set(entry.msg, (counts.get(entry.msg) ?? 0) + 1);
    if (entry.msg?.startsWith('metrics serving') && typeof (entry as { metricsPort?: unknown }).metricsPort === 'number') metricsPort = (entry as { metricsPort: number }).metricsPort;
    if (entry.msg === 'gateway serving' && entry.pid !== undefined) {
      serving.add(entry.pid);
      firstServing((entry as { ports?: Record<string, number>; statusPort?: number }));
    }
  });
  const exitedEarly = new Promise<never>((_, reject) => proc.once('exit', (code, signal) => reject(new Error(`gateway exited (${code ?? signal}) before serving`))));
  exitedEarly.catch(() => undefined);
  const first = await Promise.race([served, exitedEarly]);
  const ports = first.ports ?? {};
  const port = ports['80'] ?? 0;
  const statusPort = first.statusPort ?? 0;
  const list = (): number[] => childPids(proc.pid!);
  const gw: WorkersGateway = {
    proc,
    port,
    ports,
    statusPort,
    servingLine: first,
    get metricsPort() {
      return metricsPort;
    },
    count: (msg) => counts.get(msg) ?? 0,
    serving,
    workers: list,
    allServing: (count) =>
      eventually(async () => {
        const now = list();
        return now.length === count && now.every((pid) => serving.has(pid));
      }, 30_000),
    kill: () => {
      for (const pid of list()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // exited since it was listed
        }
      }
      proc.kill('SIGKILL');
    },
  };
  try {
    await gw.allServing(workers);
  } catch (err) {
    // The caller gets no handle to stop it with; a process left running would hang the test run.
    gw.kill();
    throw err;
  }
  return gw;
}
