// What `meshgate analyze` adds for the Gateway API beyond gateway-api-references.ts: every status
// condition a cluster would show as wrong (a route whose hostnames meet no listener, one the
// listeners' allowedRoutes refuse, a listener with an unsupported protocol, a conflict, a missing or
// unusable certificateRef …), as MG0006 GatewayApiCondition at the field it concerns. The reasons that
// analyzer reports with Istio's codes (a parent or backend that does not exist, a reference no grant
// permits) are left to it. A gateway's build reports the same conditions on every reload (snapshot
// problems), so this is not in ANALYZERS: it would say each of them twice there.

import type { Problem } from '../config/problem.js';
import { statusProblems } from '../gateway-api/conditions.js';
import { translateGatewayApi } from '../gateway-api/translate.js';
import { GATEWAY_API_GROUP } from '../model/gateway-api.js';
import type { Resource } from '../model/resource.js';
import { buildRegistry } from '../registry/build.js';
import { MESSAGES } from './finding.js';

const REPORTED_AS_REFERENCES = new Set(['NoMatchingParent', 'BackendNotFound', 'RefNotPermitted']);

export function gatewayApiStatusFindings(resources: readonly Resource[], domain = 'cluster.local'): Problem[] {
  if (!resources.some((r) => r.apiVersion.startsWith(`${GATEWAY_API_GROUP}/`))) return [];
  const { status } = translateGatewayApi({ resources, registry: buildRegistry(resources, { domain }).registry, domain });
  return statusProblems(status, (c) => REPORTED_AS_REFERENCES.has(c.reason)).map((p) => ({ ...p, code: MESSAGES.GatewayApiCondition.code }));
}
