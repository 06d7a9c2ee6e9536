// Answers "why 404?": for one described request, which Gateway server (or, for a sidecar, which
// outbound route config), virtual host, route and destination would serve it, and for every earlier
// candidate the condition that did not hold.

import type { IncomingHttpHeaders } from 'node:http';
import type { Resource } from '../model/resource.js';
import { describeRule, requestCount } from '../policy/rate-limit-describe.js';
import type { Snapshot } from '../snapshot/snapshot.js';
import { bindingMisses } from './binding-misses.js';
import { explainDestination } from './explain-destination.js';
import { scopedHostText } from './gateway-binding.js';
import { normalizeHost, stripTrailingHostDot } from './host-index.js';
import { explainLookup } from './lookup.js';
import { DEFAULT_GATEWAY_SERVICE_ACCOUNT } from '../model/gateway-names.js';
import { hostCovered, isTlsServer, serverForSni } from './server-hosts.js';
import type { RequestFacts, ServerConfig } from './types.js';

type ExplainServers = readonly ServerConfig[];

export interface ExplainRequest {
  /** The Gateway port (80), not the port the gateway listens on (8080): see gatewayPortFor. */
  readonly port: number;
  readonly url: URL;
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  /** How the Gateway port was found, printed under the request. */
  readonly portNote?: string;
  /** The gateway's mesh identity, for the destination sidecar's AuthorizationPolicy (without spiffe://). */
  readonly principal?: string;
}

/** The identity `meshgate gateway` joins the mesh with, by default, in its namespace. */
export function defaultGatewayPrincipal(namespace: string): string {
  return `cluster.local/ns/${namespace}/sa/${DEFAULT_GATEWAY_SERVICE_ACCOUNT}`;
}

/**
 * The Gateway port a request to `url` arrives on, for a gateway listening as `ports` (Gateway port →
 * listen port) says: a URL port that is a listen port is translated (the URL you curled); any other
 * port is taken as a Gateway port; no port means 80 or 443 by scheme.
 */
export function gatewayPortFor(url: URL, ports: ReadonlyMap<number, number>): { port: number; note?: string } {
  if (url.port === '') return { port: url.protocol === 'https:' ? 443 : 80 };
  const given = Number(url.port);
  const mapped = [...ports].find(([, listen]) => listen === given);
  const pairs = [...ports].map(([gw, listen]) => `${gw}=${listen}`).join(',');
  if (mapped) return { port: mapped[0], note: `port ${given} is where Gateway port ${mapped[0]} listens (--ports ${pairs})` };
  if (ports.has(given)) return { port: given };
  return { port: given, note: `port ${given} is not a listen port of --ports ${pairs}; taken as Gateway port ${given}` };
}

export interface ExplainResult {
  readonly lines: string[];
  /** What the gateway would answer: `forward`, `redirect 301`, `404 NR`, `503 NC` … */
  readonly verdict: string;
}

