// Pods for transparent-capture tests, in network namespaces with real iptables: one bridge in a
// namespace of its own and a veth from it into each host's namespace (`10.77.0.0/24`), a route that
// makes the virtual Service addresses (`10.77.1.0/24`) dialable, as kube-proxy does in a cluster,
// a control plane in one namespace and, in each pod's, `meshgate iptables` (the init container) then
// a sidecar with `--capture` as uid 1337; apps run as uid 1000 so that their traffic is captured.
// Needs root, `ip`, `iptables-restore` and `setpriv` (netnsSkipReason says which is missing).

import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../../bin/meshgate.js', import.meta.url));
export const NODE = process.execPath;
/** The uid apps run as: not the sidecar's 1337, so their connections are captured. */
export const APP_UID = 1000;

export function netnsSkipReason(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'needs root for network namespaces and iptables';
  for (const tool of ['ip', 'iptables-restore', 'setpriv']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} is not installed`;
    }
  }
  return undefined;
}

export type Daemon = ChildProcess & { log: () => string };

export interface RunResult {
  ok: boolean;
  out: string;
  err: string;
}

const sh = (args: string[]): string => execFileSync(args[0]!, args.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const asUser = (uid?: number): string[] => (uid === undefined ? [] : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups']);

/** Hosts on one bridge; `hosts` maps a short name to its address in 10.77.0.0/24. */
export class NetnsLab<K extends string> {
  readonly ns: Record<K | 'br', string>;
  readonly ip: Record<K, string>;
  readonly dir: string;
  readonly #procs: Daemon[] = [];

  constructor(hosts: Record<K, string>) {
    const tag = `mg${process.pid % 100000}`;
    this.ip = hosts;
    this.ns = Object.fromEntries([['br', `${tag}br`], ...Object.keys(hosts).map((k) => [k, `${tag}${k}`])]) as Record<K | 'br', string>;
    this.dir = mkdtempSync(join(tmpdir(), 'meshgate-netns-'));
    chmodSync(this.dir, 0o755);
  }

  /** The network: one bridge in a namespace of its own, a veth into each other namespace. */
  up(): void {
    const br = this.ns.br;
    sh(['ip', 'netns', 'add', br]);
    sh(['ip', '-n', br, 'link', 'add', 'br0', 'type', 'bridge']);
    sh(['ip', '-n', br, 'link', 'set', 'br0', 'up']);
    for (const k of Object.keys(this.ip) as K[]) {
      const ns = this.ns[k];
      sh(['ip', 'netns', 'add', ns]);
      sh(['ip', '-n', br, 'link', 'add', `v${k}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      sh(['ip', '-n', br, 'link', 'set', `v${k}`, 'master', 'br0', 'up']);
      sh(['ip', '-n', ns, 'addr', 'add', `${this.ip[k]}/24`, 'dev', 'eth0']);
      sh(['ip', '-n', ns, 'link', 'set', 'eth0', 'up']);
      sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
      // Service IPs are virtual, as in a cluster: a route makes them dialable, capture does the rest.
      sh(['ip', '-n', ns, 'route', 'add', '10.77.1.0/24', 'dev', 'eth0']);
    }
  }

  /** Runs `argv` in host `k`'s namespace, as `uid` when given, to completion: its stdout, or the failure. */
  run(k: K, argv: string[], uid?: number, env: Record<string, string> = {}): Promise<RunResult> {
    return new Promise((resolve) => {
      execFile('ip', ['netns', 'exec', this.ns[k], ...asUser(uid), ...argv], { env: { ...process.env, ...env }, timeout: 60_000 }, (error, out, err) => resolve({ ok: !error, out, err }));
    });
  }

  /** Starts a long-running process in host `k`'s namespace; its stderr is kept for failure messages. */
  daemon(k: K, argv: string[], uid?: number, env: Record<string, string> = {}): Daemon {
    const child = spawn('ip', ['netns', 'exec', this.ns[k], ...asUser(uid), ...argv], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] }) as Daemon;
    let log = '';
    child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-6000)));
    child.log = () => log;
    this.#procs.push(child);
    return child;
  }

  /** Resolves once `what` has written `pattern` to its stderr (its own readiness line). */
  untilLogged(what: Daemon, pattern: RegExp): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!pattern.test(what.log())) return;
        what.stderr!.off('data', check);
        what.off('exit', exited);
        resolve();
      };
      const exited = (): void => reject(new Error(`exited before ${pattern}: ${what.log()}`));
      what.stderr!.on('data', check);
      what.once('exit', exited);
      check();
    });
  }

  /** Every daemon's stderr, for a failure message. */
  logs(): string {
    return this.#procs.map((p) => p.log()).join('\n---\n');
  }

  /** Polls an HTTP readiness URL from inside host `k` until it answers 200 (a readiness signal, not a sleep). */
  async waitReady(k: K, url: string, what: Daemon): Promise<void> {
    const probe = `fetch(${JSON.stringify(url)}).then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))`;
    for (let i = 0; i < 240; i++) {
      if (what.exitCode !== null) throw new Error(`exited before ready: ${what.log()}`);
      if ((await this.run(k, [NODE, '-e', probe])).ok) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`${url} never ready: ${what.log()}`);
  }

  /**
   * The mesh: a control plane on host `k` serving `config` (file name → YAML), a token per service
   * account (`<sa>.token` in the lab's folder; `namespace/sa` for one outside `default`), its root
   * certificate readable by the sidecars.
   */
  async control(k: K, config: Record<string, string>, serviceAccounts: readonly string[]): Promise<void> {
    const dir = join(this.dir, 'config');
    mkdirSync(dir);
    for (const [name, yaml] of Object.entries(config)) writeFileSync(join(dir, name), yaml);
    const accounts = serviceAccounts.map((a) => (a.includes('/') ? a.split('/') : ['default', a]) as [string, string]);
    writeFileSync(join(this.dir, 'tokens.yaml'), accounts.map(([ns, sa]) => `- {token: tok-${sa}-0123456789, namespace: ${ns}, serviceAccount: ${sa}}\n`).join(''));
    for (const [, sa] of accounts) writeFileSync(join(this.dir, `${sa}.token`), `tok-${sa}-0123456789\n`, { mode: 0o644 });
    const cp = this.daemon(k, [NODE, BIN, 'control', '--config', dir, '--tokens', join(this.dir, 'tokens.yaml'), '--ca-dir', join(this.dir, 'ca'), '--hostname', this.ip[k], '--status-port', '15021']);
    await this.waitReady(k, 'http://127.0.0.1:15021/healthz/ready', cp);
    this.#control = this.ip[k];
    chmodSync(join(this.dir, 'ca', 'root-cert.pem'), 0o644);
    chmodSync(join(this.dir, 'ca'), 0o755);
  }

  #control = '';

  /** A gateway in pod `k` joined to the mesh as service account `sa` of `namespace` (not ready yet: see waitReady). */
  gateway(k: K, namespace: string, sa: string, extra: string[] = []): Daemon {
    return this.daemon(k, [NODE, BIN, 'gateway', '--control', `https://${this.#control}:15012`, '--token', join(this.dir, `${sa}.token`), '--root-cert', join(this.dir, 'ca', 'root-cert.pem'), '--namespace', namespace, '--access-log', 'off', ...extra]);
  }

  /** The init container's command, as root in pod `k`: the capture rules. */
  async iptables(k: K): Promise<RunResult> {
    return this.run(k, [NODE, BIN, 'iptables']);
  }

  /** A capturing sidecar in pod `k` for service account `sa`, as uid 1337 (not ready yet: see waitReady). */
  sidecar(k: K, sa: string, extra: string[] = [], env: Record<string, string> = {}): Daemon {
    return this.daemon(k, [NODE, BIN, 'sidecar', '--control', `https://${this.#control}:15012`, '--token', join(this.dir, `${sa}.token`), '--root-cert', join(this.dir, 'ca', 'root-cert.pem'), '--namespace', 'default', '--service-account', sa, '--workload', `${sa}-0`, '--labels', `app=${sa}`, '--capture', '--app-host', this.ip[k], '--access-log', 'off', ...extra], 1337, env);
  }

  down(): void {
    for (const p of this.#procs) if (p.exitCode === null) p.kill('SIGKILL');
    for (const ns of Object.values(this.ns) as string[]) {
      try {
        sh(['ip', 'netns', 'del', ns]);
      } catch {
        // already gone
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
