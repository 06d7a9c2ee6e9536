// IST0162 GatewayPortNotDefinedOnService: a Gateway server on a port that the Service in front of the
// gateway workload does not expose (neither as port nor as targetPort), so clients that reach the
// gateway through that Service can never reach this server. Checked only when the config holds a
// Service whose selector is the Gateway's selector (file mode usually holds none).

import type { Problem } from '../config/problem.js';
import type { GatewaySpec } from '../model/istio.js';
import type { ServiceSpec } from '../model/kube.js';
import type { Resource } from '../model/resource.js';
import { selectorMatches } from '../registry/labels.js';
import type { AnalysisContext } from './context.js';
import { finding, MESSAGES } from './finding.js';

export function gatewayPortOnService(ctx: AnalysisContext): Problem[] {
  const out: Problem[] = [];
  const services = ctx.resources.filter((r) => r.kind === 'Service') as Resource<ServiceSpec>[];
  for (const gw of ctx.gateways) {
    const selector = gw.spec.selector;
    if (!selector || Object.keys(selector).length === 0) continue;
    // The Services whose pods the Gateway selects: their selector is satisfied by the Gateway's labels.
    const fronting = services.filter((s) => s.spec.selector && Object.keys(s.spec.selector).length > 0 && selectorMatches(s.spec.selector, selector));
    if (fronting.length === 0) continue;
    const exposed = new Set<number>();
    for (const s of fronting) for (const p of s.spec.ports ?? []) {
      exposed.add(typeof p.targetPort === 'number' ? p.targetPort : p.port);
      exposed.add(p.port);
    }
    (gw.spec.servers ?? []).forEach((server, i) => {
      const port = server?.port?.number;
      if (typeof port !== 'number' || exposed.has(port)) return;
      const shown = Object.entries(selector).map(([k, v]) => `${k}=${v}`).join(',');
      out.push(finding(MESSAGES.GatewayPortNotDefinedOnService, gw, ['spec', 'servers', i, 'port', 'number'], `port ${port} is not a port or targetPort of the Service in front of the gateway workloads (${fronting.map((s) => s.metadata.name).join(', ')}; selector ${shown})`, 'add the port to that Service, or serve this server on a port it exposes'));
    });
  }
  return out;
}
