// Gateway API references that point at nothing, as the route's status would say once applied:
// IST0101 ReferencedResourceNotFound for a parentRef to a Gateway (or a listener sectionName) that
// does not exist and for a backendRef to a Service (or port) that does not exist; MG0002
// ReferenceNotPermitted for a backendRef into another namespace that no ReferenceGrant there allows
// (the route answers 500 for it). Backends are judged by resolveBackend(), the very code that
// translates routes, so analyze and traffic cannot disagree. A parentRef to a Service (mesh routes)
// is IST0101 when the Service, or the port it names, does not exist; so is a listener's certificateRef
// to a Secret that does not exist, as for an Istio Gateway's credentialName.

import type { Problem } from '../config/problem.js';
import { GATEWAY_API_GROUP, K8S_GATEWAY_KIND, ROUTE_KINDS, type BackendRef, type HTTPRouteFilter, type K8sGatewaySpec, type ParentReference, type ReferenceGrantSpec, type RouteKind } from '../model/gateway-api.js';
import type { FieldPath, Resource } from '../model/resource.js';
import { isServiceParent } from '../gateway-api/attach.js';
import { resolveBackend } from '../gateway-api/backends.js';
import { ReferenceGrants } from '../gateway-api/reference-grants.js';
import type { AnalysisContext } from './context.js';
import { finding, MESSAGES } from './finding.js';

interface AnyRoute {
  readonly parentRefs?: readonly ParentReference[];
  readonly rules?: ReadonlyArray<{ readonly backendRefs?: readonly BackendRef[]; readonly filters?: readonly HTTPRouteFilter[] }>;
}

export function gatewayApiReferences(ctx: AnalysisContext): Problem[] {
  const out: Problem[] = [];
  const gateways = new Map<string, Resource<K8sGatewaySpec>>();
  for (const r of ctx.resources) if (r.kind === K8S_GATEWAY_KIND) gateways.set(`${r.metadata.namespace}/${r.metadata.name}`, r as Resource<K8sGatewaySpec>);
  const grants = new ReferenceGrants(ctx.resources.filter((r) => r.kind === 'ReferenceGrant') as Resource<ReferenceGrantSpec>[]);
  for (const gw of gateways.values()) certificateRefs(ctx, gw, out);
  for (const r of ctx.resources) {
    if (!(ROUTE_KINDS as readonly string[]).includes(r.kind)) continue;
    const route = r as Resource<AnyRoute>;
    const kind = r.kind as RouteKind;
    const ns = r.metadata.namespace;
    (route.spec.parentRefs ?? []).forEach((p, i) => {
      if (p && isServiceParent(p)) {
        serviceParent(ctx, r, p, i, out);
        return;
      }
      if (!p || (p.group ?? GATEWAY_API_GROUP) !== GATEWAY_API_GROUP || (p.kind ?? 'Gateway') !== 'Gateway') return;
      const key = `${p.namespace ?? ns}/${p.name}`;
      const gw = gateways.get(key);
      if (!gw) {
        out.push(finding(MESSAGES.ReferencedResourceNotFound, r, ['spec', 'parentRefs', i, 'name'], `referenced Gateway not found: "${key}"`, 'create that Gateway (gateway.networking.k8s.io), or correct the name and namespace; until then the route serves nothing'));
        return;
      }
      if (p.sectionName !== undefined && !(gw.spec.listeners ?? []).some((l) => l?.name === p.sectionName)) {
        out.push(finding(MESSAGES.ReferencedResourceNotFound, r, ['spec', 'parentRefs', i, 'sectionName'], `referenced listener not found: "${p.sectionName}" of Gateway ${key}`, `use one of the Gateway's listener names (${(gw.spec.listeners ?? []).map((l) => l?.name).join(', ')})`));
      }
    });
    const onGateway = (route.spec.parentRefs ?? []).some((p) => p && !isServiceParent(p));
    const check = (ref: BackendRef | undefined, at: FieldPath): void => {
      if (!ref || typeof ref.name !== 'string') return;
      // Only a route with a Gateway parent needs grants for its backends (backends.ts).
      const resolved = resolveBackend(ref, { routeKind: kind, routeNamespace: ns, registry: ctx.registry, grants: onGateway ? grants : undefined, domain: ctx.domain });
      if (resolved.ok || resolved.reason === 'InvalidKind') return;
      if (resolved.reason === 'RefNotPermitted') {
        out.push(finding(MESSAGES.ReferenceNotPermitted, r, at, resolved.message, `add a ReferenceGrant in namespace ${ref.namespace} from ${kind} in ${ns} to Service; until then requests for this backend get 500`));
      } else {
        out.push(finding(MESSAGES.ReferencedResourceNotFound, r, at, `referenced backend not found: ${resolved.message}`, 'create the Service (with that port), or correct the backendRef; until then requests for it get 500'));
      }
    };
    (route.spec.rules ?? []).forEach((rule, i) => {
      (rule?.backendRefs ?? []).forEach((b, j) => check(b, ['spec', 'rules', i, 'backendRefs', j]));
      (rule?.filters ?? []).forEach((f, j) => check(f?.requestMirror?.backendRef, ['spec', 'rules', i, 'filters', j, 'requestMirror', 'backendRef']));
    });
  }
  return out;
}

/** A listener's `certificateRefs` to a Secret that does not exist (when that can be known: a cluster, or `--certs DIR`). */
function certificateRefs(ctx: AnalysisContext, gw: Resource<K8sGatewaySpec>, out: Problem[]): void {
  const exists = ctx.options.credentialExists;
  if (!exists) return;
  (gw.spec.listeners ?? []).forEach((l, i) => {
    (l?.tls?.certificateRefs ?? []).forEach((ref, j) => {
      if (!ref || typeof ref.name !== 'string' || (ref.group ?? '') !== '' || (ref.kind ?? 'Secret') !== 'Secret') return;
      const ns = ref.namespace ?? gw.metadata.namespace;
      if (exists(ns, ref.name)) return;
      out.push(finding(MESSAGES.ReferencedResourceNotFound, gw, ['spec', 'listeners', i, 'tls', 'certificateRefs', j, 'name'], `referenced Secret not found: "${ns}/${ref.name}"`, `create the Secret (kubectl create secret tls ...) or the folder certs/${ref.name}/ with tls.crt and tls.key; until then listener ${l.name} cannot complete a handshake`));
    });
  });
}

/** A `group: "", kind: Service` parentRef: the Service and its port must exist for sidecars to apply the route. */
function serviceParent(ctx: AnalysisContext, r: Resource, p: ParentReference, i: number, out: Problem[]): void {
  const ns = p.namespace ?? r.metadata.namespace;
  const service = ctx.registry.lookup(`${p.name}.${ns}.svc.${ctx.domain}`.toLowerCase());
  if (!service || service.kind !== 'Service') {
    out.push(finding(MESSAGES.ReferencedResourceNotFound, r, ['spec', 'parentRefs', i, 'name'], `referenced Service not found: "${ns}/${p.name}"`, 'create that Service, or correct the name and namespace; until then sidecars do not apply the route'));
    return;
  }
  if (p.port !== undefined && !service.ports.some((sp) => sp.number === p.port)) {
    out.push(finding(MESSAGES.ReferencedResourceNotFound, r, ['spec', 'parentRefs', i, 'port'], `Service ${ns}/${p.name} has no port ${p.port} (ports: ${service.ports.map((sp) => sp.number).join(', ')})`, 'use one of the Service\'s ports, or leave port out to route every port'));
  }
}
