// IST0149 JwtClaimBasedRoutingWithoutRequestAuthN: a VirtualService routes on
// `@request.auth.claims.*` at a gateway that no RequestAuthentication applies to. Without one no
// token is ever verified, so the request has no claims and the route never matches. A policy applies
// when it is in the Gateway's namespace or the root namespace and its selector (if any) selects the
// Gateway's workload labels (policy/authorization.ts appliesTo, the rule every workload policy uses).

import type { Problem } from '../config/problem.js';
import type { GatewaySpec, HTTPMatchRequest, VirtualServiceSpec } from '../model/istio.js';
import type { Resource } from '../model/resource.js';
import { appliesTo } from '../policy/authorization.js';
import { isClaimKey } from '../routing/claim-match.js';
import { resolveGatewayName } from '../routing/gateway-binding.js';
import { DEFAULT_ROOT_NAMESPACE } from '../telemetry/telemetry-policy.js';
import type { AnalysisContext } from './context.js';
import { boundGateways } from './context.js';
import { finding, MESSAGES } from './finding.js';

export function jwtClaimRouting(ctx: AnalysisContext): Problem[] {
  const out: Problem[] = [];
  const policies = ctx.resources.filter((r) => r.kind === 'RequestAuthentication');
  const gateways = new Map(ctx.gateways.map((g) => [`${g.metadata.namespace}/${g.metadata.name}`, g]));
  const authenticated = (gw: Resource<GatewaySpec>): boolean =>
    policies.some((p) => appliesTo(p, { namespace: gw.metadata.namespace, labels: gw.spec.selector ?? {} }, DEFAULT_ROOT_NAMESPACE));
  for (const vs of ctx.virtualServices) {
    const unauthenticated = boundGateways(vs)
      .filter((g) => g !== 'mesh')
      .map((g) => gateways.get(resolveGatewayName(g, vs.metadata.namespace)))
      .filter((g): g is Resource<GatewaySpec> => g !== undefined && !authenticated(g));
    if (unauthenticated.length === 0) continue;
    const names = unauthenticated.map((g) => `${g.metadata.namespace}/${g.metadata.name}`).join(', ');
    claimKeys(vs.spec).forEach(({ at, key }) => {
      out.push(finding(MESSAGES.JwtClaimBasedRoutingWithoutRequestAuthN, vs, at, `routes on the JWT claim ${JSON.stringify(key)} at gateway ${names}, which no RequestAuthentication applies to: no token is verified there, so this match never holds`, 'add a RequestAuthentication that selects the gateway workload'));
    });
  }
  return out;
}

/** Every `@request.auth.claims` key of the VirtualService's HTTP matches, with its field path. */
function claimKeys(spec: VirtualServiceSpec): Array<{ at: Array<string | number>; key: string }> {
  const out: Array<{ at: Array<string | number>; key: string }> = [];
  (Array.isArray(spec.http) ? spec.http : []).forEach((route, i) => {
    const matches: ReadonlyArray<HTTPMatchRequest | undefined> = Array.isArray(route?.match) ? route.match : [];
    matches.forEach((m, j) => {
      for (const field of ['headers', 'withoutHeaders'] as const) {
        for (const key of Object.keys(m?.[field] ?? {})) if (isClaimKey(key)) out.push({ at: ['spec', 'http', i, 'match', j, field, key], key });
      }
    });
  });
  return out;
}
