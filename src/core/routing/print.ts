// A person-readable print of a compiled routing table (`meshgate routes`, admin `/routes`). Its
// output is stable (sorted) so it can be kept as a golden file.

import { describeRule } from '../policy/rate-limit-describe.js';
import type { RateLimitBinding, RateLimitRule } from '../policy/rate-limit-table.js';
import type { Snapshot } from '../snapshot/snapshot.js';
import { scopedHostText } from './gateway-binding.js';
import type { CompiledRoute, HeaderRules, L4Route, RouteAction, ServerConfig } from './types.js';

export function printRoutes(snapshot: Snapshot): string {
  if (snapshot.role.kind === 'sidecar') return printOutboundRoutes(snapshot);
  const lines: string[] = [];
  const ports = [...snapshot.listeners.keys()].sort((a, b) => a - b);
  if (ports.length === 0) lines.push('no listeners: no Gateway selects this proxy');
  for (const port of ports) {
    const l = snapshot.listeners.get(port)!;
    lines.push(`listener ${port} ${l.protocol}`);
    for (const s of l.servers) {
      // On a plaintext server a tls block only carries httpsRedirect; its mode means nothing there.
      const plain = s.protocol === 'HTTP' || s.protocol === 'HTTP2' || s.protocol.startsWith('GRPC');
      const tls = !s.tls ? '' : plain ? (s.tls.httpsRedirect ? ' httpsRedirect' : '') : ` tls=${s.tls.mode ?? 'PASSTHROUGH'}${s.tls.httpsRedirect ? ' httpsRedirect' : ''}`;
      // A listener may hold servers of several Gateway ports (port translation): name the others.
      const port = s.port === l.port ? '' : ` port=${s.port}`;
      lines.push(`  server ${s.gateway}[${s.serverIndex}] ${s.portName} ${s.protocol}${port}${tls} hosts=${s.scopedHosts.map(scopedHostText).join(',')}${s.routeConfig ? ` routes=${s.routeConfig}` : ''}`);
    }
    for (const s of l.servers) lines.push(...printL4Routes(s));
    const configs = [...new Set(l.servers.map((s) => s.routeConfig).filter((n): n is string => n !== undefined))];
    for (const name of configs) {
      const rc = snapshot.routeConfigs.get(name);
      if (!rc) continue;
      lines.push(`  route config ${name}`, ...filterLimits(snapshot, name, '    '));
      const vhosts = [...rc.virtualHosts].sort((a, b) => (a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : 0));
      if (vhosts.length === 0) lines.push('    (no virtual hosts: every request gets 404 NR)');
      for (const vh of vhosts) {
        lines.push(`    vhost ${vh.domain}${vh.requireTls ? ' (requires TLS: 301 to https)' : ''}`);
        vh.routes.forEach((r, i) => lines.push(...printRoute(r, i + 1, snapshot.rateLimits.lookup(vh, r))));
        if (vh.routes.length === 0 && !vh.requireTls) lines.push('      (no routes: 404 NR)');
      }
    }
  }
  return lines.join('\n') + '\n';
}

/**
 * A sidecar's outbound route configs, one per port the app may call: each virtual host with the Host
 * forms it answers to, and its routes (VirtualServices and routes attached to Services).
 */
function printOutboundRoutes(snapshot: Snapshot): string {
  const lines: string[] = [];
  const configs = [...snapshot.routeConfigs.values()].sort((a, b) => Number(a.name) - Number(b.name));
  if (configs.length === 0) lines.push('no outbound route configs: no visible service has an HTTP port');
  for (const rc of configs) {
    lines.push(`route config ${rc.name} (outbound)`, ...filterLimits(snapshot, rc.name, '  '));
    for (const vh of [...rc.virtualHosts].sort((a, b) => (a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : 0))) {
      const forms = 'domains' in vh ? (vh.domains as readonly string[]).filter((d) => d !== vh.domain && !/:\d+$/.test(d)) : [];
      lines.push(`  vhost ${vh.domain}${forms.length ? ` (also ${forms.join(', ')})` : ''}`);
      vh.routes.forEach((r, i) => lines.push(...printRoute(r, i + 1, snapshot.rateLimits.lookup(vh, r)).map((l) => l.slice(2))));
      if (vh.routes.length === 0) lines.push('    (no routes: 404 NR)');
    }
  }
  // The inbound side has no routes here: its local rate limits are the port's.
  const inbound = snapshot.rateLimits.inboundRules;
  if (inbound.length > 0) lines.push('inbound (to the app)', ...inbound.map((r) => `  rate limit ${describeRule(r)}`));
  return lines.join('\n') + '\n';
}

/** Passthrough SNI routes and the tcp route; nothing for HTTP(S) servers. */
function printL4Routes(s: ServerConfig): string[] {
  const out: string[] = [];
  const server = `${s.gateway}[${s.serverIndex}]`;
  if (s.tlsRoutes) {
    out.push(`  tls routes of ${server}`);
    const routes = [...s.tlsRoutes.routes].sort((a, b) => (a.sniHost < b.sniHost ? -1 : a.sniHost > b.sniHost ? 1 : 0));
    if (routes.length === 0) out.push('    (no tls routes: connections are closed)');
    for (const r of routes) out.push(`    sni ${r.sniHost} ${l4Destinations(r)}`);
  } else if (s.tcpRoute) {
    out.push(`  tcp route of ${server}`, `    any connection ${l4Destinations(s.tcpRoute)}`);
  }
  return out;
}

