// IST0145 ConflictingGateways: two Gateways that select the same gateway workloads and have servers
// on the same port with overlapping hosts. The gateway can serve only one of them for those hosts.

import type { Problem } from '../config/problem.js';
import { resourceRef } from '../model/resource.js';
import { hostMatches } from '../registry/hostname.js';
import { labelsEqual } from '../registry/labels.js';
import type { AnalysisContext } from './context.js';
import { finding, MESSAGES } from './finding.js';

export function conflictingGateways(ctx: AnalysisContext): Problem[] {
  const out: Problem[] = [];
  const gws = ctx.gateways;
  for (let a = 0; a < gws.length; a++) {
    for (let b = 0; b < gws.length; b++) {
      if (a === b) continue;
      const ga = gws[a]!;
      const gb = gws[b]!;
      if (!labelsEqual(ga.spec.selector, gb.spec.selector)) continue;
      (ga.spec.servers ?? []).forEach((sa, i) => {
        for (const sb of gb.spec.servers ?? []) {
          if (!sa?.port || !sb?.port || sa.port.number !== sb.port.number) continue;
          const shared = (sa.hosts ?? []).map(bare).filter((h) => (sb.hosts ?? []).map(bare).some((o) => hostMatches(h, o)));
          if (shared.length === 0) continue;
          const selector = Object.entries(ga.spec.selector ?? {}).map(([k, v]) => `${k}=${v}`).join(',') || '(all)';
          out.push(finding(MESSAGES.ConflictingGateways, ga, ['spec', 'servers', i], `conflicts with ${resourceRef(gb)}: same selector ${selector}, port ${sa.port.number}, hosts ${shared.join(', ')}`, 'serve these hosts from one Gateway, or give the servers different ports or hosts'));
          break;
        }
      });
    }
  }
  return out;
}

function bare(h: unknown): string {
  const s = String(h);
  return s.slice(s.indexOf('/') + 1).toLowerCase();
}