/** `loaded`: every resource as read, invalid ones too, so that a virtual-host miss can name them (default: the served ones). */
export function explainRequest(snapshot: Snapshot, r: ExplainRequest, loaded: readonly Resource[] = snapshot.resources): ExplainResult {
  const lines: string[] = [];
  const authority = stripTrailingHostDot(r.headers.host ?? r.url.host);
  const query = new Map<string, string>();
  for (const [k, v] of r.url.searchParams) if (!query.has(k)) query.set(k, v);
  const facts: RequestFacts = {
    port: r.port,
    host: normalizeHost(authority),
    authority,
    path: decodeURI(r.url.pathname) === r.url.pathname ? r.url.pathname : r.url.pathname,
    queryString: r.url.search.slice(1),
    query,
    method: r.method,
    scheme: r.url.protocol.replace(':', ''),
    headers: { ...r.headers, host: authority },
  };
  if (snapshot.role.kind === 'sidecar') return explainOutbound(snapshot, r, facts, lines);
  lines.push(`request: ${facts.method} ${facts.scheme}://${authority}${facts.path}${r.url.search} on Gateway port ${r.port}`);
  if (r.portNote) lines.push(`  ${r.portNote}`);
  const listener = snapshot.listeners.get(r.port);
  if (!listener) {
    const ports = [...snapshot.listeners.keys()];
    lines.push(`no Gateway server selecting this proxy listens on port ${r.port}${ports.length ? ` (ports served: ${ports.join(', ')})` : ' (no Gateway selects this proxy: check selector labels)'}`);
    return { lines, verdict: '404 NR (no listener)' };
  }
  for (const s of listener.servers) lines.push(`server ${s.gateway}[${s.serverIndex}] ${s.protocol} hosts ${s.scopedHosts.map(scopedHostText).join(', ')}`);
  let configName = listener.httpRouteConfig;
  if (facts.scheme === 'https' || !configName) {
    // TLS: the SNI (the URL's host, as curl sends it) picks the server, and so its route config.
    const tlsServers = listener.servers.filter(isTlsServer);
    const server = serverForSni(tlsServers, facts.host);
    if (tlsServers.length > 0) {
      if (!server) {
        lines.push(`no TLS server on port ${r.port} covers SNI "${facts.host}": the connection is closed during the handshake`);
        return { lines, verdict: 'connection closed (no server for SNI)' };
      }
      lines.push(`SNI "${facts.host}" picks server ${server.gateway}[${server.serverIndex}] (tls ${server.tls?.mode ?? 'PASSTHROUGH'})`);
      if (!server.routeConfig) {
        const route = server.tlsRoutes?.lookup(facts.host);
        lines.push(route ? `  passed through untouched to ${route.destinations.map((d) => d.clusterName).join(', ')}` : '  no tls route matches this SNI: the connection is closed');
        return { lines, verdict: route ? 'TLS passthrough' : 'connection closed (no tls route)' };
      }
      configName = server.routeConfig;
    }
  }
  const config = configName ? snapshot.routeConfigs.get(configName) : undefined;
  const notBound = (servers: ExplainServers): string[] =>
    bindingMisses({ host: facts.host, port: r.port, servers, resources: loaded, served: snapshot.resources, problems: snapshot.problems, proxyNamespace: snapshot.role.namespace });
  if (!config) {
    lines.push(`port ${r.port} has no HTTP server`);
    return { lines, verdict: '404 NR (no route config)' };
  }
  lines.push(`route config ${config.name}`);
  const ex = explainLookup(config, facts);
  if (!ex.virtualHost) {
    const domains = config.virtualHosts.map((v) => v.domain);
    lines.push(`no virtual host matches host "${facts.host}"; known: ${domains.length ? domains.join(', ') : '(none: no VirtualService binds to these servers)'}`);
    const servers = listener.servers.filter((s) => s.routeConfig === config.name);
    if (!servers.some((s) => hostCovered(s.hosts, facts.host))) lines.push(`  no server host covers "${facts.host}"`);
    const misses = notBound(servers);
    if (misses.length === 0) {
      lines.push(`  no VirtualService has a host matching "${facts.host}"`);
      lines.push('  hint: a VirtualService binds when its hosts intersect the server hosts and its gateways name this Gateway');
    }
    for (const m of misses) lines.push(`  ${m}`);
    return { lines, verdict: '404 NR (no virtual host)' };
  }
  lines.push(`virtual host ${ex.virtualHost.domain}`);
  if (ex.virtualHost.requireTls && facts.scheme === 'http') {
    lines.push('  the server has httpsRedirect: plaintext requests are redirected');
    return { lines, verdict: `301 to https://${facts.host}${facts.path}` };
  }
  return explainRoutes(snapshot, r, facts, ex, lines, () => notBound(listener.servers.filter((s) => s.routeConfig === config.name)));
}

/**
 * A sidecar's outbound side: the route config of the port the app called, its virtual host for the
 * Host, and the routes there (VirtualServices bound to mesh, routes attached to Services, defaults).
 */
function explainOutbound(snapshot: Snapshot, r: ExplainRequest, facts: RequestFacts, lines: string[]): ExplainResult {
  lines.push(`request: ${facts.method} ${facts.scheme}://${facts.authority}${facts.path}${r.url.search} from a sidecar in namespace ${snapshot.role.namespace}, to port ${r.port}`);
  const config = snapshot.routeConfigs.get(String(r.port));
  if (!config) {
    lines.push(`no outbound route config for port ${r.port}: no visible service has an HTTP port ${r.port}; the sidecar applies its outboundTrafficPolicy`);
    return { lines, verdict: 'outboundTrafficPolicy (no route config)' };
  }
  lines.push(`route config ${config.name} (outbound)`);
  const ex = explainLookup(config, facts);
  if (!ex.virtualHost) {
    lines.push(`no virtual host matches host "${facts.host}": not a service visible from namespace ${snapshot.role.namespace} on port ${r.port}; the sidecar applies its outboundTrafficPolicy`);
    return { lines, verdict: 'outboundTrafficPolicy (no virtual host)' };
  }
  lines.push(`virtual host ${ex.virtualHost.domain}`);
  return explainRoutes(snapshot, r, facts, ex, lines, () => []);
}

