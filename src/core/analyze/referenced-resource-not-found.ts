// IST0101 ReferencedResourceNotFound: a name that points at nothing. A VirtualService destination
// host no Service or ServiceEntry defines (traffic gets 503 UH/NR), a subset no DestinationRule
// defines (503 NC), a Gateway that does not exist (the routes are never bound: 404), a Gateway whose
// selector matches no gateway workload, and a credentialName with no Secret behind it.

import type { Destination, DestinationRuleSpec, GatewaySpec, HTTPRoute, VirtualServiceSpec } from '../model/istio.js';
import type { FieldPath, Resource } from '../model/resource.js';
import type { Problem } from '../config/problem.js';
import { hostMatches, isWildcardHost } from '../registry/hostname.js';
import { selectorMatches } from '../registry/labels.js';
import { boundGateways, type AnalysisContext } from './context.js';
import { finding, MESSAGES } from './finding.js';
import { perVirtualService } from './per-virtual-service.js';

const T = MESSAGES.ReferencedResourceNotFound;

export function referencedResourceNotFound(ctx: AnalysisContext): Problem[] {
  const out: Problem[] = [];
  // Built only when a VirtualService is checked again (kept findings need no rule lookups).
  let hasSubset: SubsetCheck | undefined;
  for (const vs of ctx.virtualServices) {
    const found = perVirtualService('referenced-resource-not-found', vs, ctx.world, () => {
      const about: Problem[] = [];
      const ns = vs.metadata.namespace;
      (vs.spec.gateways ?? []).forEach((g, i) => {
        if (g === 'mesh' || ctx.gateway(g, ns)) return;
        about.push(finding(T, vs, ['spec', 'gateways', i], `referenced gateway not found: "${g}"`, 'create that Gateway, or correct the name (namespace/name, or name in this namespace)'));
      });
      hasSubset ??= subsetIndex(ctx);
      eachDestination(vs, (d, at) => checkDestination(ctx, hasSubset!, vs, d, at, about));
      return about;
    });
    for (const p of found) out.push(p);
  }
  for (const gw of ctx.gateways) checkGateway(ctx, gw, out);
  return out;
}

/** Every destination of a VirtualService (http, tls, tcp routes and mirrors) with its field path. */
export function eachDestination(vs: Resource<VirtualServiceSpec>, each: (d: Destination, at: FieldPath) => void): void {
  const spec = vs.spec;
  (spec.http ?? []).forEach((rule: HTTPRoute, i) => {
    (rule.route ?? []).forEach((r, j) => r?.destination && each(r.destination, ['spec', 'http', i, 'route', j, 'destination']));
    if (rule.mirror) each(rule.mirror, ['spec', 'http', i, 'mirror']);
    (rule.mirrors ?? []).forEach((m, j) => m?.destination && each(m.destination, ['spec', 'http', i, 'mirrors', j, 'destination']));
  });
  for (const kind of ['tls', 'tcp'] as const) {
    ((spec as unknown as Record<string, Array<{ route?: Array<{ destination?: Destination }> }> | undefined>)[kind] ?? []).forEach((rule, i) => {
      (rule?.route ?? []).forEach((r, j) => r?.destination && each(r.destination, ['spec', kind, i, 'route', j, 'destination']));
    });
  }
}

type SubsetCheck = (serviceHost: string, subset: string) => boolean;

/**
 * Whether a DestinationRule whose host covers `serviceHost` defines `subset`: rules by the host they
 * name, so that each destination probes the rules for its host instead of scanning every rule (at
 * 10,000 services the scan made this analyzer quadratic and the slowest step of a reload).
 */
