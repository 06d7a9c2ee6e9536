// Starting and stopping what the benchmark measures: the upstream, meshgate in front of it (plain
// HTTP and, when given certificates, HTTPS; one worker unless told otherwise; optionally under a
// RateLimitPolicy), the @fastify/http-proxy peer in front of it, and the
// upstream alone (the mesh, with a sidecar in between, is mesh.ts). Each runs in its own process on
// 127.0.0.1 so that the load generator, the proxy and the upstream compete for the CPU as they would
// in production; processes.ts stops them all.

import { fork, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import type { KeyType } from '../src/core/tls/issue-certificate.js';
import { freePorts, tempDir, track } from './processes.js';
import { BENCH_HOST, UPSTREAM_BODY } from './servers.js';
import { CREDENTIAL, KEY_TYPES, type BenchCerts } from './tls-certs.js';
import { GATEWAY_NODE_OPTIONS } from '../src/gateway/node-options.js';

export { stopAll } from './processes.js';
export { BENCH_HOST } from './servers.js';

/** Where a load generator sends requests, and the Host header it sends. */
export interface Target {
  readonly name: string;
  readonly url: string;
  readonly host: string;
  /** Hosts to send the requests to in turn instead of `host` alone (LoadOptions.hosts). */
  readonly hosts?: readonly string[];
  /** The process whose CPU the target costs (the proxy; the upstream when measured alone). */
  readonly pid?: number;
  stop(): Promise<void>;
}

/** An HTTPS target, serving the bench certificate of `keyType` on 127.0.0.1:`port`. */
export interface TlsTarget extends Target {
  readonly port: number;
  readonly keyType: KeyType;
}

// dist/bench/ → the package root.
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SERVERS = fileURLToPath(new URL('./servers.js', import.meta.url));
const TLS_FLOOR_SERVER = fileURLToPath(new URL('./tls-floor.js', import.meta.url));
const MESHGATE_BIN = join(ROOT, 'bin', 'meshgate.js');

/** The Gateway port of meshgate's HTTPS server for each certificate (one server per certificate). */
const TLS_GATEWAY_PORT: Record<KeyType, number> = { rsa: 443, ec: 8443 };

export async function startUpstream(): Promise<Target & { readonly port: number }> {
  const child = track(fork(SERVERS, ['upstream'], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] }), 'upstream');
  const port = await child.reportedPort();
  return { name: 'upstream (direct)', url: `http://127.0.0.1:${port}/`, host: BENCH_HOST, port, pid: child.pid, stop: () => child.stop() };
}

/** The OTLP span sink of the observability rows (servers.ts), in its own process; `batches()`: how many it has taken in. */
export async function startSpanSink(): Promise<{ readonly port: number; batches(): number; close(): Promise<void> }> {
  const proc = fork(SERVERS, ['span-sink'], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  const child = track(proc, 'span sink');
  let batches = 0;
  proc.on('message', (m: { batches?: number }) => {
    if (typeof m?.batches === 'number') batches = m.batches;
  });
  const port = await child.reportedPort();
  return { port, batches: () => batches, close: () => child.stop() };
}

/** `nodeArgs` (here and for the bare proxy): Node options for the child, e.g. tail.ts's probe. */
export async function startFastifyProxy(upstreamPort: number, nodeArgs: readonly string[] = []): Promise<Target> {
  const child = track(fork(SERVERS, ['fastify-proxy', `http://127.0.0.1:${upstreamPort}`], { execArgv: [...nodeArgs], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] }), '@fastify/http-proxy');
  const port = await child.reportedPort();
  return { name: '@fastify/http-proxy', url: `http://127.0.0.1:${port}/`, host: BENCH_HOST, pid: child.pid, stop: () => child.stop() };
}

export const BARE_PROXY = 'node:http + undici Pool (no routing)';

