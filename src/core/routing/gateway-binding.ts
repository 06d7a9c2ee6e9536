// Which Gateway servers a gateway proxy serves, and which VirtualServices bind to them: selector
// matching, the `ns/host` scopes of server hosts, gateway reference names, and port merging rules
// of docs/reference/routing.md

import type { GatewayServer, GatewaySpec, Labels, VirtualServiceSpec } from '../model/istio.js';
import type { Resource } from '../model/resource.js';
import type { Problem } from '../config/problem.js';
import { problemAt } from '../config/problem.js';

export const MESH_GATEWAY = 'mesh';

/** A Gateway applies to a proxy when every selector label is on the proxy (no selector: every proxy). */
export function selectsProxy(gateway: Resource<GatewaySpec>, proxyLabels: Labels): boolean {
  const selector = gateway.spec.selector;
  if (!selector) return true;
  return Object.entries(selector).every(([k, v]) => proxyLabels[k] === v);
}

/** `name` → `<vsNamespace>/name`; `ns/name` stays; legacy `name.ns.svc.cluster.local` → `ns/name`; `mesh` stays. */
export function resolveGatewayName(name: string, vsNamespace: string): string {
  if (name === MESH_GATEWAY) return MESH_GATEWAY;
  if (name.includes('/')) return name;
  const dot = name.indexOf('.');
  if (dot > 0) {
    const rest = name.slice(dot + 1);
    const ns = rest.split('.')[0] ?? vsNamespace;
    return `${ns}/${name.slice(0, dot)}`;
  }
  return `${vsNamespace}/${name}`;
}

/**
 * The gateways a VirtualService (or one of its matches) applies to; top-level `gateways` omitted means
 * only `mesh`. A match's own `gateways` narrow that set and never add to it: Istio hands a
 * VirtualService only to the gateways of its top-level list (push_context.go getGatewayNames).
 */
export function vsGateways(spec: VirtualServiceSpec, namespace: string, matchGateways?: readonly string[]): ReadonlySet<string> {
  const bound = new Set((spec.gateways && spec.gateways.length > 0 ? spec.gateways : [MESH_GATEWAY]).map((n) => resolveGatewayName(n, namespace)));
  if (!matchGateways || matchGateways.length === 0) return bound;
  return new Set(matchGateways.map((n) => resolveGatewayName(n, namespace)).filter((g) => bound.has(g)));
}

/** `exportTo`: `*` (default) everyone, `.` own namespace, `~` nobody, or namespace names. */
export function exportedTo(exportTo: readonly string[] | undefined, ownNamespace: string, viewer: string): boolean {
  if (!exportTo || exportTo.length === 0) return true;
  return exportTo.some((e) => e === '*' || (e === '.' && viewer === ownNamespace) || e === viewer);
}

export interface ScopedHost {
  /** `*` for any namespace, or a namespace name (`.` already replaced by the Gateway's namespace). */
  readonly namespace: string;
  /** Lower-case DNS name, possibly a wildcard. */
  readonly host: string;
}

export function parseServerHost(entry: string, gatewayNamespace: string): ScopedHost {
  const slash = entry.indexOf('/');
  if (slash < 0) return { namespace: '*', host: entry.toLowerCase() };
  const ns = entry.slice(0, slash);
  return { namespace: ns === '.' ? gatewayNamespace : ns, host: entry.slice(slash + 1).toLowerCase() };
}

/** `ns/host` as people write it; a host open to any namespace is shown bare, as Istio canonicalises it. */
export function scopedHostText(h: ScopedHost): string {
  return h.namespace === '*' ? h.host : `${h.namespace}/${h.host}`;
}

/** The server hosts a VirtualService from `vsNamespace` may bind to. */
export function hostsVisibleTo(hosts: readonly ScopedHost[], vsNamespace: string): string[] {
  return hosts.filter((h) => h.namespace === '*' || h.namespace === vsNamespace).map((h) => h.host);
}

const HTTP_PROTOCOLS = new Set(['HTTP', 'HTTP2', 'GRPC', 'GRPC-WEB']);
const TERMINATING = new Set(['SIMPLE', 'MUTUAL', 'OPTIONAL_MUTUAL', 'ISTIO_MUTUAL']);

