// IST0118 PortNameIsNotUnderNamingConvention: a Service port whose protocol meshgate cannot tell
// from its name (`http`, `http-…`, `grpc-…`, `tcp-…` …) nor from `appProtocol`. Istio then sniffs
// the protocol; meshgate treats such a port as what protocol.ts decides, which may not be the intent.

import type { Problem } from '../config/problem.js';
import type { ServiceSpec } from '../model/kube.js';
import type { Resource } from '../model/resource.js';
import type { AnalysisContext } from './context.js';
import { finding, MESSAGES } from './finding.js';

// Istio's protocol prefixes (the part before the first '-').
const PROTOCOLS = new Set(['http', 'http2', 'https', 'grpc', 'grpc-web', 'tcp', 'tls', 'mongo', 'redis', 'mysql', 'udp']);

export function portNaming(ctx: AnalysisContext): Problem[] {
  const out: Problem[] = [];
  for (const r of ctx.resources) {
    if (r.kind !== 'Service') continue;
    const s = r as Resource<ServiceSpec>;
    if (s.spec.type === 'ExternalName') continue;
    (s.spec.ports ?? []).forEach((p, i) => {
      if (!p || p.appProtocol) return;
      const name = (p.name ?? '').toLowerCase();
      const prefix = name.startsWith('grpc-web') ? 'grpc-web' : name.split('-')[0]!;
      if (PROTOCOLS.has(prefix)) return;
      out.push(finding(MESSAGES.PortNameIsNotUnderNamingConvention, r, ['spec', 'ports', i, 'name'], `port ${p.port} is named ${p.name ? `"${p.name}"` : 'nothing'}, which names no protocol`, 'name it <protocol>[-<suffix>] (http, http2, grpc, tcp, tls …) or set appProtocol'));
    });
  }
  return out;
}