/** The Node limit for a proxy: node:http in front of one undici Pool, nothing else. */
export async function startBareProxy(upstreamPort: number, nodeArgs: readonly string[] = []): Promise<Target> {
  const child = track(fork(SERVERS, ['bare-proxy', `http://127.0.0.1:${upstreamPort}`], { execArgv: [...nodeArgs], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] }), BARE_PROXY);
  const port = await child.reportedPort();
  return { name: BARE_PROXY, url: `http://127.0.0.1:${port}/`, host: BENCH_HOST, pid: child.pid, stop: () => child.stop() };
}

export const TLS_FLOOR = 'node:https + undici Pool';

/**
 * The Node floor for TLS (tls-floor.ts), one server per bench certificate: `proxy`, a bare node:https
 * server in front of one undici Pool (the bare proxy over TLS, the row meshgate's HTTPS compares
 * with); `answer`, a bare node:https server answering by itself (the least Node does per handshake).
 */
export async function startTlsFloor(upstreamPort: number, certs: BenchCerts, mode: 'proxy' | 'answer' = 'proxy'): Promise<TlsTarget[]> {
  const name = mode === 'proxy' ? TLS_FLOOR : 'node:https answering';
  return Promise.all(KEY_TYPES.map(async (keyType): Promise<TlsTarget> => {
    const c = certs.byKey[keyType];
    const child = track(fork(TLS_FLOOR_SERVER, [mode, c.certFile, c.keyFile, `http://127.0.0.1:${upstreamPort}`], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] }), name);
    const port = await child.reportedPort();
    return { name, url: `https://127.0.0.1:${port}/`, host: BENCH_HOST, port, keyType, pid: child.pid, stop: () => child.stop() };
  }));
}

export interface MeshgateTargets {
  readonly http: Target;
  /** One per certificate in `certs`; empty without certificates. */
  readonly https: readonly TlsTarget[];
  readonly adminPort: number;
  /** Its /stats/prometheus port (0: metrics off). */
  readonly metricsPort: number;
  stop(): Promise<void>;
}

export interface MeshgateOptions {
  /** HTTPS servers with these certificates beside the HTTP one. */
  readonly certs?: BenchCerts;
  /** `--workers` (default 1: the single-process figures compare with single-process peers). */
  readonly workers?: number;
  /** A RateLimitPolicy on the route the load takes, with this store; `redis` needs `redisUrl`. */
  readonly rateLimit?: RateLimitStore;
  readonly redisUrl?: string;
  /**
   * Istio metrics on a metrics port and tracing at 1 % to an OTLP/HTTP sink on loopback (`on`), or
   * both off (`off`: no metrics port, tracing disabled in the mesh config), or one part of `on`
   * (ObservabilityMode). Absent: no metrics port.
   */
  readonly observability?: { readonly mode: ObservabilityMode; readonly otlpPort: number };
  /** Node options before the CLI's path (e.g. `--cpu-prof`, which NODE_OPTIONS does not carry). */
  readonly nodeArgs?: readonly string[];
  /** Another build's bin/meshgate.js (an A/B of two builds in one run); this tree's by default. */
  readonly bin?: string;
  /**
   * Serve this folder (its Gateway's port 80 on the HTTP target) instead of the bench's own routes,
   * and wait up to `readyMs` (default 20 s) for it to be ready: the scale bench's generated configurations.
   */
  readonly config?: { readonly dir: string; readonly readyMs: number };
}

/**
 * What a gateway of the observability bench observes: `on` (metrics + tracing 1 %), `off` (neither),
 * or a part of `on` alone: `metrics`, `tracing` (1 %), `sdk` (tracing to the same provider with the
 * SDK loaded but sampling 0.0001 %, so that almost no span is made: what loading it costs); `log`:
 * neither, but every request's access-log line formatted and written (to /dev/null).
 */
export type ObservabilityMode = 'on' | 'off' | 'metrics' | 'tracing' | 'sdk' | 'log';

const SAMPLING: Record<ObservabilityMode, number | undefined> = { on: 1, off: undefined, metrics: undefined, tracing: 1, sdk: 0.0001, log: undefined };

