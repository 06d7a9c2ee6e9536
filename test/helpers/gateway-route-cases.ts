// Builders and a table runner for the gateway route compiler's unit tables (test/routing-*.test.ts):
// Istio Gateway and VirtualService objects as plain data, rows of request → expected route outcome.

import { it } from 'node:test';
import assert from 'node:assert/strict';
import { compileValid, domains, lookup, outcome, toYaml, type CompileOptions, type LookupRequest } from './route-table.js';
import type { Snapshot } from '../../src/core/snapshot/snapshot.js';
import type { ForwardAction, RouteAction } from '../../src/core/routing/types.js';

// ------------------------------------------------------------------ builders

export const GW = 'istio-system/gw';

export interface GatewayOpts {
  readonly name?: string;
  readonly namespace?: string;
  readonly selector?: Record<string, string> | null;
  readonly servers?: ReadonlyArray<{ port: number; hosts: readonly string[]; name?: string; protocol?: string }>;
}

/** A Gateway (default: `istio-system/gw`, selecting the ingress gateway, one HTTP server on 80). */
export function gateway(hosts: readonly string[], o: GatewayOpts = {}): object {
  const servers = o.servers ?? [{ port: 80, hosts }];
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'Gateway',
    metadata: { name: o.name ?? 'gw', namespace: o.namespace ?? 'istio-system' },
    spec: {
      ...(o.selector === null ? {} : { selector: o.selector ?? { istio: 'ingressgateway' } }),
      servers: servers.map((s) => ({ port: { number: s.port, name: s.name ?? `http-${s.port}`, protocol: s.protocol ?? 'HTTP' }, hosts: s.hosts })),
    },
  };
}

export interface VsMeta {
  readonly namespace?: string;
  readonly created?: string;
}

/** A VirtualService; `spec` is written as in Istio YAML. */
export function virtualService(name: string, spec: object, meta: VsMeta = {}): object {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name, namespace: meta.namespace ?? 'default', ...(meta.created ? { creationTimestamp: meta.created } : {}) },
    spec,
  };
}

/** `route: [{destination: {host}}]` for one destination. */
export function to(host: string): { route: object[] } {
  return { route: [{ destination: { host } }] };
}

/** An http route with one match entry and one destination. */
export function when(match: object, host: string): object {
  return { match: [match], ...to(host) };
}

// ------------------------------------------------------------------ table runner

export interface Row {
  readonly req: LookupRequest;
  /** 404, or the cluster name(s) the route sends to, or `redirect N` / `direct N`. */
  readonly want: 404 | string | readonly string[];
}

export interface Case {
  readonly name: string;
  readonly yaml: string;
  readonly rows: readonly Row[];
  /** Expected virtual-host domains on port 80, sorted. */
  readonly domains?: readonly string[];
  readonly opts?: CompileOptions;
}

export function show(r: LookupRequest): string {
  const extras = [r.method && r.method !== 'GET' ? r.method : '', r.scheme ? `scheme=${r.scheme}` : '', r.headers ? JSON.stringify(r.headers) : '', r.query ? JSON.stringify(r.query) : ''].filter(Boolean);
  return `:${r.port ?? 80} ${r.host}${r.path ?? '/'} ${extras.join(' ')}`.trimEnd();
}

export function runTable(cases: readonly Case[]): void {
  for (const c of cases) {
    it(c.name, () => {
      const snap = compileValid(c.yaml, c.opts);
      if (c.domains) assert.deepEqual(domains(snap), [...c.domains].sort(), 'virtual-host domains');
      for (const row of c.rows) assert.deepEqual(outcome(snap, row.req), row.want, `request ${show(row.req)}`);
    });
  }
}

export function forward(a: RouteAction): ForwardAction {
  assert.equal(a.kind, 'forward');
  return a as ForwardAction;
}

export function routeAt(snap: Snapshot, req: LookupRequest) {
  const res = lookup(snap, req);
  assert.equal(res.status, 'route', `request ${show(req)} should find a route`);
  if (res.status !== 'route') throw new Error('unreachable');
  return res;
}

// ------------------------------------------------------------------ one Gateway and one VirtualService on *

/** One Gateway on `*` and one VirtualService on `*` with these http routes. */
export function table(http: readonly object[]): string {
  return toYaml(gateway(['*']), virtualService('v', { hosts: ['*'], gateways: [GW], http }));
}

export const H = 'www.example.com';
