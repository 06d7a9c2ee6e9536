// Starting and stopping what the benchmark measures: the upstream, meshgate in front of it, the
// @fastify/http-proxy peer in front of it, and the upstream alone. Each runs in its own process on
// 127.0.0.1 so that the load generator, the proxy and the upstream compete for the CPU as they would
// in production, and every process started here is stopped by stopAll(), whatever went wrong.

import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { UPSTREAM_BODY } from './servers.js';

/** Where a load generator sends requests, and the Host header it sends. */
export interface Target {
  readonly name: string;
  readonly url: string;
  readonly host: string;
  stop(): Promise<void>;
}

export const BENCH_HOST = 'bench.example.com';

// dist/bench/ → the package root.
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SERVERS = fileURLToPath(new URL('./servers.js', import.meta.url));
const MESHGATE_BIN = join(ROOT, 'bin', 'meshgate.js');

const running = new Set<Child>();
const tempDirs = new Set<string>();

/** Stops every process this module started and removes its temporary folders. Safe to call twice. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((c) => c.stop()));
  await Promise.all([...tempDirs].map((d) => rm(d, { recursive: true, force: true })));
  tempDirs.clear();
}

export async function startUpstream(): Promise<Target & { readonly port: number }> {
  const child = track(fork(SERVERS, ['upstream'], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] }), 'upstream');
  const port = await child.reportedPort();
  return { name: 'upstream (direct)', url: `http://127.0.0.1:${port}/`, host: BENCH_HOST, port, stop: () => child.stop() };
}

export async function startFastifyProxy(upstreamPort: number): Promise<Target> {
  const child = track(fork(SERVERS, ['fastify-proxy', `http://127.0.0.1:${upstreamPort}`], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] }), '@fastify/http-proxy');
  const port = await child.reportedPort();
  return { name: '@fastify/http-proxy', url: `http://127.0.0.1:${port}/`, host: BENCH_HOST, stop: () => child.stop() };
}

/**
 * meshgate exactly as a user runs it: the CLI on a config folder. The routes before the matching one
 * make the lookup do real work, as a real VirtualService would.
 */
export async function startMeshgate(upstreamPort: number): Promise<Target> {
  const dir = await mkdtemp(join(tmpdir(), 'meshgate-bench-'));
  tempDirs.add(dir);
  await writeFile(join(dir, 'bench.yaml'), meshgateConfig(upstreamPort));
  const [port, statusPort, adminPort] = await freePorts(3);
  const args = [
    MESHGATE_BIN, 'gateway',
    '--config', dir,
    '--ports', `80=${port}`,
    '--status-port', String(statusPort),
    '--admin-port', String(adminPort),
    '--listen-host', '127.0.0.1',
    '--access-log', 'off',
  ];
  const child = track(spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] }), 'meshgate');
  await child.until(async () => (await get(`http://127.0.0.1:${statusPort}/healthz/ready`)).status === 200, 20_000);
  return { name: 'meshgate', url: `http://127.0.0.1:${port}/`, host: BENCH_HOST, stop: () => child.stop() };
}

/** One request before the load, so that a misrouted 404 is never measured as throughput. */
export async function preflight(t: Target): Promise<void> {
  const r = await get(t.url, t.host);
  if (r.status !== 200 || r.body !== UPSTREAM_BODY) {
    throw new Error(`${t.name}: expected 200 with the upstream's body, got ${r.status}: ${r.body.slice(0, 200)}`);
  }
}

export function meshgateConfig(upstreamPort: number): string {
  return `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bench-gateway, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [${BENCH_HOST}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bench, namespace: default}
spec:
  hosts: [${BENCH_HOST}]
  gateways: [bench-gateway]
  http:
  - name: admin
    match: [{uri: {prefix: /admin}}]
    route: [{destination: {host: bench-upstream}}]
  - name: canary
    match: [{headers: {x-canary: {exact: "true"}}}]
    route: [{destination: {host: bench-upstream}}]
  - name: static
    match: [{uri: {regex: "/static/.+[.](css|js)"}}]
    route: [{destination: {host: bench-upstream}}]
  - name: orders-post
    match: [{method: {exact: POST}, uri: {prefix: /orders}}]
    route: [{destination: {host: bench-upstream}}]
  - name: default
    route: [{destination: {host: bench-upstream}}]
---
apiVersion: v1
kind: Service
metadata: {name: bench-upstream, namespace: default}
spec:
  selector: {app: bench-upstream}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: bench-upstream-1
  namespace: default
  labels: {kubernetes.io/service-name: bench-upstream}
addressType: IPv4
ports: [{name: http, port: ${upstreamPort}}]
endpoints:
- addresses: [127.0.0.1]
  conditions: {ready: true}
`;
}

/** A child process with its stderr kept (the tail only) to explain a failed start. */
class Child {
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

function track(proc: ChildProcess, label: string): Child {
  const c = new Child(proc, label);
  running.add(c);
  return c;
}

async function get(url: string, host?: string): Promise<{ status: number; body: string }> {
  // reset: no keep-alive connection left behind to hold a target (or this process) open.
  const r = await request(url, { headers: host ? { host } : {}, headersTimeout: 5000, bodyTimeout: 5000, reset: true });
  return { status: r.statusCode, body: await r.body.text() };
}

/** Ports the OS hands out, bound and released: for a child that takes ports only as arguments. */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<import('node:net').Server>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}
