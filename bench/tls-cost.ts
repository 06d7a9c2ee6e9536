// CPU per TLS handshake and per kept-alive HTTPS request, for meshgate, nginx and the Node floor
// (tls-floor.ts: a bare node:https server answering by itself, and one proxying through an undici
// Pool), measured the way the bench's per-core figures are: the target's user + system CPU time
// (/proc/<pid>/stat, with its children for nginx) before and after a run, divided by what the run
// did. CPU per operation holds on a loaded machine, where rates do not; the targets take turns in
// rounds so that each round compares them in the same minute, and the median round is printed.
//
//   npx tsc -p . && node dist/bench/tls-cost.js
//
// TLS_COST_ROUNDS (default 3), TLS_COST_SECONDS (per run, default 5), TLS_COST_CLIENTS (s_time
// processes, default 8), TLS_COST_TARGETS (comma list of meshgate,nginx,floor,floor-proxy),
// TLS_COST_PROFILE=DIR (meshgate runs under --cpu-prof, the profile written into DIR when it stops),
// TLS_COST_WARMUP (seconds of kept-alive load each target gets first when kept-alive rows are measured, default 2; meshgate's request
// path needs some 20 s of load before V8 has compiled it), TLS_COST_WARM_HANDSHAKES (new handshakes
// each target makes first, in runs of 2 s, default 8000), TLS_COST_KINDS (comma list of
// new,kept-alive; default both), TLS_COST_PLAIN=1 (also meshgate's
// plaintext port and the bare node:http + undici Pool proxy, kept-alive, in the same rounds: what TLS
// adds to each is then read beside what each costs without it).
//
// TLS_COST_KEYS (comma list of rsa,ec; default both: the certificates whose new handshakes are
// measured), TLS_COST_OTHER_BIN (another build's bin/meshgate.js, measured as a second meshgate:
// an A/B of two builds), TLS_COST_TOGETHER=1 (in each round every target is loaded at the same
// time, each by its own clients, and each process's CPU is read over that same interval: on a
// shared machine whose load comes and goes, a pair measured together sees the same machine, where
// targets taking turns see different minutes; the kept-alive rows then run wrk on every target at once).
//
// TLS_COST_PERF=DIR (perf installed): every measured run is also recorded by `perf record -e cpu-clock`
// into DIR, and the end prints each kind's CPU per operation by layer (perf-layers.ts: OpenSSL,
// kernel, JavaScript, V8, garbage collection, Node's C++, nginx's own), summed over the rounds. Run
// this script itself with --perf-basic-prof-only-functions so that the floors, forked from it, name
// their JavaScript as meshgate then does (`perf script` on the files shows the functions).

import { findOpenssl, handshakePreflight, runHandshakes } from './handshakes.js';
import { runLoad } from './load.js';
import { findNginx, startNginx } from './nginx.js';
import { cpuSeconds, stopAll, tempDir, withChildren } from './processes.js';
import { layerTable, layersPerOp, perfRecord, type Layer } from './perf-layers.js';
import { join } from 'node:path';
import { startBareProxy, startMeshgate, startTlsFloor, startUpstream, type Target, type TlsTarget } from './targets.js';
import { KEY_LABEL, writeBenchCerts } from './tls-certs.js';
import type { KeyType } from '../src/core/tls/issue-certificate.js';

interface Cost {
  /** CPU milliseconds per operation. */
  readonly ms: number;
  readonly ops: number;
}

async function measured(pid: number | undefined, work: () => Promise<number>): Promise<Cost> {
  const before = cpuSeconds(pid);
  const ops = await work();
  const after = cpuSeconds(pid);
  if (before === undefined || after === undefined || ops === 0) return { ms: NaN, ops };
  return { ms: ((after - before) * 1000) / ops, ops };
}

/** The second meshgate of an A/B (TLS_COST_OTHER_BIN). */
const OTHER_BUILD = 'meshgate (other build)';

