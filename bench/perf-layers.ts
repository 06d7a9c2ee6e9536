// CPU per operation by layer, from `perf record -e cpu-clock -g` over processes loaded in the same
// seconds: OpenSSL, the kernel, JavaScript and V8, garbage collection, Node's C++ and libuv, libc,
// nginx's own code. This is how a ratio to nginx is taken apart: OpenSSL's share is what both
// servers must do, and what is left above it is what each server adds around it.
//
// cpu-clock counts CPU time only, not time spent waiting for a core, so the figures hold on a shared
// machine as CPU time from /proc does. Each sample goes to one layer by its stack: to OpenSSL when an
// OpenSSL function is on it below the first Node, V8 or libuv frame (so the malloc OpenSSL calls is
// OpenSSL's), to garbage collection when a collector frame is on it, otherwise by its leaf frame.
// JavaScript has names only for a Node process started with --perf-basic-prof-only-functions; without
// it its frames are [unknown], counted as JavaScript all the same.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

/** Samples per second and per CPU: an odd rate, so the sampling does not beat with timers. */
const FREQUENCY = 999;

export const LAYERS = [
  'OpenSSL',
  'kernel',
  'JavaScript (JIT)',
  'V8 builtins',
  'V8 runtime',
  'garbage collection',
  'V8 compiler threads',
  'Node and libuv C++',
  'libc',
  'nginx',
  'other',
] as const;

export type Layer = (typeof LAYERS)[number];

/** Function names OpenSSL's libssl and libcrypto use (Node links its OpenSSL in, so no library name tells). */
const OPENSSL = /^(SSL_|SSL3_|ssl_|ssl3_|tls_|tls1_|tls13_|statem_|state_machine|read_state_machine|write_state_machine|do_ssl3_write|EVP_|evp_|OSSL_|ossl_|OPENSSL_|CRYPTO_|BN_|bn_|EC_|ec_|ecp_|__ecp_|ECDSA_|ecdsa_|RSA_|rsa_|ossl_rsa|x25519|X25519|HMAC|hmac_|aes|_aesni|gcm_|ghash|sha1_|sha256_|sha512_|SHA|ASN1_|asn1_|X509|x509|i2d_|d2i_|BIO_|bio_|ERR_|OBJ_|RAND_|rand_|drbg_|WPACKET|wpacket_|PACKET_|EXT_|custom_ext|kdf_|hkdf|prov_|OPENSSL|BUF_MEM|RECORD_LAYER|SSL3_RECORD|ct_|sk_|lh_|CRYPTO)/;
const GC = /Heap::|Scavenge|MarkCompact|Sweeper|IncrementalMarking|ConcurrentMarking|GCTracer|MinorMC|ArrayBufferSweeper/;
const COMPILER = /compiler::|Turbofan|Maglev|OptimizingCompile|Compile/;
/** Frames above which a library function was called by the runtime, not by OpenSSL. */
const RUNTIME = /^(node::|v8::|Builtins_|uv_|uv__|llhttp)/;

interface Frame {
  readonly sym: string;
  readonly dso: string;
}

/** The layer one sample's stack (leaf first) belongs to; `mainThread` when the sampled thread is the process's own. */
export function layerOf(frames: readonly Frame[], mainThread: boolean): Layer {
  if (frames.some((f) => GC.test(f.sym))) return 'garbage collection';
  if (!mainThread && frames.some((f) => COMPILER.test(f.sym))) return 'V8 compiler threads';
  for (const f of frames) {
    if (RUNTIME.test(f.sym) || isJit(f)) break;
    if (/libssl|libcrypto/.test(f.dso) || OPENSSL.test(f.sym)) return 'OpenSSL';
  }
  const leaf = frames[0];
  if (!leaf) return 'other';
  if (leaf.dso.includes('kernel')) return 'kernel';
  if (isJit(leaf)) return 'JavaScript (JIT)';
  if (leaf.sym.startsWith('Builtins_')) return 'V8 builtins';
  if (leaf.sym.startsWith('v8::') || leaf.sym.includes('v8::internal')) return 'V8 runtime';
  if (/^(node::|uv_|uv__|llhttp)|non-virtual thunk to node::/.test(leaf.sym)) return 'Node and libuv C++';
  if (/\/nginx$/.test(leaf.dso)) return 'nginx';
  if (/libc\.so|libc-|ld-linux/.test(leaf.dso) || /^(malloc|free|_int_|mem|str|__memcpy|__memmove|cfree)/.test(leaf.sym)) return 'libc';
  return 'other';
}

