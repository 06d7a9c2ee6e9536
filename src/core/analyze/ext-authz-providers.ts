// AuthorizationPolicies with `action: CUSTOM` whose provider cannot answer. MG0005
// InvalidExtAuthzProvider: the provider is not an envoyExtAuthzHttp or envoyExtAuthzGrpc entry of the
// mesh config's extensionProviders, or it is one that cannot be used (its service and port are not in
// the registry, a field Istio refuses). Either way the policy denies every request its rules match
// (403 `RBAC: access denied`), as Istio's does, which is rarely what was meant.

import type { Problem } from '../config/problem.js';
import { extAuthzProviderSpecs } from '../policy/ext-authz-providers.js';
import type { AnalysisContext } from './context.js';
import { finding, MESSAGES } from './finding.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export function extAuthzProviders(ctx: AnalysisContext): Problem[] {
  const policies = ctx.resources.filter((r) => r.kind === 'AuthorizationPolicy' && isObj(r.spec) && r.spec['action'] === 'CUSTOM');
  if (policies.length === 0) return [];
  const providers = extAuthzProviderSpecs(ctx.resources);
  const out: Problem[] = [];
  for (const p of policies) {
    const provider = isObj(p.spec) && isObj(p.spec['provider']) ? p.spec['provider']['name'] : undefined;
    if (typeof provider !== 'string' || provider === '') continue;
    const found = providers.get(provider);
    const deny = 'so this policy denies every request its rules match (403 RBAC: access denied)';
    if (!found) {
      const known = [...providers.keys()];
      out.push(finding(MESSAGES.InvalidExtAuthzProvider, p, ['spec', 'provider', 'name'], `no envoyExtAuthzHttp or envoyExtAuthzGrpc provider "${provider}" in the mesh config's extensionProviders${known.length > 0 ? ` (${known.join(', ')})` : ''}, ${deny}`, "define it in extensionProviders in the istio ConfigMap of istio-system (data.mesh), or correct the name"));
    } else if (found.kind === 'broken') {
      out.push(finding(MESSAGES.InvalidExtAuthzProvider, p, ['spec', 'provider', 'name'], `provider "${provider}" cannot be used: ${found.reason}, ${deny}`, 'correct the provider in the mesh config'));
    } else if (!ctx.registry.lookup(found.host)?.ports.some((port) => port.number === found.port)) {
      out.push(finding(MESSAGES.InvalidExtAuthzProvider, p, ['spec', 'provider', 'name'], `provider "${provider}" names ${found.host} port ${found.port}, which no Service or ServiceEntry defines, ${deny}`, 'deploy the authorizer\'s Service, or correct service and port in the provider'));
    }
  }
  return out;
}
