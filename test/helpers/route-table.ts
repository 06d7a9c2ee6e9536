// Route-table test helpers: compile configuration text (or a folder) into a gateway snapshot without
// sockets, and look a described request up in it the way the request path does, so unit tables can
// read "YAML in, route out".

import { fileURLToPath } from 'node:url';
import type { IncomingHttpHeaders } from 'node:http';
import { stringify } from 'yaml';
import { loadConfigDir, parseConfigText, type LoadResult } from '../../src/core/config/load.js';
import { formatProblem, type Problem } from '../../src/core/config/problem.js';
import { buildSnapshot, type SnapshotDeps } from '../../src/core/snapshot/build.js';
import type { GatewayRole, Snapshot } from '../../src/core/snapshot/snapshot.js';
import { normalizeHost } from '../../src/core/routing/host-index.js';
import { findRoute } from '../../src/core/routing/lookup.js';
import type { CompiledRoute, RequestFacts, RouteConfig, VirtualHost } from '../../src/core/routing/types.js';

/** The role every table compiles for unless told otherwise: the default ingress gateway. */
export const INGRESS_ROLE: GatewayRole = Object.freeze({ kind: 'gateway', labels: Object.freeze({ istio: 'ingressgateway' }), namespace: 'istio-system' });

/** Deterministic dependencies: no randomness, no load, a fixed clock. */
export const FIXED_DEPS: SnapshotDeps = Object.freeze({ random: () => 0.5, load: { active: () => 0 }, now: () => new Date(0) });

export interface CompileOptions {
  /** Labels and namespace of the proxy (default: the ingress gateway in istio-system). */
  readonly role?: Partial<Omit<GatewayRole, 'kind'>>;
  /** File name shown in problems and route sources (default `test.yaml`). */
  readonly file?: string;
  readonly domain?: string;
}

export interface Compiled {
  readonly snapshot: Snapshot;
  readonly problems: readonly Problem[];
  /** Only the problems of severity `error`. */
  readonly errors: readonly Problem[];
}

function roleFrom(opts: CompileOptions): GatewayRole {
  return { kind: 'gateway', labels: opts.role?.labels ?? INGRESS_ROLE.labels, namespace: opts.role?.namespace ?? INGRESS_ROLE.namespace };
}

function build(loaded: LoadResult, opts: CompileOptions): Compiled {
  const deps: SnapshotDeps = opts.domain ? { ...FIXED_DEPS, domain: opts.domain } : FIXED_DEPS;
  const { snapshot, problems } = buildSnapshot(loaded, roleFrom(opts), deps);
  return { snapshot, problems, errors: problems.filter((p) => p.severity === 'error') };
}

/** Compiles configuration text (any number of YAML documents) into a gateway snapshot. */
export function compileYaml(yaml: string, opts: CompileOptions = {}): Compiled {
  return build(parseConfigText(yaml, opts.file ?? 'test.yaml'), opts);
}

/** Like compileYaml, but fails loudly (with file:line) when any problem is an error. */
export function compileValid(yaml: string, opts: CompileOptions = {}): Snapshot {
  const c = compileYaml(yaml, opts);
  if (c.errors.length > 0) throw new Error(`configuration has errors:\n${c.errors.map(formatProblem).join('\n')}`);
  return c.snapshot;
}

/** Compiles every config file directly in `dir`; `displayDir` is how its files are named in output. */
export async function compileDir(dir: string, opts: CompileOptions & { displayDir?: string } = {}): Promise<Compiled> {
  return build(await loadConfigDir(dir, opts.displayDir ?? dir), opts);
}

/** Several objects as one multi-document YAML text. */
export function toYaml(...docs: readonly object[]): string {
  return docs.map((d) => stringify(d)).join('---\n');
}

/** A path inside the repository, from compiled tests (`dist/test/...`) or sources alike. */
export function repoPath(relative: string): string {
  // This file compiles to dist/test/helpers/route-table.js: three levels below the repository root.
  return fileURLToPath(new URL(`../../../${relative}`, import.meta.url));
}

