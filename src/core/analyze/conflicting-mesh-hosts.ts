// IST0109 ConflictingMeshGatewayVirtualServiceHosts: two VirtualServices bound to the mesh that
// claim the same host. Sidecars merge or pick one of them in ways that depend on creation order.

import type { Problem } from '../config/problem.js';
import { resourceRef } from '../model/resource.js';
import { boundGateways, type AnalysisContext } from './context.js';
import { finding, MESSAGES } from './finding.js';

export function conflictingMeshHosts(ctx: AnalysisContext): Problem[] {
  const byHost = new Map<string, Array<{ vs: (typeof ctx.virtualServices)[number]; index: number }>>();
  for (const vs of ctx.virtualServices) {
    if (!boundGateways(vs).includes('mesh')) continue;
    (vs.spec.hosts ?? []).forEach((h, index) => {
      if (typeof h !== 'string') return;
      const host = ctx.fqdn(h, vs.metadata.namespace);
      byHost.set(host, [...(byHost.get(host) ?? []), { vs, index }]);
    });
  }
  const out: Problem[] = [];
  for (const [host, claims] of byHost) {
    if (claims.length < 2) continue;
    const names = claims.map((c) => resourceRef(c.vs)).join(', ');
    for (const { vs, index } of claims) {
      out.push(finding(MESSAGES.ConflictingMeshGatewayVirtualServiceHosts, vs, ['spec', 'hosts', index], `the VirtualServices ${names} bound to the mesh all claim host ${host}`, 'merge them into one VirtualService (or give each its own host)'));
    }
  }
  return out;
}
