// BackendTLSPolicy → what it means, as Istio reads it: for each target (a Service, or one named port
// of it) TLS origination with SNI `validation.hostname`, the server's certificate checked against
// the ConfigMap CA (`ca.crt` of the first caCertificateRef) or the system roots
// (`wellKnownCACertificates: System`), and against `subjectAltNames` when given, else the hostname.
// Along with it the policy's status: one ancestor per targetRef (the Service, as Istio reports it for
// the mesh) and one per Gateway whose routes send traffic to a target, with Accepted and ResolvedRefs.
//
// A CA reference that cannot be used (missing ConfigMap, no `ca.crt`, not a certificate, a kind
// other than ConfigMap) keeps the TLS but makes every connection fail (503 UF), as the API asks,
// never plaintext. Of several policies for one target the oldest wins (creationTimestamp, then
// name); the others are Accepted False (Conflicted). backend-tls-rules.ts turns the winners into the
// DestinationRules the cluster builder reads.

import { X509Certificate } from 'node:crypto';
import type { BackendTLSPolicySpec } from '../model/gateway-api.js';
import type { ClientTlsSettings } from '../model/istio.js';
import type { FieldPath, Resource } from '../model/resource.js';
import { compareByCreation } from '../model/resource.js';
import { condition, type Condition } from './conditions.js';

export interface AncestorStatus {
  readonly ancestorRef: { readonly group: string; readonly kind: string; readonly name: string; readonly namespace?: string; readonly sectionName?: string };
  /** Where a problem of this ancestor is reported in the policy. */
  readonly at: FieldPath;
  readonly conditions: Condition[];
}

export interface PolicyStatus {
  readonly resource: Resource;
  readonly ancestors: AncestorStatus[];
}

/** One target of one policy that can be applied: the Service, its port name (or all ports), the TLS. */
export interface TargetTls {
  readonly policy: Resource<BackendTLSPolicySpec>;
  readonly service: Resource;
  readonly sectionName: string | undefined;
  readonly tls: ClientTlsSettings;
  /** What the TLS was made of (the policy, its CA ConfigMap): the same ones give the same rule. */
  readonly inputs: readonly Resource[];
}

export interface ResolvedPolicies {
  readonly statuses: readonly PolicyStatus[];
  /** The winning target of each Service (and port name), oldest policy first. */
  readonly targets: readonly TargetTls[];
}

/** `ns/name` of the Services a Gateway's routes send traffic to → those Gateways (`ns/name`). */
export type GatewaysByService = ReadonlyMap<string, ReadonlySet<string>>;

export function resolveBackendTls(resources: readonly Resource[], gatewaysByService: GatewaysByService = new Map()): ResolvedPolicies {
  const policies = resources.filter((r): r is Resource<BackendTLSPolicySpec> => r.kind === 'BackendTLSPolicy').sort(compareByCreation);
  if (policies.length === 0) return { statuses: [], targets: [] };
  const byName = (kind: string): Map<string, Resource> => new Map(resources.filter((r) => r.kind === kind).map((r) => [`${r.metadata.namespace}/${r.metadata.name}`, r]));
  const services = byName('Service');
  const configMaps = byName('ConfigMap');
  const taken = new Map<string, Resource>();
  const statuses: PolicyStatus[] = [];
  const targets: TargetTls[] = [];
  for (const policy of policies) {
    const ns = policy.metadata.namespace;
    const ca = caOf(policy, configMaps);
    const v = policy.spec.validation;
    const tls: ClientTlsSettings = {
      mode: 'SIMPLE',
      sni: v.hostname,
      ...(v.subjectAltNames && v.subjectAltNames.length > 0 ? { subjectAltNames: v.subjectAltNames.map((s) => (s.type === 'URI' ? s.uri ?? '' : s.hostname ?? '')) } : {}),
      ...ca.tls,
    };
    const ancestors: AncestorStatus[] = [];
    const gateways = new Map<string, Condition[]>();
    policy.spec.targetRefs.forEach((t, i) => {
      const at: FieldPath = ['spec', 'targetRefs', i];
      const section = t.sectionName ? t.sectionName : undefined;
      const conditions = [...ca.conditions];
      const service = t.group === '' && t.kind === 'Service' ? services.get(`${ns}/${t.name}`) : undefined;
      const missing =
        t.group !== '' || t.kind !== 'Service'
          ? `${t.group ? `${t.group}/` : ''}${t.kind} ${t.name} is not a Service, the only kind a BackendTLSPolicy targets here`
          : !service
            ? `Service ${ns}/${t.name} does not exist`
            : section && !servicePortNumber(service, section)
              ? `Service ${ns}/${t.name} has no port named ${section}`
              : undefined;
      const key = `${ns}/${t.name}#${section ?? ''}`;
      const winner = taken.get(key);
      if (missing) setAccepted(conditions, 'TargetNotFound', `targetRef: ${missing}`);
      else if (winner) setAccepted(conditions, 'Conflicted', `BackendTLSPolicy ${winner.metadata.namespace}/${winner.metadata.name} is older and applies to ${t.name}${section ? ` port ${section}` : ''}`);
      else {
        taken.set(key, policy);
        targets.push({ policy, service: service!, sectionName: section, tls, inputs: [policy, ...ca.inputs] });
        for (const g of gatewaysByService.get(`${ns}/${t.name}`) ?? []) if (!gateways.has(g)) gateways.set(g, conditions);
      }
      ancestors.push({ ancestorRef: { group: '', kind: 'Service', name: t.name, ...(section ? { sectionName: section } : {}) }, at, conditions });
    });
    for (const [g, conditions] of [...gateways].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const [gns, gname] = g.split('/') as [string, string];
      ancestors.push({ ancestorRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: gname, namespace: gns }, at: ['spec', 'targetRefs'], conditions: [...conditions] });
    }
    statuses.push({ resource: policy, ancestors });
  }
  return { statuses, targets };
}