/** The routes of the chosen virtual host: each that did not match and why, then the one that did and its destinations. */
function explainRoutes(snapshot: Snapshot, r: ExplainRequest, facts: RequestFacts, ex: ReturnType<typeof explainLookup>, lines: string[], unbound: () => string[]): ExplainResult {
  ex.misses.forEach((m, i) => {
    lines.push(`  ✗ route ${i + 1} ${m.route.name ? `${m.route.name} ` : ''}[${m.route.source.virtualService} http[${m.route.source.httpIndex}] ${m.route.source.file}:${m.route.source.line}]`);
    lines.push(`      wanted ${m.failed}`);
  });
  const route = ex.route;
  if (!route) {
    lines.push(`  no route matched (${ex.misses.length} tried)`);
    // The route someone expected may be in a VirtualService that never joined this virtual host.
    const misses = unbound();
    if (misses.length > 0) lines.push('  VirtualServices for this host that did not bind here:', ...misses.map((m) => `    ${m}`));
    return { lines, verdict: '404 NR (no route matched)' };
  }
  lines.push(`  ✓ route ${ex.misses.length + 1} ${route.name ? `${route.name} ` : ''}[${route.source.virtualService} http[${route.source.httpIndex}] ${route.source.file}:${route.source.line}]`);
  const limits = ex.virtualHost ? snapshot.rateLimits.lookup(ex.virtualHost, route) : undefined;
  if (limits) {
    lines.push('  rate limits (the request must pass each; each counts it at the point its line names):');
    for (const b of limits) lines.push(`    ${describeRule(b.rule)}`, `      this request: ${requestCount(b, facts)}`);
  }
  const a = route.action;
  if (a.kind === 'redirect') return { lines, verdict: `redirect ${a.code}` };
  if (a.kind === 'direct') return { lines, verdict: `direct response ${a.status}` };
  const role = snapshot.role;
  const principal = r.principal ?? (role.kind === 'sidecar' ? `cluster.local/ns/${role.namespace}/sa/${role.serviceAccount}` : defaultGatewayPrincipal(role.namespace));
  const verdicts: string[] = [];
  for (const d of a.destinations) {
    const share = a.totalWeight > 0 ? `${Math.round((d.weight / a.totalWeight) * 1000) / 10}%` : '100%';
    if (!d.cluster) {
      lines.push(`  → ${d.clusterName} ${share}: no such cluster (${whyNoCluster(snapshot, d.clusterName)}) → 503 NC`);
      verdicts.push(a.destinations.length === 1 ? '503 NC (cluster not found)' : `503 NC for ${share} (cluster ${d.clusterName} not found)`);
      continue;
    }
    lines.push(`  → ${d.clusterName} ${share}`);
    const answer = explainDestination(d.cluster, snapshot.resources, { host: facts.authority, method: facts.method, path: facts.path, headers: facts.headers, principal });
    lines.push(...answer.lines);
    if (answer.verdict) verdicts.push(a.destinations.length === 1 ? answer.verdict : `${answer.verdict} for ${share}`);
  }
  if (verdicts.length === 0) return { lines, verdict: 'forward' };
  if (a.destinations.length === 1) return { lines, verdict: verdicts[0]! };
  return { lines, verdict: verdicts.length === a.destinations.length ? verdicts.join('; ') : `forward, except ${verdicts.join('; ')}` };
}

/** Why `outbound|port|subset|host` was not built: no service, no such port, or no such subset. */
function whyNoCluster(snapshot: Snapshot, name: string): string {
  const [, port = '', subset = '', host = ''] = name.split('|');
  const service = snapshot.registry.lookup(host);
  if (!service) return `no Service or ServiceEntry defines ${host}`;
  if (!service.ports.some((p) => String(p.number) === port)) return `${host} has no port ${port} (ports: ${service.ports.map((p) => p.number).join(', ')})`;
  if (subset) return `no DestinationRule for ${host} defines subset ${subset}`;
  return 'unknown service, port or subset';
}
