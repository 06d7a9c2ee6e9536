// Where a process's CPU goes, kernel included, by Linux `perf`: a recording of one process while a
// measurement runs, then its samples summed by where they fell (the kernel, OpenSSL, V8's builtins,
// node:*'s JavaScript, undici's, meshgate's, ...) and turned into µs per request. The inspector's
// profiler samples the main thread by wall clock, so a socket write that wakes its receiver on a
// loaded machine and loses the core inside the call counts there as the write's; perf counts CPU,
// every thread's, and agrees with utime + stime from /proc (docs/benchmarks.md, tenth round).
//
// JavaScript frames are named only when the process runs with `--perf-basic-prof-only-functions`
// (V8 then writes /tmp/perf-<pid>.map); without it they fall under "JIT, unnamed".

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { findCommand } from './processes.js';

/** The perf command, or undefined when it is not installed. */
export function findPerf(): string | undefined {
  return findCommand('perf');
}

/** Starts recording `pid` (all its threads) into `file`; stop() ends the recording and waits for it. */
export async function recordPerf(perf: string, pid: number, file: string, hz = 4999): Promise<{ stop(): Promise<void> }> {
  const child: ChildProcess = spawn(perf, ['record', '-F', String(hz), '-p', String(pid), '-o', file], { stdio: 'ignore' });
  // perf attaches within a few ms; give it that before the measured window starts.
  await new Promise((r) => setTimeout(r, 300));
  return {
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGINT');
      }),
  };
}

/** Where a sample fell, by the shared object and symbol perf names (first match wins). */
const CATEGORIES: readonly (readonly [string, RegExp])[] = [
  ['kernel', /\[kernel/],
  ['meshgate JavaScript', /JS:.*\/dist\/src\//],
  ['undici JavaScript', /JS:.*undici/],
  ['undici parser (WebAssembly)', /wasm/],
  ['node:* JavaScript', /JS:.*node:/],
  ['JIT, unnamed', /\[JIT\]|JS:/],
  ['V8 builtins', /Builtins_/],
  ['V8 garbage collection', /v8::internal::(Heap|Scaveng|MarkCompact|Mark|Sweep|Concurrent|MemoryReducer|MinorMC|Evacuat)/],
  ['V8 compilers (TurboFan, parser, bytecode)', /v8::internal::(compiler::|maglev::|baseline::|interpreter::|Compiler::|OptimizedCompilationJob|Parser|Scanner|PreParser)/],
  ['OpenSSL', /\b(ossl_|aes|gcm_|AES|EVP_|SSL_|ssl3_|tls13_|tls_|BIO_|CRYPTO_|OPENSSL_|RAND_|sha256|SHA256)/],
  ['libc', /libc[.-]/],
  ['node C++', /\]\s+(non-virtual thunk to )?node::/],
  ['V8 runtime', /v8::/],
  ['libuv', /\buv_|\buv__/],
];

/** µs per request by category, most first, from a recording made while `requests` were served. */
export function perfBreakdown(perf: string, file: string, requests: number, hz = 4999): [string, number][] {
  const out = spawnSync(perf, ['report', '-i', file, '--no-children', '--sort', 'dso,sym', '-g', 'none', '-n', '--stdio'], { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
  const totals = new Map<string, number>();
  let all = 0;
  for (const line of out.stdout.split('\n')) {
    // "   12.34%   567  [kernel.kallsyms]  [k] tcp_sendmsg"
    const m = /^\s*[\d.]+%\s+(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const samples = Number(m[1]);
    const where = m[2]!;
    const category = CATEGORIES.find(([, re]) => re.test(where))?.[0] ?? 'other native code';
    totals.set(category, (totals.get(category) ?? 0) + samples);
    all += samples;
  }
  const us = (samples: number): number => (samples / hz / requests) * 1e6;
  return [['all', us(all)], ...[...totals].sort((a, b) => b[1] - a[1]).map(([k, v]): [string, number] => [k, us(v)])];
}

/** Prints, for one target, the median over its rounds of each category's µs per request. */
export function printMedianBreakdown(label: string, rounds: readonly [string, number][][]): void {
  const median = (xs: number[]): number => xs.sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
  console.log(`\n${label}: µs per request by where the CPU went (perf, medians of ${rounds.length} rounds)`);
  const categories = [...new Set(rounds.flatMap((r) => r.map(([c]) => c)))];
  const rows = categories.map((c): [string, number] => [c, median(rounds.map((r) => r.find(([k]) => k === c)?.[1] ?? 0))]);
  for (const [c, us] of rows.sort((a, b) => b[1] - a[1])) console.log(`  ${c.padEnd(42)} ${us.toFixed(1).padStart(7)}`);
}
