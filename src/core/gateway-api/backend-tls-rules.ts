// The DestinationRules BackendTLSPolicies stand for, as Istio makes them: one per target Service,
// its top-level `tls` from the policy that targets the whole Service and a port-level `tls` for each
// one that names a port (`sectionName`). They join the user's DestinationRules ahead of all of them
// (the oldest rule's trafficPolicy is the one kept for a host), so for a Service that has both, the
// policy's TLS is used and the user's rule adds its subsets, as in Istio, which synthesizes its rule
// without a creation time. Gateways and sidecars alike read them: Istio applies the policy to mesh
// traffic too.
//
// A rule is the same object from one build to the next while its policies, CA ConfigMaps and
// Service are, so the DestinationRule index and the clusters built from it are kept (pass-reuse.ts).

import type { DestinationRuleSpec, PortTrafficPolicy } from '../model/istio.js';
import type { FieldPath, Resource } from '../model/resource.js';
import { sameItems } from '../registry/kube-services.js';
import { resolveBackendTls, servicePortNumber, type TargetTls } from './backend-tls.js';

/** Before every timestamp a user rule can carry, and before every file's resources (order). */
const FIRST = '1970-01-01T00:00:00Z';

const made = new WeakMap<Resource, { readonly inputs: readonly Resource[]; readonly rule: Resource<DestinationRuleSpec> }>();

export function backendTlsDestinationRules(resources: readonly Resource[], domain: string): Resource<DestinationRuleSpec>[] {
  const byService = new Map<Resource, TargetTls[]>();
  for (const t of resolveBackendTls(resources).targets) byService.set(t.service, [...(byService.get(t.service) ?? []), t]);
  return [...byService].map(([service, targets]) => {
    const inputs = [service, ...targets.flatMap((t) => t.inputs)];
    const known = made.get(service);
    if (known && sameItems(known.inputs, inputs)) return known.rule;
    const rule = ruleFor(service, targets, domain);
    made.set(service, { inputs, rule });
    return rule;
  });
}

function ruleFor(service: Resource, targets: readonly TargetTls[], domain: string): Resource<DestinationRuleSpec> {
  const whole = targets.find((t) => t.sectionName === undefined);
  const ports: PortTrafficPolicy[] = targets.flatMap((t) => (t.sectionName === undefined ? [] : [{ port: { number: servicePortNumber(service, t.sectionName)! }, tls: t.tls }]));
  const first = whole ?? targets[0]!;
  const policies = [...new Set(targets.map((t) => `${t.policy.metadata.namespace}/${t.policy.metadata.name}`))];
  const spec: DestinationRuleSpec = {
    host: `${service.metadata.name}.${service.metadata.namespace}.svc.${domain}`,
    trafficPolicy: { ...(whole ? { tls: whole.tls } : {}), ...(ports.length > 0 ? { portLevelSettings: ports } : {}) },
  };
  const origin = first.policy.origin;
  return Object.freeze({
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: {
      // Names the policies, so that `explain` and logs that name the rule point at them.
      name: `${service.metadata.name}~BackendTLSPolicy:${policies.join(',')}`,
      namespace: service.metadata.namespace,
      labels: {},
      annotations: {},
      creationTimestamp: FIRST,
    },
    spec,
    origin: { ...origin, order: -1, lineOf: (p: FieldPath) => origin.lineOf(p[0] === 'spec' ? ['spec', 'validation'] : p) },
    raw: {},
  });
}