export type ServerKind = 'http' | 'https' | 'passthrough' | 'tcp';

export function serverKind(server: GatewayServer): ServerKind {
  const protocol = server.port.protocol.toUpperCase();
  if (HTTP_PROTOCOLS.has(protocol)) return 'http';
  if (protocol === 'HTTPS' || protocol === 'TLS') {
    const mode = server.tls?.mode ?? 'PASSTHROUGH';
    if (!TERMINATING.has(mode)) return 'passthrough';
    return protocol === 'HTTPS' ? 'https' : 'tcp';
  }
  return 'tcp';
}

export interface BoundServer {
  readonly gateway: Resource<GatewaySpec>;
  /** `<ns>/<name>` of its Gateway. */
  readonly gatewayRef: string;
  readonly index: number;
  readonly server: GatewayServer;
  readonly kind: ServerKind;
  readonly hosts: readonly ScopedHost[];
  /** The port its listener listens on: the Service's targetPort for `server.port.number`, else that number. */
  readonly listenPort: number;
  /** `http.<listenPort>` or `https.<port>.<portName>.<gw>.<ns>`; absent for passthrough and TCP servers. */
  readonly routeConfig?: string;
}

/**
 * The servers of all Gateways selecting this proxy, merged per listen port as Istio merges them: a
 * server port the gateway Service exposes listens on its targetPort, any other on its own number
 * (docs/reference/routing.md), so servers on 80 and on 8080 share listener 8080 behind Service 80→8080.
 * Plaintext HTTP servers on one listener share `http.<listenPort>`; a plaintext server whose protocol
 * cannot merge with the listener's first one is skipped; a TLS server repeating a host already on its
 * listener is skipped.
 */
export function bindServers(gateways: readonly Resource<GatewaySpec>[], problems: Problem[], servicePorts: ReadonlyMap<number, number> = new Map()): BoundServer[] {
  const out: BoundServer[] = [];
  const portProtocol = new Map<number, string>();
  const tlsHostsByPort = new Map<number, Set<string>>();
  for (const gw of gateways) {
    const gatewayRef = `${gw.metadata.namespace}/${gw.metadata.name}`;
    gw.spec.servers.forEach((server, index) => {
      const path = ['spec', 'servers', index];
      const kind = serverKind(server);
      const port = server.port.number;
      const listenPort = servicePorts.get(port) ?? port;
      const where = listenPort === port ? `port ${port}` : `listener ${listenPort} (Gateway port ${port})`;
      const protocol = server.port.protocol.toUpperCase();
      const first = portProtocol.get(listenPort);
      if (first !== undefined && kind !== 'https' && kind !== 'passthrough') {
        const merges = (HTTP_PROTOCOLS.has(first) && HTTP_PROTOCOLS.has(protocol)) || first === protocol;
        if (!merges) {
          problems.push(problemAt(gw, [...path, 'port'], `${where} already serves ${first}; this ${protocol} server is skipped`, 'warning'));
          return;
        }
      }
      if (first === undefined) portProtocol.set(listenPort, protocol);
      const hosts = server.hosts.map((h) => parseServerHost(h, gw.metadata.namespace));
      if (kind === 'https' || kind === 'passthrough') {
        const seen = tlsHostsByPort.get(listenPort) ?? new Set<string>();
        tlsHostsByPort.set(listenPort, seen);
        const dup = hosts.find((h) => seen.has(h.host));
        if (dup) {
          problems.push(problemAt(gw, [...path, 'hosts'], `host ${dup.host} is already served over TLS on ${where}; this server is skipped`, 'warning'));
          return;
        }
        for (const h of hosts) seen.add(h.host);
      }
      // Istio names the plaintext route config by the listen port (all its servers share it) and a
      // TLS server's by its own port.
      const routeConfig =
        kind === 'http' ? `http.${listenPort}` : kind === 'https' ? `https.${port}.${server.port.name}.${gw.metadata.name}.${gw.metadata.namespace}` : undefined;
      out.push({ gateway: gw, gatewayRef, index, server, kind, hosts, listenPort, ...(routeConfig ? { routeConfig } : {}) });
    });
  }
  return out;
}