function median(xs: readonly number[]): number {
  const s = [...xs].filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const rounds = Number(process.env.TLS_COST_ROUNDS ?? 3);
  const seconds = Number(process.env.TLS_COST_SECONDS ?? 5);
  const clients = Number(process.env.TLS_COST_CLIENTS ?? 8);
  const wanted = new Set((process.env.TLS_COST_TARGETS ?? 'meshgate,nginx,floor,floor-proxy').split(','));
  const kinds = new Set((process.env.TLS_COST_KINDS ?? 'new,kept-alive').split(','));
  const plainRows = process.env.TLS_COST_PLAIN === '1';
  const warmSeconds = Number(process.env.TLS_COST_WARMUP ?? 2);
  const warmHandshakes = Number(process.env.TLS_COST_WARM_HANDSHAKES ?? 8000);
  const openssl = findOpenssl();
  if (!openssl) throw new Error('openssl is needed (apt-get install openssl)');
  const certs = await writeBenchCerts(await tempDir('meshgate-tls-cost-'));
  const upstream = await startUpstream();
  const targets: (readonly TlsTarget[])[] = [];
  // Plaintext kept-alive rows (TLS_COST_PLAIN): meshgate's HTTP port, the bare proxy.
  const plain: Target[] = [];
  const keys = new Set((process.env.TLS_COST_KEYS ?? 'rsa,ec').split(',')) as Set<KeyType>;
  if (wanted.has('meshgate')) {
    const profile = process.env.TLS_COST_PROFILE;
    // Under TLS_COST_PERF meshgate names its JavaScript for perf, as the floors do when this script runs with the flag (they inherit it).
    const nodeArgs = [...(profile ? ['--cpu-prof', '--cpu-prof-dir', profile] : []), ...(process.env.TLS_COST_PERF ? ['--perf-basic-prof-only-functions'] : [])];
    const gw = await startMeshgate(upstream.port, { certs, nodeArgs });
    targets.push(gw.https);
    if (plainRows) plain.push({ ...gw.http, name: 'meshgate (plaintext)' });
  }
  const otherBin = process.env.TLS_COST_OTHER_BIN;
  if (otherBin) {
    const gw = await startMeshgate(upstream.port, { certs, bin: otherBin });
    targets.push(gw.https.map((t) => ({ ...t, name: OTHER_BUILD })));
    if (plainRows) plain.push({ ...gw.http, name: `${OTHER_BUILD} (plaintext)` });
  }
  if (plainRows) plain.push(await startBareProxy(upstream.port));
  const nginx = wanted.has('nginx') ? findNginx() : undefined;
  if (nginx) targets.push((await startNginx(nginx, upstream.port, certs)).https);
  if (wanted.has('floor')) targets.push(await startTlsFloor(upstream.port, certs, 'answer'));
  if (wanted.has('floor-proxy')) targets.push(await startTlsFloor(upstream.port, certs, 'proxy'));

  const results = new Map<string, number[]>();
  const add = (key: string, c: Cost) => (results.get(key) ?? results.set(key, []).get(key)!).push(c.ms);
  for (const group of targets) for (const t of group) console.log(`${t.name} ${KEY_LABEL[t.keyType]}: ${(await handshakePreflight(t)).negotiated}`);
  // A warm-up for each: the JIT compiles the handshake and request paths before anything counts.
  for (const group of targets) {
    // Handshakes by count, as the bench warms its handshake rows (run.ts, WARM_HANDSHAKES).
    if (kinds.has('new')) {
      for (const t of group.filter((g) => keys.has(g.keyType))) {
        const { answerBytes } = await handshakePreflight(t);
        // Up to 60 runs: on a loaded machine ten runs of 2 s left a gateway at a few thousand handshakes,
        // still compiling (its V8 compiler threads a sixth of its CPU per handshake), beside a warm floor.
        let n = 0;
        for (let i = 0; n < warmHandshakes && i < 60; i++) n += (await runHandshakes(openssl, t, { clients, seconds: 2 }, answerBytes)).handshakes;
        console.log(`${t.name} ${KEY_LABEL[t.keyType]}: warmed by ${n} handshakes`);
      }
    }
    // Only where kept-alive rows are measured: load of the other kind after the handshakes' warm-up
    // sends a gateway (one process for both) back to compiling before its handshakes are measured.
    const rsa = group.find((t) => t.keyType === 'rsa')!;
    if (kinds.has('kept-alive')) await runLoad('wrk', { url: rsa.url, host: rsa.host, connections: 50, seconds: warmSeconds });
  }
  for (const t of plain) await runLoad('wrk', { url: t.url, host: t.host, connections: 50, seconds: warmSeconds });
  const together = process.env.TLS_COST_TOGETHER === '1';
  const handshakes = async (t: TlsTarget): Promise<number> => (await runHandshakes(openssl, t, { clients, seconds }, (await handshakePreflight(t)).answerBytes)).handshakes;
  const requests = async (t: Target): Promise<number> => (await runLoad('wrk', { url: t.url, host: t.host, connections: 50, seconds })).requests;
  // One batch: the targets one after the other, or all at once (TLS_COST_TOGETHER).
  const perfDir = process.env.TLS_COST_PERF;
  // With TLS_COST_PERF: per batch label and target, µs of CPU by layer summed over rounds, and the ops.
  const layers = new Map<string, Map<string, { ops: number; us: Map<Layer, number> }>>();
  let recordings = 0;
  const profiled = async <T extends Target>(label: string, ts: readonly T[], run: () => Promise<Map<T, number>>): Promise<void> => {
    if (!perfDir) return void (await run());
    const file = join(perfDir, `tls-cost-${++recordings}.data`);
    const pids = new Map(ts.map((t) => [t, t.pid === undefined ? [] : withChildren(t.pid)]));
    const perf = perfRecord([...pids.values()].flat(), file);
    const ops = await run();
    await perf.stop();
    const byName = layers.get(label) ?? layers.set(label, new Map()).get(label)!;
    for (const [name, perOp] of layersPerOp(file, ts.map((t) => ({ name: t.name, pids: pids.get(t)!, ops: ops.get(t) ?? 0 })))) {
      const n = ops.get(ts.find((t) => t.name === name)!) ?? 0;
      const acc = byName.get(name) ?? byName.set(name, { ops: 0, us: new Map() }).get(name)!;
      acc.ops += n;
      for (const [layer, us] of perOp) acc.us.set(layer, (acc.us.get(layer) ?? 0) + us * n);
    }
  };
  const batch = async <T extends Target>(round: number, ts: readonly T[], key: (t: T) => string, label: string, unit: 'ms' | 'µs', work: (t: T) => Promise<number>): Promise<void> => {
    const ops = new Map<T, number>();
    const one = async (t: T): Promise<void> => {
      const c = await measured(t.pid, () => work(t));
      add(key(t), c);
      ops.set(t, c.ops);
      console.log(`round ${round}: ${t.name} ${label} ${(unit === 'ms' ? c.ms : c.ms * 1000).toFixed(unit === 'ms' ? 3 : 1)} ${unit} CPU (${c.ops})`);
    };
    if (together) await profiled(label, ts, async () => (await Promise.all(ts.map(one)), ops));
    else for (const t of ts) await profiled(label, [t], async () => (await one(t), ops));
  };
  const rsaOf = (group: readonly TlsTarget[]) => group.find((t) => t.keyType === 'rsa')!;
  for (let round = 1; round <= rounds; round++) {
    // By certificate, then by kind: a process serving both certificates is never measured twice at once.
    for (const keyType of kinds.has('new') ? [...keys] : []) {
      const ts = targets.map((g) => g.find((t) => t.keyType === keyType)).filter((t): t is TlsTarget => t !== undefined);
      await batch(round, ts, (t) => `${t.name}|${t.keyType}|new`, `${KEY_LABEL[keyType]} new handshake`, 'ms', handshakes);
    }
    if (kinds.has('kept-alive')) await batch(round, targets.map(rsaOf), (t) => `${t.name}|rsa|kept-alive`, 'kept-alive request', 'µs', requests);
    if (plain.length > 0) await batch(round, plain, (t) => `${t.name}|plain|kept-alive`, 'kept-alive request', 'µs', requests);
  }
  console.log('\nmedian CPU per operation');
  const nginxOf = (k: string) => median(results.get(`nginx|${k}`) ?? []);
  for (const [key, xs] of results) {
    const [name, keyType, kind] = key.split('|') as [string, KeyType | 'plain', string];
    const m = median(xs);
    if (keyType === 'plain') {
      console.log(`${name.padEnd(36)} ${'plaintext'.padEnd(12)} ${kind.padEnd(10)} ${(m * 1000).toFixed(1)} µs per request`);
      continue;
    }
    const vsNginx = name !== 'nginx' && nginx ? ` → per core ${(nginxOf(`${keyType}|${kind}`) / m).toFixed(2)}× nginx` : '';
    const shown = kind === 'kept-alive' ? `${(m * 1000).toFixed(1)} µs per request` : `${m.toFixed(3)} ms per handshake`;
    console.log(`${name.padEnd(36)} ${KEY_LABEL[keyType].padEnd(12)} ${kind.padEnd(10)} ${shown}${vsNginx}`);
  }
  // Rounds pair their targets (the same minute, or with TLS_COST_TOGETHER the same seconds): the
  // median of the per-round ratios is steadier than the ratio of the medians.
  console.log('\nmedian of per-round ratios (CPU per operation)');
  for (const [key, xs] of results) {
    const [name, ...rest] = key.split('|');
    for (const ref of ['node:https + undici Pool', 'nginx', OTHER_BUILD]) {
      const ys = results.get([ref, ...rest].join('|'));
      if (ref === name || name === 'node:https + undici Pool' || name === 'nginx' || !ys) continue;
      const ratios = xs.map((x, i) => x / ys[i]!);
      console.log(`${`${name} / ${ref}`.padEnd(60)} ${rest.join(' ').padEnd(16)} ${median(ratios).toFixed(2)}× (rounds ${ratios.map((r) => r.toFixed(2)).join(', ')})`);
    }
  }
  for (const [label, byName] of layers) {
    console.log(`\n${label}: CPU per operation by layer (perf, all rounds)`);
    console.log(layerTable(new Map([...byName].map(([name, a]) => [name, new Map([...a.us].map(([l, us]) => [l, a.ops > 0 ? us / a.ops : NaN]))]))));
  }
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
