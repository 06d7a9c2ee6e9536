// IST0112 VirtualServiceDestinationPortSelectorRequired: a gateway route to a service with several
// ports that does not say which port. The gateway cannot guess, so the route has no cluster.

import type { Problem } from '../config/problem.js';
import type { VirtualServiceSpec } from '../model/istio.js';
import type { Resource } from '../model/resource.js';
import { boundGateways, type AnalysisContext } from './context.js';
import { finding, MESSAGES } from './finding.js';
import { perVirtualService } from './per-virtual-service.js';

export function portSelectorRequired(ctx: AnalysisContext): Problem[] {
  const out: Problem[] = [];
  for (const vs of ctx.virtualServices) {
    if (boundGateways(vs).every((g) => g === 'mesh')) continue;
    for (const p of perVirtualService('port-selector-required', vs, ctx.world, () => check(ctx, vs))) out.push(p);
  }
  return out;
}

function check(ctx: AnalysisContext, vs: Resource<VirtualServiceSpec>): Problem[] {
  const out: Problem[] = [];
  (vs.spec.http ?? []).forEach((rule, i) => {
    (rule?.route ?? []).forEach((r, j) => {
      const d = r?.destination;
      if (!d || typeof d.host !== 'string' || d.port?.number !== undefined) return;
      const service = ctx.registry.lookup(ctx.fqdn(d.host, vs.metadata.namespace));
      if (!service || service.ports.length < 2) return;
      const ports = service.ports.map((p) => p.number).join(', ');
      out.push(finding(MESSAGES.VirtualServiceDestinationPortSelectorRequired, vs, ['spec', 'http', i, 'route', j, 'destination'], `${d.host} has several ports (${ports}) and this destination names none`, `add port: {number: N} with one of ${ports}`));
    });
  });
  return out;
}