function isJit(f: Frame): boolean {
  return f.dso.includes('perf-') || f.dso === '[unknown]' || f.dso.startsWith('//anon');
}

/** A `perf record` over `pids` (all their threads) into `file`, until stopped. */
export function perfRecord(pids: readonly number[], file: string): { stop(): Promise<void> } {
  const child: ChildProcess = spawn('perf', ['record', '-e', 'cpu-clock', '-F', String(FREQUENCY), '-g', '-p', pids.join(','), '-o', file], { stdio: 'ignore' });
  return {
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('close', () => resolve());
        child.kill('SIGINT');
      }),
  };
}

/** One process group (a proxy, with its workers) and how many operations it served while recorded. */
export interface Group {
  readonly name: string;
  readonly pids: readonly number[];
  readonly ops: number;
}

/** µs of CPU per operation, by layer, for each group, from a `perf record` file. */
export function layersPerOp(file: string, groups: readonly Group[]): Map<string, Map<Layer, number>> {
  const out = spawnSync('perf', ['script', '-F', 'pid,tid,ip,sym,dso', '-i', file], { maxBuffer: 1 << 30, encoding: 'utf8' });
  const groupOf = new Map<number, Group>();
  for (const g of groups) for (const pid of g.pids) groupOf.set(pid, g);
  const counts = new Map<Group, Map<Layer, number>>(groups.map((g) => [g, new Map()]));
  for (const block of (out.stdout ?? '').split('\n\n')) {
    const lines = block.split('\n').filter((l) => l.trim() !== '');
    const head = /(\d+)\/(\d+)/.exec(lines[0] ?? '');
    if (!head) continue;
    const pid = Number(head[1]);
    const g = groupOf.get(pid);
    if (!g) continue;
    const frames = lines.slice(1).map((l): Frame => {
      const m = /^\s*[0-9a-f]+\s+(.*?)\s+\(([^)]*)\)\s*$/.exec(l);
      return m ? { sym: m[1]!, dso: m[2]! } : { sym: l.trim(), dso: '' };
    });
    const layer = layerOf(frames, Number(head[2]) === pid);
    const c = counts.get(g)!;
    c.set(layer, (c.get(layer) ?? 0) + 1);
  }
  return new Map(groups.map((g) => [g.name, new Map([...counts.get(g)!].map(([l, n]) => [l, g.ops > 0 ? (n / FREQUENCY / g.ops) * 1e6 : NaN]))]));
}

/** The table `layersPerOp` gives, one column per group, with totals. */
export function layerTable(byGroup: Map<string, Map<Layer, number>>): string {
  const names = [...byGroup.keys()];
  const width = Math.max(14, ...names.map((n) => n.length + 2));
  const row = (label: string, cells: string[]) => label.padEnd(22) + cells.map((c) => c.padStart(width)).join('');
  const lines = [row('µs CPU per op', names)];
  for (const layer of LAYERS) {
    if (names.every((n) => !byGroup.get(n)!.get(layer))) continue;
    lines.push(row(layer, names.map((n) => (byGroup.get(n)!.get(layer) ?? 0).toFixed(1))));
  }
  lines.push(row('total', names.map((n) => [...byGroup.get(n)!.values()].reduce((a, b) => a + b, 0).toFixed(1))));
  return lines.join('\n');
}
