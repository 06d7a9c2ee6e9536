// The load generators: wrk when it is installed (it costs the least CPU, which matters when the load
// generator, proxy and upstream share two cores), else autocannon from npm. Both report the same
// figures, and every non-2xx answer or socket error counts as an error. Both speak HTTPS over
// kept-alive connections and neither verifies the certificate (the bench's own is self-signed).

import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findCommand, tempDir } from './processes.js';

export type LoadTool = 'wrk' | 'autocannon';

export interface LoadOptions {
  readonly url: string;
  readonly host: string;
  /** Hosts the requests go to in turn instead of `host` alone (the scale bench's spread of virtual hosts). */
  readonly hosts?: readonly string[];
  readonly connections: number;
  readonly seconds: number;
  /** wrk only: the CPUs it may run on (`taskset -c` list), so that it keeps off the measured process's core. */
  readonly cpus?: string;
}

export interface LoadResult {
  /** `paced`: the bench's own fixed-rate client (paced-load.ts). */
  readonly tool: LoadTool | 'paced';
  readonly requests: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  /** Non-2xx answers (wrk: 4xx/5xx only), connection errors and timeouts. */
  readonly errors: number;
  readonly errorDetail: string;
}

const runningWrk = new Set<import('node:child_process').ChildProcess>();

/** Ends a wrk still running (an interrupted bench); autocannon runs in-process and ends with it. */
export function stopLoad(): void {
  for (const p of runningWrk) p.kill('SIGTERM');
}

export function pickTool(): LoadTool {
  if (process.env.BENCH_TOOL === 'autocannon' || process.env.BENCH_TOOL === 'wrk') return process.env.BENCH_TOOL;
  return findCommand('wrk') ? 'wrk' : 'autocannon';
}

export function runLoad(tool: LoadTool, opts: LoadOptions): Promise<LoadResult> {
  return tool === 'wrk' ? runWrk(opts) : runAutocannon(opts);
}

/**
 * A wrk script sending each request to the next of `hosts`: the requests are formatted once, at
 * start, so that wrk's Lua costs a table index per request.
 */
function hostsScript(hosts: readonly string[]): Promise<string> {
  const key = hosts.join(' ');
  let file = scripts.get(key);
  if (!file) scripts.set(key, (file = writeHostsScript(hosts)));
  return file;
}

/** Scripts already written, by their hosts: one file for all the runs of a row. */
const scripts = new Map<string, Promise<string>>();

async function writeHostsScript(hosts: readonly string[]): Promise<string> {
  const file = join(await tempDir('meshgate-bench-wrk-'), 'hosts.lua');
  await writeFile(file, `local hosts = {${hosts.map((h) => JSON.stringify(h)).join(', ')}}
local reqs = {}
local i = 0
init = function(args) for _, h in ipairs(hosts) do table.insert(reqs, wrk.format(nil, nil, { Host = h })) end end
request = function() i = i % #reqs + 1; return reqs[i] end
`);
  return file;
}

async function runWrk(opts: LoadOptions): Promise<LoadResult> {
  const target = opts.hosts ? ['-s', await hostsScript(opts.hosts)] : ['-H', `Host: ${opts.host}`];
  const args = ['-t1', `-c${opts.connections}`, `-d${opts.seconds}s`, '--latency', ...target, opts.url];
  const out = await new Promise<string>((resolve, reject) => {
    const p = opts.cpus ? spawn('taskset', ['-c', opts.cpus, 'wrk', ...args], { stdio: ['ignore', 'pipe', 'pipe'] }) : spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    runningWrk.add(p);
    p.once('exit', () => runningWrk.delete(p));
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    p.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    p.once('error', reject);
    p.once('exit', (code, signal) => (code === 0 ? resolve(stdout) : reject(new Error(`wrk exited (${signal ?? code}): ${stderr || stdout}`))));
  });
  return parseWrk(out);
}

/** Reads wrk's text report (with --latency). */
export function parseWrk(out: string): LoadResult {
  const num = (re: RegExp): number | undefined => {
    const m = re.exec(out);
    return m ? Number(m[1]) : undefined;
  };
  const requests = num(/^\s*(\d+) requests in /m);
  const rps = num(/^Requests\/sec:\s*([\d.]+)/m);
  const p50 = percentile(out, '50');
  const p90 = percentile(out, '90');
  const p99 = percentile(out, '99');
  if (requests === undefined || rps === undefined || p50 === undefined || p90 === undefined || p99 === undefined) {
    throw new Error(`cannot read wrk's report:\n${out}`);
  }
  const non2xx = num(/Non-2xx or 3xx responses:\s*(\d+)/) ?? 0;
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const [connect, read, write, timeout] = sock ? sock.slice(1).map(Number) : [0, 0, 0, 0];
  const errors = non2xx + connect! + read! + write! + timeout!;
  const errorDetail = errors === 0 ? '' : `non-2xx/3xx ${non2xx}, connect ${connect}, read ${read}, write ${write}, timeout ${timeout}`;
  return { tool: 'wrk', requests, rps, p50Ms: p50, p90Ms: p90, p99Ms: p99, errors, errorDetail };
}

function percentile(out: string, p: string): number | undefined {
  const m = new RegExp(`^\\s*${p}(?:\\.0+)?%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(out);
  if (!m) return undefined;
  const scale = { us: 0.001, ms: 1, s: 1000, m: 60_000 }[m[2] as 'us' | 'ms' | 's' | 'm'];
  return Number(m[1]) * scale;
}

/** The part of autocannon's result this bench reads. */
interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  resets?: number;
  requests: { total: number; average: number };
  latency: { p50: number; p90: number; p99: number };
  statusCodeStats?: Record<string, { count: number }>;
}
type Autocannon = (opts: Record<string, unknown>) => Promise<AutocannonResult>;

async function runAutocannon(opts: LoadOptions): Promise<LoadResult> {
  // autocannon ships no type declarations; its shape is declared above.
  const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
  const r = await autocannon({
    url: opts.url,
    connections: opts.connections,
    duration: opts.seconds,
    headers: { host: opts.host },
    // autocannon sends each connection's requests in turn through this list.
    ...(opts.hosts ? { requests: opts.hosts.map((host) => ({ headers: { host } })) } : {}),
  });
  const total = r.requests.total;
  const resets = r.resets ?? 0;
  const errors = r.non2xx + r.errors + r.timeouts + resets;
  // A server that never answered HTTP/1.1 shows as 0 requests and 0 errors; that is a failure too.
  const silent = total === 0 ? 1 : 0;
  const codes = Object.entries(r.statusCodeStats ?? {}).map(([code, s]) => `${code}×${s.count}`).join(' ');
  const errorDetail = errors + silent === 0 ? '' : `non-2xx ${r.non2xx}, errors ${r.errors}, timeouts ${r.timeouts}, resets ${resets}${total === 0 ? ', no request completed' : ''}${codes ? ` (status ${codes})` : ''}`;
  return {
    tool: 'autocannon',
    requests: total,
    rps: r.duration > 0 ? total / r.duration : r.requests.average,
    p50Ms: r.latency.p50,
    p90Ms: r.latency.p90,
    p99Ms: r.latency.p99,
    errors: errors + silent,
    errorDetail,
  };
}