/** The mesh config of the observability pair: tracing at the mode's rate to the sink, or none. */
export function meshConfigMap(o: NonNullable<MeshgateOptions['observability']>): string {
  const sampling = SAMPLING[o.mode];
  const mesh = sampling !== undefined
    ? `defaultConfig: {tracing: {sampling: ${sampling}}}\n    extensionProviders: [{name: otel, opentelemetry: {service: 127.0.0.1, port: ${o.otlpPort}, http: {path: /v1/traces}}}]\n    defaultProviders: {tracing: [otel]}`
    : 'enableTracing: false';
  return `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata:\n  mesh: |\n    ${mesh}\n`;
}

/**
 * meshgate exactly as a user runs it: the CLI on a config folder, one process for every port. The
 * routes before the matching one make the lookup do real work, as a real VirtualService would.
 */
export async function startMeshgate(upstreamPort: number, opts: MeshgateOptions = {}): Promise<MeshgateTargets> {
  const { certs } = opts;
  const dir = opts.config?.dir ?? (await tempDir('meshgate-bench-'));
  if (!opts.config) await writeFile(join(dir, 'bench.yaml'), meshgateConfig(upstreamPort, { tls: certs !== undefined, ...(opts.rateLimit ? { rateLimit: opts.rateLimit } : {}) }));
  if (opts.observability) await writeFile(join(dir, 'mesh-config.yaml'), meshConfigMap(opts.observability));
  const mode = opts.observability?.mode;
  const [metricsPort] = mode === 'on' || mode === 'metrics' ? await freePorts(1) : [0];
  const keyTypes = certs ? KEY_TYPES : [];
  const [port, statusPort, adminPort, ...tlsPorts] = (await freePorts(3 + keyTypes.length)) as [number, number, number, ...number[]];
  const portMap = [`80=${port}`, ...keyTypes.map((k, i) => `${TLS_GATEWAY_PORT[k]}=${tlsPorts[i]}`)].join(',');
  const args = [
    ...(opts.nodeArgs ?? []),
    opts.bin ?? MESHGATE_BIN, 'gateway',
    '--config', dir,
    ...(certs ? ['--certs', certs.dir] : []),
    '--ports', portMap,
    '--status-port', String(statusPort),
    '--admin-port', String(adminPort),
    '--listen-host', '127.0.0.1',
    // `log`: the access log on in meshgate's default format (Istio's JSON keys), its lines thrown away.
    '--access-log', mode === 'log' ? '/dev/null' : 'off',
    '--metrics-port', String(metricsPort ?? 0),
    '--workers', String(opts.workers ?? 1),
    ...(opts.redisUrl ? ['--redis', opts.redisUrl] : []),
    // No drain period: nothing is connected when the bench stops it, and it should exit at once.
    '--drain-seconds', '0',
  ];
  // NODE_OPTIONS as the gateway's Deployment sets them (workers inherit them); `nodeArgs` come after and win.
  const env = { ...process.env, NODE_OPTIONS: process.env.BENCH_GATEWAY_NODE_OPTIONS ?? GATEWAY_NODE_OPTIONS };
  const child = track(spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env }), 'meshgate');
  await child.until(() => isReady(statusPort), opts.config?.readyMs ?? 20_000);
  const stop = () => child.stop();
  const https = keyTypes.map((keyType, i): TlsTarget => ({
    name: 'meshgate',
    url: `https://127.0.0.1:${tlsPorts[i]}/`,
    host: BENCH_HOST,
    port: tlsPorts[i]!,
    keyType,
    pid: child.pid,
    stop,
  }));
  return { http: { name: 'meshgate', url: `http://127.0.0.1:${port}/`, host: BENCH_HOST, pid: child.pid, stop }, https, adminPort, metricsPort: metricsPort ?? 0, stop };
}

/** What a meshgate process's admin port says about its rate limits (the fields the bench checks). */
export interface RateLimitCounts {
  readonly allowed: number;
  readonly limited: number;
  readonly errors: number;
  readonly redis?: { readonly up: boolean; readonly localDecisions: number };
}

