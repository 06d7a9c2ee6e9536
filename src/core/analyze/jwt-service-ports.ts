// IST0119 JwtFailureDueToInvalidServicePortPrefix: a RequestAuthentication whose selector picks the
// workloads of a Service with a port that does not carry HTTP (named or declared tcp-, tls-, mongo-,
// redis- …). A sidecar checks JWTs only on HTTP; on such a port no token is ever read, so a policy
// that requires requestPrincipals refuses every connection there, and one that routes on claims
// never matches. Only policies with a selector: a namespace-wide one would name every TCP Service.

import type { Problem } from '../config/problem.js';
import type { Labels } from '../model/istio.js';
import type { ServiceSpec } from '../model/kube.js';
import type { Resource } from '../model/resource.js';
import { appliesTo } from '../policy/authorization.js';
import { selectorMatches } from '../registry/labels.js';
import { isHttpCapable, kubePortProtocol } from '../registry/protocol.js';
import { DEFAULT_ROOT_NAMESPACE } from '../telemetry/telemetry-policy.js';
import type { AnalysisContext } from './context.js';
import { finding, MESSAGES } from './finding.js';

export function jwtServicePorts(ctx: AnalysisContext): Problem[] {
  const out: Problem[] = [];
  const services = ctx.resources.filter((r) => r.kind === 'Service') as Resource<ServiceSpec>[];
  for (const ra of ctx.resources) {
    if (ra.kind !== 'RequestAuthentication') continue;
    const selector = (ra.spec as { selector?: { matchLabels?: Labels } } | null)?.selector?.matchLabels;
    if (!selector || Object.keys(selector).length === 0) continue;
    for (const svc of services) {
      const podSelector = svc.spec.selector;
      if (!podSelector || Object.keys(podSelector).length === 0) continue;
      // A workload of the Service (its pods, endpoints, entries) that the policy applies to.
      const ns = svc.metadata.namespace;
      if (!ctx.workloads.some((w) => w.namespace === ns && selectorMatches(podSelector, w.labels) && appliesTo(ra, { namespace: ns, labels: w.labels }, DEFAULT_ROOT_NAMESPACE))) continue;
      (svc.spec.ports ?? []).forEach((p, i) => {
        const protocol = kubePortProtocol(p?.name, p?.appProtocol, p?.protocol);
        // HTTPS is the app's own TLS: Istio's check lets it pass, as the token is the app's to read there.
        if (!p || isHttpCapable(protocol) || protocol === 'HTTPS') return;
        out.push(finding(MESSAGES.JwtFailureDueToInvalidServicePortPrefix, ra, ['spec', 'selector', 'matchLabels'], `selects workloads of Service ${ns}/${svc.metadata.name}, whose port ${p.port} (${p.name ?? 'unnamed'}, spec.ports[${i}]) carries ${protocol}, not HTTP: no JWT is checked there, so requests on it have no request principal`, 'name the port http-… or grpc-… (or set appProtocol) if it carries HTTP, or narrow the selector'));
      });
    }
  }
  return out;
}