function l4Destinations(r: L4Route): string {
  const where = `${r.source.virtualService} ${r.source.kind}[${r.source.routeIndex}]${r.source.matchIndex >= 0 ? `.match[${r.source.matchIndex}]` : ''}`;
  const dests = r.destinations.map((d) => {
    const pct = r.totalWeight > 0 ? Math.round((d.weight / r.totalWeight) * 1000) / 10 : 100;
    return `${d.clusterName} ${pct}%${d.cluster ? ` (${d.cluster.endpoints.length} endpoints)` : ' (no such cluster: connection closed)'}`;
  });
  return `→ ${dests.join(', ')} [${where}]`;
}

/**
 * The buckets of the local rate limit filters in a route config's chain (EnvoyFilter HTTP_FILTER
 * patches): one for all its routes, so shown once, above them, rather than on every route.
 */
function filterLimits(snapshot: Snapshot, routeConfig: string, indent: string): string[] {
  return snapshot.rateLimits.rules.filter((r) => isFilterBucket(r) && r.envoy?.bucket.routeConfig === routeConfig).map((r) => `${indent}rate limit ${describeRule(r)}`);
}

const isFilterBucket = (r: RateLimitRule): boolean => r.envoy !== undefined && r.envoy.bucket.virtualHost === undefined;

/** `limits`: the rate limits bound to the route (but the route config's filter buckets), each on a line of its own. */
function printRoute(r: CompiledRoute, n: number, limits: readonly RateLimitBinding[] | undefined): string[] {
  // A sidecar's default route for a service comes from no resource.
  const where = r.source.virtualService === '' ? 'default route' : `${r.source.virtualService} http[${r.source.httpIndex}]${r.source.matchIndex >= 0 ? `.match[${r.source.matchIndex}]` : ''}`;
  const when = r.conditions.length === 0 ? 'any request' : r.conditions.map((c) => c.what).join(' and ');
  const out = [`      ${n}. ${r.name ? `${r.name} ` : ''}[${where}] when ${when}`];
  out.push(...printAction(r.action).map((l) => `         ${l}`));
  for (const b of limits ?? []) if (!isFilterBucket(b.rule)) out.push(`         rate limit ${describeRule(b.rule)}${b.onlyHost !== undefined ? ` (host ${b.onlyHost} only)` : ''}`);
  return out;
}

function printAction(a: RouteAction): string[] {
  if (a.kind === 'redirect') {
    const parts = [a.scheme && `scheme=${a.scheme}`, a.authority && `authority=${a.authority}`, a.port && `port=${a.port}`, a.uri && `uri=${a.uri}`, a.prefixRewrite !== undefined && `prefixRewrite=${a.prefixRewrite}`].filter(Boolean);
    return [`redirect ${a.code} ${parts.join(' ')}`.trimEnd()];
  }
  if (a.kind === 'direct') return [`direct response ${a.status}${a.body ? ` (${a.body.length} bytes)` : ''}`];
  const out: string[] = [];
  for (const d of a.destinations) {
    const pct = a.totalWeight > 0 ? Math.round((d.weight / a.totalWeight) * 1000) / 10 : 100;
    out.push(`→ ${d.clusterName} ${pct}%${d.cluster ? ` (${d.cluster.endpoints.length} endpoints)` : ' (no such cluster: 503 NC)'}${rules(d.requestHeaders, 'request')}`);
  }
  const extras = [
    a.rewritePath && 'rewrite path',
    a.authority && `authority=${a.authority}`,
    a.timeoutMs > 0 && `timeout=${a.timeoutMs}ms`,
    `retries=${a.retry.attempts} on ${[...a.retry.on].join(',')}${a.retry.statusCodes.size ? ` codes ${[...a.retry.statusCodes].join(',')}` : ''}`,
    a.retry.perTryTimeoutMs > 0 && `perTryTimeout=${a.retry.perTryTimeoutMs}ms`,
    a.fault?.delay && `delay ${a.fault.delay.ms}ms at ${a.fault.delay.chance / 10_000}%`,
    a.fault?.abort && `abort ${a.fault.abort.grpcStatus !== undefined ? `grpc-status ${a.fault.abort.grpcStatus}` : a.fault.abort.httpStatus} at ${a.fault.abort.chance / 10_000}%`,
    ...a.mirrors.map((m) => `mirror ${m.clusterName} ${m.chance / 10_000}%`),
    a.cors && 'cors',
  ].filter(Boolean);
  out.push(extras.join(' ') + rules(a.requestHeaders, 'request') + rules(a.responseHeaders, 'response'));
  return out;
}

function rules(h: HeaderRules, side: string): string {
  const parts = [
    ...h.set.map(([k, v]) => `set ${k}=${v}`),
    ...h.add.map(([k, v]) => `add ${k}=${v}`),
    ...h.remove.map((k) => `remove ${k}`),
  ];
  return parts.length ? ` ${side} headers: ${parts.join(', ')}` : '';
}
