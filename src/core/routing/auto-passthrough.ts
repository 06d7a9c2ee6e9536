// A Gateway server with `tls.mode: AUTO_PASSTHROUGH` (Istio's east-west gateway between networks,
// docs/tasks/east-west-gateway.md): no VirtualService routes it. A sidecar in another network
// dials the gateway with mutual TLS meant for the destination's own sidecar, and names in its SNI
// the cluster it wants, as Istio writes cluster names for SNI: `outbound_.<port>_.<subset>_.<host>`
// (`outbound_.8080_._.httpbin.default.svc.cluster.local`, `_` for no subset). The gateway reads the
// name, never the TLS, and pipes the connection to an endpoint of that cluster. As Istio builds
// these filter chains: every service port (not UDP) of a service inside the mesh (not
// `MESH_EXTERNAL`) that the gateway sees and whose host is within the server's hosts, once without
// a subset and once per subset of its DestinationRule; and only for a client that offers an Istio
// mutual-TLS ALPN, so that what passes is always mTLS to a sidecar.

import { problemAt, type Problem } from '../config/problem.js';
import { hostMatches, isWildcardHost } from '../registry/hostname.js';
import { compileDestinations } from './actions.js';
import { exportedTo, type BoundServer } from './gateway-binding.js';
import { buildTlsRouteTable, type L4CompileInput } from './tls-routes.js';
import type { L4RouteSource, TlsRoute, TlsRouteTable } from './types.js';

/** The ALPN names Istio's client proxies offer on mutual TLS to a sidecar; one of them must be offered. */
export const ISTIO_MTLS_ALPNS: ReadonlySet<string> = new Set(['istio', 'istio-peer-exchange', 'istio-http/1.0', 'istio-http/1.1', 'istio-h2']);

/** The SNI that names a cluster: `outbound_.<port>_.<subset>_.<host>`, an empty subset for none. */
export function clusterSni(port: number, subset: string, host: string): string {
  return `outbound_.${port}_.${subset}_.${host}`;
}

/** Whether a client's ALPN list lets it through an AUTO_PASSTHROUGH server. */
export function offersIstioMtls(alpn: readonly string[] | undefined): boolean {
  return alpn !== undefined && alpn.some((p) => ISTIO_MTLS_ALPNS.has(p));
}

/** The SNI table of an AUTO_PASSTHROUGH server: one exact name per service port and subset. */
export function compileAutoPassthrough(server: BoundServer, input: L4CompileInput, problems: Problem[]): TlsRouteTable {
  const hosts = server.hosts.map((h) => h.host);
  const port = server.server.port.number;
  const source: L4RouteSource = {
    virtualService: `Gateway ${server.gatewayRef} servers[${server.index}] (AUTO_PASSTHROUGH)`,
    file: server.gateway.origin.file,
    line: server.gateway.origin.lineOf(['spec', 'servers', server.index]),
    kind: 'tls',
    routeIndex: server.index,
    matchIndex: -1,
  };
  const routes: TlsRoute[] = [];
  for (const service of input.registry.services.values()) {
    const host = service.hostname;
    if (service.location === 'MESH_EXTERNAL' || isWildcardHost(host) || !exportedTo(service.exportTo, service.namespace, input.proxyNamespace)) continue;
    if (!hosts.some((h) => hostMatches(h, host) && (isWildcardHost(h) || h === host))) continue;
    for (const p of service.ports) {
      if (p.protocol === 'UDP') continue;
      for (const subset of ['', ...(input.subsetsOf?.(host, service.namespace) ?? [])]) {
        const destinations = compileDestinations([{ destination: { host, port: { number: p.number }, ...(subset ? { subset } : {}) } }], {
          namespace: service.namespace,
          listenerPort: port,
          registry: input.registry,
          domain: input.domain,
          cluster: input.cluster,
        });
        routes.push({ sniHost: clusterSni(p.number, subset, host), source, destinations, totalWeight: destinations.reduce((s, d) => s + d.weight, 0) });
      }
    }
  }
  if (routes.length === 0) {
    const message = 'AUTO_PASSTHROUGH: no service inside the mesh has a host within these hosts; every connection to this server is closed';
    problems.push(problemAt(server.gateway, ['spec', 'servers', server.index, 'hosts'], message, 'warning'));
  }
  return buildTlsRouteTable(routes);
}