function subsetIndex(ctx: AnalysisContext): SubsetCheck {
  const exact = new Map<string, Resource<DestinationRuleSpec>[]>();
  const all: Array<readonly [string, Resource<DestinationRuleSpec>]> = [];
  for (const dr of ctx.destinationRules) {
    const host = typeof dr.spec.host === 'string' ? ctx.fqdn(dr.spec.host, dr.metadata.namespace) : '';
    if (host === '') continue;
    all.push([host, dr]);
    if (isWildcardHost(host)) continue;
    const list = exact.get(host);
    if (list) list.push(dr);
    else exact.set(host, [dr]);
  }
  const wildcards = all.filter(([host]) => isWildcardHost(host));
  const defines = (dr: Resource<DestinationRuleSpec>, subset: string): boolean => (dr.spec.subsets ?? []).some((s) => s?.name === subset);
  return (serviceHost, subset) => {
    // A wildcard service host (a ServiceEntry's) can overlap plain rule hosts too: look at every rule.
    if (isWildcardHost(serviceHost)) return all.some(([host, dr]) => hostMatches(host, serviceHost) && defines(dr, subset));
    return (exact.get(serviceHost) ?? []).some((dr) => defines(dr, subset)) || wildcards.some(([host, dr]) => hostMatches(host, serviceHost) && defines(dr, subset));
  };
}

function checkDestination(ctx: AnalysisContext, hasSubset: SubsetCheck, vs: Resource<VirtualServiceSpec>, d: Destination, at: FieldPath, out: Problem[]): void {
  if (typeof d.host !== 'string' || d.host === '') return;
  const host = ctx.fqdn(d.host, vs.metadata.namespace);
  if (isWildcardHost(host)) return;
  const service = ctx.registry.lookup(host);
  if (!service) {
    out.push(finding(T, vs, [...at, 'host'], `referenced host not found: "${d.host}"${host !== d.host ? ` (${host})` : ''}`, 'define a Service or ServiceEntry for it, or correct the host; until then this route answers 503'));
    return;
  }
  if (!d.subset) return;
  if (!hasSubset(service.hostname, d.subset)) {
    out.push(finding(T, vs, [...at, 'subset'], `referenced subset not found: "${d.subset}" of host ${service.hostname}`, 'define it in a DestinationRule for that host (subsets: - name: ...); until then this route answers 503 NC'));
  }
}

function checkGateway(ctx: AnalysisContext, gw: Resource<GatewaySpec>, out: Problem[]): void {
  const selector = gw.spec.selector;
  // Only where the gateways' labels are known (a gateway, the analyze command): a sidecar cannot tell.
  if (ctx.options.gatewayLabels && selector && Object.keys(selector).length > 0 && !ctx.workloads.some((w) => selectorMatches(selector, w.labels))) {
    const shown = Object.entries(selector).map(([k, v]) => `${k}=${v}`).join(',');
    // The labels the gateway really has: what to copy into the selector, or into --labels.
    const carried = ctx.options.gatewayLabels.map((l) => Object.entries(l).map(([k, v]) => `${k}=${v}`).join(',')).filter((l) => l !== '');
    const labels = carried.length === 0 ? 'the gateway has no labels' : carried.length === 1 ? `the gateway's labels are ${carried[0]}` : `the gateways' labels are ${carried.join('; ')}`;
    out.push(finding(T, gw, ['spec', 'selector'], `referenced selector not found: "${shown}"`, `no gateway workload carries these labels (${labels}); select those, or start the gateway with --labels ${shown}`));
  }
  const exists = ctx.options.credentialExists;
  if (!exists) return;
  (gw.spec.servers ?? []).forEach((server, i) => {
    const tls = server?.tls;
    if (!tls) return;
    const names = [...(tls.credentialName ? [{ name: tls.credentialName, at: ['credentialName'] as FieldPath }] : []), ...(tls.credentialNames ?? []).map((name, j) => ({ name, at: ['credentialNames', j] as FieldPath }))];
    for (const { name, at } of names) {
      if (exists(gw.metadata.namespace, name)) continue;
      out.push(finding(T, gw, ['spec', 'servers', i, 'tls', ...at], `referenced credentialName not found: "${name}"`, 'create the Secret (kubectl create secret tls ...) or the folder certs/<name>/ with tls.crt and tls.key; until then this server cannot complete a handshake'));
    }
  });
}

export { boundGateways };