/** The port number of a Service's port named `name`, if it has one. */
export function servicePortNumber(service: Resource, name: string): number | undefined {
  const ports = (service.spec as { ports?: Array<{ name?: string; port?: number }> } | undefined)?.ports ?? [];
  return ports.find((p) => p.name === name)?.port;
}

function setAccepted(conditions: Condition[], reason: string, message: string): void {
  const i = conditions.findIndex((c) => c.type === 'Accepted');
  conditions[i] = condition('Accepted', false, reason, message);
}

interface CaResult {
  readonly tls: Pick<ClientTlsSettings, 'caCertificatesPem' | 'unusable'>;
  readonly conditions: readonly Condition[];
  readonly inputs: readonly Resource[];
}

const VALID = 'the policy is valid';

/** The CA the backend's certificate must chain to, and the conditions that say whether it could be had. */
function caOf(policy: Resource<BackendTLSPolicySpec>, configMaps: ReadonlyMap<string, Resource>): CaResult {
  const v = policy.spec.validation;
  const ok = (note = ''): Condition[] => [condition('Accepted', true, 'Accepted', `${VALID}${note}`), condition('ResolvedRefs', true, 'ResolvedRefs', 'every reference resolved')];
  const refs = v.caCertificateRefs ?? [];
  // System: the Node.js root store, what `tls` trusts when given no CA.
  if (refs.length === 0) return { tls: {}, conditions: ok(), inputs: [] };
  const ref = refs[0]!;
  const note = refs.length > 1 ? '; only the first caCertificateRef is used' : '';
  const bad = (reason: 'InvalidCACertificateRef' | 'InvalidKind', message: string, inputs: readonly Resource[]): CaResult => ({
    tls: { unusable: `BackendTLSPolicy ${policy.metadata.namespace}/${policy.metadata.name}: ${message}` },
    conditions: [condition('Accepted', false, 'NoValidCACertificate', message), condition('ResolvedRefs', false, reason, message)],
    inputs,
  });
  if (ref.group !== '' || ref.kind !== 'ConfigMap') return bad('InvalidKind', `caCertificateRef ${ref.group ? `${ref.group}/` : ''}${ref.kind} ${ref.name} is not a ConfigMap, the only kind supported`, []);
  const shown = `ConfigMap ${policy.metadata.namespace}/${ref.name}`;
  const cm = configMaps.get(`${policy.metadata.namespace}/${ref.name}`);
  if (!cm) return bad('InvalidCACertificateRef', `caCertificateRef ${shown} does not exist`, []);
  const data = (cm.raw.data ?? {}) as Record<string, unknown>;
  const pem = data['ca.crt'];
  if (typeof pem !== 'string') return bad('InvalidCACertificateRef', `caCertificateRef ${shown} has no key ca.crt`, [cm]);
  const problem = pemProblem(pem);
  if (problem) return bad('InvalidCACertificateRef', `caCertificateRef ${shown}: ca.crt ${problem}`, [cm]);
  return { tls: { caCertificatesPem: pem }, conditions: ok(note), inputs: [cm] };
}

/** Why a `ca.crt` text is no PEM bundle of certificates, or undefined when it is one. */
function pemProblem(pem: string): string | undefined {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) return 'holds no PEM certificate';
  for (const b of blocks) {
    try {
      new X509Certificate(b);
    } catch (err) {
      return `holds a certificate that cannot be read: ${(err as Error).message}`;
    }
  }
  return undefined;
}