export async function rateLimitCounts(adminPort: number): Promise<RateLimitCounts> {
  return JSON.parse((await get(`http://127.0.0.1:${adminPort}/rate_limits`)).body) as RateLimitCounts;
}

/** One request before the load, so that a misrouted 404 is never measured as throughput. */
export async function preflight(t: Target): Promise<void> {
  const r = await get(t.url, t.host);
  if (r.status !== 200 || r.body !== UPSTREAM_BODY) {
    throw new Error(`${t.name}: expected 200 with the upstream's body, got ${r.status}: ${r.body.slice(0, 200)}`);
  }
}

/** GET /healthz/ready on a meshgate process's status port answers 200. */
export async function isReady(statusPort: number): Promise<boolean> {
  return (await get(`http://127.0.0.1:${statusPort}/healthz/ready`)).status === 200;
}

/** The upstream as a mesh workload: a Pod whose sidecar listens on the endpoint's port. */
export interface MeshWorkload {
  readonly pod: string;
  readonly serviceAccount: string;
}

export type RateLimitStore = 'memory' | 'redis';

export interface BenchConfigOptions {
  /** HTTPS servers, one per bench certificate. */
  readonly tls?: boolean;
  /** The endpoint is this workload's sidecar. */
  readonly workload?: MeshWorkload;
  /** A RateLimitPolicy on the route the load takes, with this store. */
  readonly rateLimit?: RateLimitStore;
}

/**
 * The bench's routes to the upstream at 127.0.0.1:`endpointPort`. With `workload`, that port is the
 * workload's sidecar: its Pod carries the sidecar label (so the gateway originates mutual TLS and
 * checks the service account), and PeerAuthentication STRICT mesh-wide refuses anything else.
 * With `rateLimit`, every request is counted against a per-client limit it never reaches (the load
 * comes from one address, so it is one hot key): what counting costs, without 429s.
 */
export function meshgateConfig(endpointPort: number, opts: BenchConfigOptions = {}): string {
  const { tls = false, workload, rateLimit } = opts;
  // Hosts `*` on the HTTPS servers: the load generators send no SNI or "127.0.0.1" (see tls-certs.ts).
  const tlsServers = tls
    ? KEY_TYPES.map((k) => `
  - port: {number: ${TLS_GATEWAY_PORT[k]}, name: https-${k}, protocol: HTTPS}
    hosts: ["*"]
    tls: {mode: SIMPLE, credentialName: ${CREDENTIAL[k]}}`).join('')
    : '';
  return `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bench-gateway, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: [${BENCH_HOST}]${tlsServers}
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
ports: [{name: http, port: ${endpointPort}}]
endpoints:
- addresses: [127.0.0.1]
  conditions: {ready: true}${workload ? `
  targetRef: {kind: Pod, name: ${workload.pod}, namespace: default}
---
apiVersion: v1
kind: Pod
metadata:
  name: ${workload.pod}
  namespace: default
  labels: {app: bench-upstream, security.istio.io/tlsMode: istio}
spec: {serviceAccountName: ${workload.serviceAccount}}
status: {podIP: 127.0.0.1}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}` : ''}${rateLimit ? `
---
apiVersion: meshgate.io/v1
kind: RateLimitPolicy
metadata: {name: bench, namespace: default}
spec:
  targetRef: {kind: VirtualService, name: bench, route: default}
  limits: [{key: {clientIp: {}}, requests: 1000000000, interval: 1h}]
  store: ${rateLimit}` : ''}
`;
}

// The bench certificates are self-signed, and the load generators do not verify them either.
let insecure: Agent | undefined;

async function get(url: string, host?: string): Promise<{ status: number; body: string }> {
  const dispatcher = url.startsWith('https:') ? (insecure ??= new Agent({ connect: { rejectUnauthorized: false } })) : undefined;
  // reset: no keep-alive connection left behind to hold a target (or this process) open.
  const r = await request(url, { headers: host ? { host } : {}, headersTimeout: 5000, bodyTimeout: 5000, reset: true, ...(dispatcher ? { dispatcher } : {}) });
  return { status: r.statusCode, body: await r.body.text() };
}
