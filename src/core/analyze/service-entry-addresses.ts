// IST0134 ServiceEntryAddressesRequired: a ServiceEntry with a TCP port (or one whose protocol is
// not given) and no addresses. Plain TCP carries no host name, so without an address the proxy
// cannot tell this service's connections from any other on that port.

import type { Problem } from '../config/problem.js';
import type { AnalysisContext } from './context.js';
import { finding, MESSAGES } from './finding.js';

export function serviceEntryAddresses(ctx: AnalysisContext): Problem[] {
  const out: Problem[] = [];
  for (const se of ctx.resources) {
    if (se.kind !== 'ServiceEntry') continue;
    const spec = (se.spec ?? {}) as { addresses?: unknown[]; ports?: Array<{ protocol?: string; number?: number }> };
    if (Array.isArray(spec.addresses) && spec.addresses.length > 0) continue;
    (spec.ports ?? []).forEach((p, i) => {
      const protocol = (p?.protocol ?? '').toUpperCase();
      if (protocol !== '' && protocol !== 'TCP') return;
      out.push(finding(MESSAGES.ServiceEntryAddressesRequired, se, ['spec', 'ports', i], `port ${p?.number} is ${protocol || 'of no declared protocol'} and the entry has no addresses`, 'add addresses (the virtual IP or CIDR of the service), or declare the port\'s protocol (HTTP, TLS …)'));
    });
  }
  return out;
}
