// Builders and a table runner for the sidecar (outbound) route compiler's unit tables
// (test/mesh-routes*.test.ts): services, ServiceEntries and VirtualServices as plain data, a sidecar
// snapshot from YAML, and rows of request → expected outcome.

import assert from 'node:assert/strict';
import { parseConfigText } from '../../src/core/config/load.js';
import type { Problem } from '../../src/core/config/problem.js';
import { buildSnapshot } from '../../src/core/snapshot/build.js';
import type { SidecarRole, Snapshot } from '../../src/core/snapshot/snapshot.js';
import { outboundRouteConfig, type MeshVirtualHost } from '../../src/core/routing/compile-mesh.js';
import { findRoute } from '../../src/core/routing/lookup.js';
import type { CompiledRoute } from '../../src/core/routing/types.js';
import { FIXED_DEPS, requestFacts } from './route-table.js';

// ------------------------------------------------------------------ builders

export const CLIENT: SidecarRole = Object.freeze({
  kind: 'sidecar',
  namespace: 'default',
  labels: Object.freeze({ app: 'productpage', version: 'v1' }),
  serviceAccount: 'bookinfo-productpage',
  outboundTrafficPolicy: 'ALLOW_ANY',
});

export interface Port {
  readonly port: number;
  readonly name?: string;
}

/** A Kubernetes Service with the given ports (default one `http` port 9080). */
export function service(name: string, o: { ns?: string; ports?: readonly Port[]; exportTo?: string } = {}): object {
  const ports = o.ports ?? [{ port: 9080 }];
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: o.ns ?? 'default', ...(o.exportTo ? { annotations: { 'networking.istio.io/exportTo': o.exportTo } } : {}) },
    spec: { selector: { app: name }, ports: ports.map((p) => ({ name: p.name ?? 'http', port: p.port })) },
  };
}

/** A ServiceEntry for external hosts on one HTTP port. */
export function serviceEntry(name: string, hosts: readonly string[], port = 80, ns = 'default'): object {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name, namespace: ns },
    spec: { hosts, ports: [{ number: port, name: 'http', protocol: 'HTTP' }], resolution: 'DNS', location: 'MESH_EXTERNAL' },
  };
}

export function virtualService(name: string, spec: object, meta: { ns?: string; created?: string } = {}): object {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name, namespace: meta.ns ?? 'default', ...(meta.created ? { creationTimestamp: meta.created } : {}) },
    spec,
  };
}

export function to(host: string, o: { subset?: string; port?: number; weight?: number } = {}): object {
  return {
    destination: { host, ...(o.subset ? { subset: o.subset } : {}), ...(o.port ? { port: { number: o.port } } : {}) },
    ...(o.weight !== undefined ? { weight: o.weight } : {}),
  };
}

export function fqdn(name: string, ns = 'default'): string {
  return `${name}.${ns}.svc.cluster.local`;
}

export function cluster(host: string, port = 9080, subset = ''): string {
  return `outbound|${port}|${subset}|${host.includes('.') ? host : fqdn(host)}`;
}

// ------------------------------------------------------------------ compile and look up

export interface Built {
  readonly snapshot: Snapshot;
  readonly problems: readonly Problem[];
}

export function sidecar(yaml: string, role: Partial<Omit<SidecarRole, 'kind'>> = {}): Built {
  const { snapshot, problems } = buildSnapshot(parseConfigText(yaml, 'mesh.yaml'), { ...CLIENT, ...role }, FIXED_DEPS);
  const errors = problems.filter((p) => p.severity === 'error');
  assert.deepEqual(errors, [], 'the configuration has no errors');
  return { snapshot, problems };
}

export interface Req {
  readonly port: number;
  readonly host: string;
  readonly path?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * `miss` when the port has no route config or the Host no virtual host (the sidecar then applies its
 * outboundTrafficPolicy), 404 when a virtual host has no matching route (404 NR), else the cluster
 * name(s), or `redirect N` / `direct N`.
 */
export function outcome(snap: Snapshot, r: Req): 'miss' | 404 | string | readonly string[] {
  const hit = lookupRoute(snap, r);
  if (hit === 'miss' || hit === 404) return hit;
  const a = hit.action;
  if (a.kind === 'redirect') return `redirect ${a.code}`;
  if (a.kind === 'direct') return `direct ${a.status}`;
  const names = a.destinations.map((d) => d.clusterName);
  return names.length === 1 ? names[0]! : names;
}

export function lookupRoute(snap: Snapshot, r: Req): 'miss' | 404 | CompiledRoute {
  const config = outboundRouteConfig(snap, r.port);
  if (!config) return 'miss';
  const { virtualHost, route } = findRoute(config, requestFacts({ port: r.port, host: r.host, path: r.path ?? '/', ...(r.headers ? { headers: r.headers } : {}) }));
  if (!virtualHost) return 'miss';
  return route ?? 404;
}

export function vhostFor(snap: Snapshot, port: number, host: string): MeshVirtualHost | undefined {
  return outboundRouteConfig(snap, port)?.findVirtualHost(host) as MeshVirtualHost | undefined;
}

export function show(r: Req): string {
  return `:${r.port} ${r.host}${r.path ?? '/'}${r.headers ? ` ${JSON.stringify(r.headers)}` : ''}`;
}

export interface Row {
  readonly req: Req;
  readonly want: 'miss' | 404 | string | readonly string[];
}

export function check(snap: Snapshot, rows: readonly Row[]): void {
  for (const row of rows) assert.deepEqual(outcome(snap, row.req), row.want, `request ${show(row.req)}`);
}

export function warnings(b: Built): string[] {
  return b.problems.filter((p) => p.severity === 'warning').map((p) => `${p.resource} ${p.field}: ${p.message}`);
}
