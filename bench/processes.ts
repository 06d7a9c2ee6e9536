// The benchmark's process bookkeeping: every child it starts and every temporary folder it makes is
// recorded here, so that stopAll() can end and remove all of them whatever went wrong. Also reads how
// much CPU a process (and its children) used, which turns "requests/s" into "requests/s per core"
// on a machine where the load generator, the proxy and the upstream share the cores, and how much
// memory a process holds (the sidecar's cost next to Istio's published figures).

import { execFileSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { BENCH_HOST } from './servers.js';

const running = new Set<Child>();
const tempDirs = new Set<string>();

/** Stops every process started through track() and removes every tempDir(). Safe to call twice. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((c) => c.stop()));
  await Promise.all([...tempDirs].map((d) => rm(d, { recursive: true, force: true })));
  tempDirs.clear();
}

/** Runs a measuring script's main, then stops what it started and exits (1 on an error, after printing it). */
export function runThenStop(main: () => Promise<void>): void {
  main().then(
    () => stopAll().then(() => process.exit(0)),
    async (err) => {
      console.error(err);
      await stopAll();
      process.exit(1);
    },
  );
}

/** A fresh folder under the OS temp dir, removed by stopAll(). */
export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export function track(proc: ChildProcess, label: string): Child {
  const c = new Child(proc, label);
  running.add(c);
  return c;
}

/** A child process with its stderr kept (the tail only) to explain a failed start. */
export class Child {
  private stderr = '';
  private exited: Promise<void>;
  private exitedWith: string | undefined;
  private stopping: Promise<void> | undefined;

  constructor(private readonly proc: ChildProcess, private readonly label: string) {
    proc.stderr?.setEncoding('utf8').on('data', (s: string) => (this.stderr = (this.stderr + s).slice(-8000)));
    this.exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        this.exitedWith = signal ?? `code ${code}`;
        running.delete(this);
        resolve();
      });
      proc.once('error', (err) => {
        this.exitedWith = err.message;
        running.delete(this);
        resolve();
      });
    });
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** The port a forked server reports over IPC once it listens. */
  reportedPort(timeoutMs = 15_000): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(this.failure(`did not report its port within ${timeoutMs} ms`)), timeoutMs);
      this.proc.once('message', (m: { port?: number }) => {
        clearTimeout(timer);
        if (typeof m?.port === 'number') resolve(m.port);
        else reject(this.failure(`sent ${JSON.stringify(m)} instead of its port`));
      });
      void this.exited.then(() => {
        clearTimeout(timer);
        reject(this.failure(`exited (${this.exitedWith}) before listening`));
      });
    });
  }

  /** Polls `check` until it passes, the process exits, or time runs out. */
  async until(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.exitedWith !== undefined) throw this.failure(`exited (${this.exitedWith}) before it was ready`);
      if (await check().catch(() => false)) return;
      if (Date.now() > deadline) throw this.failure(`not ready within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** SIGTERM, then SIGKILL if it has not exited within 5 s. */
  stop(): Promise<void> {
    return (this.stopping ??= (async () => {
      if (this.exitedWith !== undefined) return;
      this.proc.kill('SIGTERM');
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
      await this.exited;
      clearTimeout(timer);
    })());
  }

  private failure(what: string): Error {
    const tail = this.stderr.trim() ? `\n--- ${this.label} stderr (tail) ---\n${this.stderr.trim()}` : '';
    return new Error(`${this.label} ${what}${tail}`);
  }
}

/** Whether a plain-HTTP proxy on 127.0.0.1:`port` answers 200 for the bench host: its readiness. */
export function answersHttp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', headers: { host: BENCH_HOST } }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.end();
  });
}

/**
 * Ports the OS hands out, bound and released: for a child that takes ports only as numbers in its
 * arguments or configuration, and cannot be given 0 and asked afterwards. Tests never do this (they
 * bind 0 and read the port from the `… serving` line); the bench keeps it where that is impossible
 * or costs a second start phase, so a port taken in between fails a run loudly, never silently:
 * - nginx, haproxy and caddy read their listen ports from the config files the bench writes, and
 *   report no port they picked; redis-server's `--port 0` turns TCP off instead of picking one;
 * - meshgate could take 0 and log its ports, but the mesh bench writes the sidecar's inbound port
 *   into the control plane's configuration before any process starts, and a `--workers N` gateway's
 *   ports must be known before its workers share them, so those still come from here.
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<Server>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** The full path of `cmd` on PATH (plus the sbin folders, where Debian puts nginx), if any. */
/**
 * Where a measured process and what loads it run: the measured process alone on the last CPU, the
 * load generator and the upstream on the others; undefined (one CPU, no `taskset`, or BENCH_PIN=0)
 * to leave placement to the scheduler. Unpinned on two cores, a saturated gateway (one core), the
 * upstream and wrk (together most of the other) are placed anew from moment to moment, and a run in
 * which the gateway shares its core measures the sharing. Pinned on a machine that other work keeps
 * busy, the gateway cannot leave a core that work lands on: callers pin only on a quiet machine
 * (machineBusy), unless BENCH_PIN=1.
 */
export function pinnedCpus(): { readonly measured: string; readonly load: string; readonly all: string } | undefined {
  const n = cpus().length;
  if (n < 2 || process.env.BENCH_PIN === '0' || !findCommand('taskset')) return undefined;
  return { measured: String(n - 1), load: n === 2 ? '0' : `0-${n - 2}`, all: `0-${n - 1}` };
}

/** The share of all CPUs' time spent busy (not idle or waiting on I/O) over the next `ms` (/proc/stat). */
export async function machineBusy(ms = 1000): Promise<number | undefined> {
  const sample = (): [number, number] | undefined => {
    try {
      const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
      const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
      return [total, f[3]! + f[4]!];
    } catch {
      return undefined;
    }
  };
  const a = sample();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const b = sample();
  if (!a || !b || b[0] === a[0]) return undefined;
  return 1 - (b[1] - a[1]) / (b[0] - a[0]);
}

/** Binds every thread of `pid` (V8's helpers, libuv's pool) to `cpuList` (taskset's syntax). */
export function pinTo(pid: number | undefined, cpuList: string): void {
  if (pid !== undefined) execFileSync('taskset', ['--all-tasks', '--pid', '--cpu-list', cpuList, String(pid)], { stdio: 'ignore' });
}

export function findCommand(cmd: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return join(dir, cmd);
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

// USER_HZ, the unit of /proc's CPU times: 100 on every Linux architecture Node runs on.
const TICKS_PER_SECOND = 100;

/**
 * CPU seconds (user + system, all threads) used so far by `pid` and its direct children — nginx's
 * workers are children of its master. Undefined where /proc is not there (not Linux).
 */
export function cpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  const own = statOf(String(pid));
  if (!own) return undefined;
  let ticks = own.ticks;
  const children = childStats(pid);
  if (!children) return undefined;
  for (const c of children) ticks += c.ticks;
  return ticks / TICKS_PER_SECOND;
}

/** `pid` and its direct children (nginx's master and its worker): what a profiler is pointed at. */
export function withChildren(pid: number): number[] {
  return [pid, ...(childStats(pid) ?? []).map((c) => c.pid)];
}

function childStats(pid: number): { pid: number; ticks: number }[] | undefined {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return undefined;
  }
  const found: { pid: number; ticks: number }[] = [];
  for (const e of entries) {
    if (e.charCodeAt(0) < 48 || e.charCodeAt(0) > 57) continue; // only numeric entries are processes
    const s = statOf(e);
    if (s && s.ppid === pid) found.push({ pid: Number(e), ticks: s.ticks });
  }
  return found;
}

/**
 * CPU seconds used so far by `pid` alone (all its threads), to the nanosecond: the scheduler's
 * running time of each thread (/proc/PID/task/TID/schedstat). cpuSeconds' ticks are 10 ms, a few
 * percent of a short slice of load; this is what slices of a second or two are measured with.
 */
export function preciseCpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  let ns = 0;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // a thread that ended since the listing: its time is gone from the sum either way
      }
    }
  } catch {
    return undefined; // gone, or no /proc
  }
  return ns / 1e9;
}

function statOf(pid: string): { ppid: number; ticks: number; userTicks: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // gone, or no /proc
  }
  // The command name is in parentheses and may itself hold spaces or parentheses: read after the last ')'.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // Fields from 3 (state): ppid is field 4, utime 14, stime 15.
  return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), userTicks: Number(f[11]) };
}

/**
 * User-mode CPU seconds of `pid` alone (/proc/PID/stat's utime, every thread; 10 ms ticks): the time
 * in its own code, without the kernel's share (system calls, and on a loaded machine the scheduler's
 * switches charged to it), for comparing two builds or configurations of one program that make the
 * same system calls.
 */
export function userCpuSeconds(pid: number | undefined): number | undefined {
  const own = pid === undefined ? undefined : statOf(String(pid));
  return own && own.userTicks / TICKS_PER_SECOND;
}

/** Resident memory of `pid` in bytes (VmRSS), undefined where /proc is not there or it has gone. */
export function rssBytes(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(text);
  return m ? Number(m[1]) * 1024 : undefined;
}

/** Samples `read` every `intervalMs` until stop() is called, which returns the largest value seen. */
export function sampleMax(read: () => number | undefined, intervalMs = 200): { stop(): number | undefined } {
  let max: number | undefined;
  const take = () => {
    const v = read();
    if (v !== undefined && (max === undefined || v > max)) max = v;
  };
  take();
  const timer = setInterval(take, intervalMs);
  return {
    stop: () => {
      clearInterval(timer);
      take();
      return max;
    },
  };
}