/** `outbound|<port>|<subset>|<host>`, with `host` a short name in `ns` unless it has a dot. */
export function cluster(host: string, opts: { ns?: string; port?: number; subset?: string } = {}): string {
  const fqdn = host.includes('.') ? host : `${host}.${opts.ns ?? 'default'}.svc.cluster.local`;
  return `outbound|${opts.port ?? 80}|${opts.subset ?? ''}|${fqdn}`;
}

export interface LookupRequest {
  /** Gateway (service) port; default 80. */
  readonly port?: number;
  /** Host header as a client sends it (may carry a port and upper case). */
  readonly host: string;
  /** Path, optionally with `?query`; default `/`. */
  readonly path?: string;
  readonly method?: string;
  readonly scheme?: string;
  readonly headers?: Readonly<Record<string, string | string[]>>;
  /** Extra query parameters: a query string (`a=1&b`) or a map. */
  readonly query?: string | Readonly<Record<string, string>>;
}

export type LookupResult =
  | { readonly status: 'route'; readonly route: CompiledRoute; readonly virtualHost: VirtualHost; readonly clusters: readonly string[] }
  | { readonly status: 404; readonly reason: 'no listener' | 'no route config' | 'no virtual host' | 'no route matched'; readonly virtualHost?: VirtualHost };

/** The RequestFacts the gateway would derive from such a request. */
export function requestFacts(r: LookupRequest): RequestFacts {
  const raw = r.path ?? '/';
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  const parts: string[] = [];
  if (q >= 0 && q < raw.length - 1) parts.push(raw.slice(q + 1));
  if (typeof r.query === 'string') {
    if (r.query !== '') parts.push(r.query.replace(/^\?/, ''));
  } else if (r.query) {
    parts.push(new URLSearchParams(Object.entries(r.query)).toString());
  }
  const queryString = parts.join('&');
  const query = new Map<string, string>();
  for (const [k, v] of new URLSearchParams(queryString)) if (!query.has(k)) query.set(k, v);
  const headers: IncomingHttpHeaders = {};
  for (const [k, v] of Object.entries(r.headers ?? {})) headers[k.toLowerCase()] = v;
  headers.host = r.host;
  return {
    port: r.port ?? 80,
    host: normalizeHost(r.host),
    authority: r.host,
    path,
    queryString,
    query,
    method: r.method ?? 'GET',
    scheme: r.scheme ?? 'http',
    headers,
  };
}

/** The plaintext HTTP route config serving a Gateway port, if any. */
export function routeConfigFor(snapshot: Snapshot, port = 80): RouteConfig | undefined {
  const name = snapshot.listeners.get(port)?.httpRouteConfig;
  return name === undefined ? undefined : snapshot.routeConfigs.get(name);
}

/** Looks a request up exactly as the plaintext listener on `port` would. */
export function lookup(snapshot: Snapshot, r: LookupRequest): LookupResult {
  const port = r.port ?? 80;
  if (!snapshot.listeners.has(port)) return { status: 404, reason: 'no listener' };
  const config = routeConfigFor(snapshot, port);
  if (!config) return { status: 404, reason: 'no route config' };
  const { virtualHost, route } = findRoute(config, requestFacts(r));
  if (!virtualHost) return { status: 404, reason: 'no virtual host' };
  if (!route) return { status: 404, reason: 'no route matched', virtualHost };
  const clusters = route.action.kind === 'forward' ? route.action.destinations.map((d) => d.clusterName) : [];
  return { status: 'route', route, virtualHost, clusters };
}

/**
 * A compact outcome for tables: `404`, the cluster name of a single destination, the list of cluster
 * names of several, or `redirect <code>` / `direct <status>` for local answers.
 */
export function outcome(snapshot: Snapshot, r: LookupRequest): 404 | string | readonly string[] {
  const res = lookup(snapshot, r);
  if (res.status === 404) return 404;
  const a = res.route.action;
  if (a.kind === 'redirect') return `redirect ${a.code}`;
  if (a.kind === 'direct') return `direct ${a.status}`;
  return res.clusters.length === 1 ? res.clusters[0]! : res.clusters;
}

/** Domains of the virtual hosts on a port's plaintext route config, sorted. */
export function domains(snapshot: Snapshot, port = 80): string[] {
  return [...(routeConfigFor(snapshot, port)?.virtualHosts ?? [])].map((v) => v.domain).sort();
}
