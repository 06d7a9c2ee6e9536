// Why no VirtualService gave a Gateway server a virtual host for a request's host: for every
// VirtualService with a host matching the request, the rule of docs/reference/routing.md that kept it
// off this server (invalid, exportTo, gateways, the server host's namespace scope, host overlap,
// match.port/match.gateways). What `meshgate explain` prints on a virtual-host miss.

import type { Problem } from '../config/problem.js';
import type { VirtualServiceSpec } from '../model/istio.js';
import { resourceRef, type Resource } from '../model/resource.js';
import { hostIntersection, hostMatches, resolveShortName } from '../registry/hostname.js';
import { exportedTo, hostsVisibleTo, scopedHostText, vsGateways } from './gateway-binding.js';
import type { ServerConfig } from './types.js';

export interface BindingQuestion {
  /** The request's host: lower-case, without port. */
  readonly host: string;
  /** The Gateway port, which `match.port` compares with. */
  readonly port: number;
  /** The servers whose virtual hosts were searched (those sharing the route config). */
  readonly servers: readonly ServerConfig[];
  /** Every resource as loaded, those left out as invalid too. */
  readonly resources: readonly Resource[];
  /** The resources the snapshot serves. */
  readonly served: readonly Resource[];
  /** The build's problems, to say why an invalid VirtualService was left out. */
  readonly problems: readonly Problem[];
  /** The gateway proxy's namespace, which exportTo is seen from. */
  readonly proxyNamespace: string;
  readonly domain?: string;
}

/**
 * One entry per VirtualService with a host matching the request that gives these servers no virtual
 * host for it: its name, where it is, and why. Those that do bind are left out.
 */
export function bindingMisses(q: BindingQuestion): string[] {
  const served = new Set(q.served.filter((r) => r.kind === 'VirtualService').map(resourceRef));
  const out: string[] = [];
  for (const vs of q.resources) {
    if (vs.kind !== 'VirtualService') continue;
    const ns = vs.metadata.namespace;
    const hosts = stringsOf((vs.spec as { hosts?: unknown } | null)?.hosts).map((h) => resolveShortName(h, ns, q.domain).toLowerCase());
    const matching = hosts.find((h) => hostMatches(h, q.host));
    if (matching === undefined) continue;
    const reasons = served.has(resourceRef(vs)) ? reasonsPerServer(vs as Resource<VirtualServiceSpec>, hosts, q) : [invalidReason(vs, q.problems)];
    if (reasons.length === 0) continue;
    out.push(`VirtualService ${ns}/${vs.metadata.name} [${vs.origin.file}:${vs.origin.line}] has host ${matching} but does not bind${reasons.length === 1 ? `: ${reasons[0]}` : ':'}`);
    if (reasons.length > 1) out.push(...reasons.map((r) => `  ${r}`));
  }
  return out;
}

function invalidReason(vs: Resource, problems: readonly Problem[]): string {
  const ref = resourceRef(vs);
  const p = problems.find((x) => x.severity === 'error' && x.resource === ref && x.file === vs.origin.file);
  return p ? `it is invalid and left out: ${p.field ? `${p.field}: ` : ''}${p.message} (${p.file}:${p.line})` : 'it is invalid and left out (meshgate validate says why)';
}

/** The reason for each server, one reason when it does not depend on the server, or none when it binds to one. */
function reasonsPerServer(vs: Resource<VirtualServiceSpec>, hosts: readonly string[], q: BindingQuestion): string[] {
  const spec = vs.spec;
  const ns = vs.metadata.namespace;
  if (!spec.http || spec.http.length === 0) return ['it has no http routes'];
  if (!exportedTo(spec.exportTo, ns, q.proxyNamespace)) {
    return [`its exportTo [${(spec.exportTo ?? []).join(', ')}] hides it from the gateway's namespace ${q.proxyNamespace}`];
  }
  const reasons = q.servers.map((s) => serverReason(vs, hosts, s, q));
  if (reasons.some((r) => r === undefined)) return [];
  const distinct = [...new Set(reasons)];
  if (distinct.length === 1) return distinct as string[];
  return q.servers.map((s, i) => `server ${s.gateway}[${s.serverIndex}]: ${reasons[i]!}`);
}

/** Undefined: it binds to this server with a domain covering the host. */
function serverReason(vs: Resource<VirtualServiceSpec>, hosts: readonly string[], s: ServerConfig, q: BindingQuestion): string | undefined {
  const spec = vs.spec;
  const ns = vs.metadata.namespace;
  if (!vsGateways(spec, ns).has(s.gateway)) {
    if (!spec.gateways || spec.gateways.length === 0) return `it lists no gateways, so it applies to sidecars only (mesh); add gateways: [${s.gateway}]`;
    return `its gateways [${[...vsGateways(spec, ns)].join(', ')}] do not name Gateway ${s.gateway}`;
  }
  const serverHosts = s.scopedHosts.map(scopedHostText).join(', ');
  if (hostIntersection(s.hosts, hosts).length === 0) return `its hosts do not overlap the server hosts (${serverHosts})`;
  const domains = hostIntersection(hostsVisibleTo(s.scopedHosts, ns), hosts);
  if (domains.length === 0) {
    const scoped = s.scopedHosts.filter((h) => h.namespace !== '*' && h.namespace !== ns && hostIntersection([h.host], hosts).length > 0);
    const namespaces = [...new Set(scoped.map((h) => h.namespace))];
    const one = scoped.length === 1;
    return `server host${one ? '' : 's'} ${scoped.map(scopedHostText).join(', ')} admit${one ? 's' : ''} only VirtualServices from namespace${namespaces.length === 1 ? '' : 's'} ${namespaces.join(', ')}; this one is in ${ns}`;
  }
  if (!domains.some((d) => hostMatches(d, q.host))) {
    return `it binds here only as ${domains.join(', ')} (where its hosts meet the server hosts ${serverHosts}), which does not cover ${q.host}`;
  }
  const applies = spec.http!.some((route) => {
    const matches = route.match && route.match.length > 0 ? route.match : [undefined];
    return matches.some((m) => vsGateways(spec, ns, m?.gateways).has(s.gateway) && (m?.port === undefined || m.port === q.port));
  });
  return applies ? undefined : `none of its http routes applies to this server: their match.port or match.gateways leave out ${s.gateway} port ${q.port}`;
}

function stringsOf(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}
