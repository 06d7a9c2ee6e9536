// IST0132 VirtualServiceHostNotFoundInGateway: a VirtualService bound to a Gateway with a host that
// none of the Gateway's servers serves. That host gets 404 at the gateway whatever the routes say.

import type { Problem } from '../config/problem.js';
import type { VirtualServiceSpec } from '../model/istio.js';
import type { Resource } from '../model/resource.js';
import { hostMatches } from '../registry/hostname.js';
import { boundGateways, type AnalysisContext } from './context.js';
import { finding, MESSAGES } from './finding.js';
import { perVirtualService } from './per-virtual-service.js';

export function hostNotInGateway(ctx: AnalysisContext): Problem[] {
  const out: Problem[] = [];
  for (const vs of ctx.virtualServices) for (const p of perVirtualService('host-not-in-gateway', vs, ctx.world, () => check(ctx, vs))) out.push(p);
  return out;
}

function check(ctx: AnalysisContext, vs: Resource<VirtualServiceSpec>): Problem[] {
  const out: Problem[] = [];
  const ns = vs.metadata.namespace;
  for (const ref of boundGateways(vs)) {
    if (ref === 'mesh') continue;
    const gw = ctx.gateway(ref, ns);
    if (!gw) continue; // IST0101 already says so
    const serverHosts = [...new Set((gw.spec.servers ?? []).flatMap((s) => (s?.hosts ?? []).map((h) => String(h).slice(String(h).indexOf('/') + 1).toLowerCase())))];
    (vs.spec.hosts ?? []).forEach((h, i) => {
      if (typeof h !== 'string') return;
      const host = h.toLowerCase();
      if (serverHosts.some((s) => hostMatches(s, host))) return;
      out.push(finding(MESSAGES.VirtualServiceHostNotFoundInGateway, vs, ['spec', 'hosts', i], `host ${h} is not served by Gateway ${gw.metadata.namespace}/${gw.metadata.name} (its hosts: ${serverHosts.join(', ') || 'none'})`, 'add the host to a server of that Gateway, or correct the host here; until then it gets 404 at the gateway'));
    });
  }
  return out;
}
