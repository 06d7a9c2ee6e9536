// IST0138 GatewayDuplicateCertificate: one credential served by servers of several Gateways. An
// HTTP/2 client may reuse a connection opened for one host to another host the same certificate
// covers, and the gateway then answers 404 for the routes of the other Gateway.

import type { Problem } from '../config/problem.js';
import { resourceRef } from '../model/resource.js';
import type { AnalysisContext } from './context.js';
import { finding, MESSAGES } from './finding.js';

export function duplicateCertificate(ctx: AnalysisContext): Problem[] {
  const users = new Map<string, Array<{ gw: (typeof ctx.gateways)[number]; index: number }>>();
  for (const gw of ctx.gateways) {
    (gw.spec.servers ?? []).forEach((s, index) => {
      const name = s?.tls?.credentialName;
      if (!name) return;
      const key = `${gw.metadata.namespace}/${name}`;
      const list = users.get(key) ?? [];
      if (!list.some((u) => u.gw === gw)) list.push({ gw, index });
      users.set(key, list);
    });
  }
  const out: Problem[] = [];
  for (const [key, list] of users) {
    if (list.length < 2) continue;
    const names = list.map((u) => resourceRef(u.gw)).join(', ');
    for (const { gw, index } of list) {
      out.push(finding(MESSAGES.GatewayDuplicateCertificate, gw, ['spec', 'servers', index, 'tls', 'credentialName'], `credential ${key} is served by several Gateways (${names}); HTTP/2 clients reusing a connection across them may get 404`, 'serve the hosts of one certificate from one Gateway'));
    }
  }
  return out;
}
