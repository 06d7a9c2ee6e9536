// What every analyzer looks at, built once per run from the valid resources: the service registry
// (Services and ServiceEntries), DestinationRule subsets by host, Gateways by namespace/name, and
// the labels of every workload a selector could pick.

import type { DestinationRuleSpec, GatewaySpec, Labels, VirtualServiceSpec } from '../model/istio.js';
import type { Resource } from '../model/resource.js';
import { buildRegistry } from '../registry/build.js';
import { resolveShortName } from '../registry/hostname.js';
import type { Registry } from '../registry/types.js';
import { worldOf, type World } from './per-virtual-service.js';

export interface AnalysisOptions {
  /** Cluster domain for short names (default cluster.local). */
  readonly domain?: string;
  /** Labels of the gateway processes that Gateways select (file mode has no gateway Pods to read). */
  readonly gatewayLabels?: readonly Labels[];
  /**
   * Whether a TLS credential exists (a Secret, or a folder under the certs directory); undefined
   * when it cannot be known here, and then credentialNames are not checked.
   */
  readonly credentialExists?: (namespace: string, name: string) => boolean;
  /** The registry of exactly these resources and domain, when the caller already built it (a reload). */
  readonly registry?: Registry;
}

export interface AnalysisContext {
  readonly resources: readonly Resource[];
  readonly registry: Registry;
  readonly domain: string;
  readonly virtualServices: readonly Resource<VirtualServiceSpec>[];
  readonly gateways: readonly Resource<GatewaySpec>[];
  readonly destinationRules: readonly Resource<DestinationRuleSpec>[];
  /** Every workload's labels and namespace: Pods, pod templates, WorkloadEntries, service endpoints, gateway processes. */
  readonly workloads: ReadonlyArray<{ readonly namespace: string; readonly labels: Labels }>;
  readonly options: AnalysisOptions;
  /** `ns/name` of a Gateway named by a VirtualService in `namespace` (`name` alone means its own namespace). */
  gateway(ref: string, namespace: string): Resource<GatewaySpec> | undefined;
  /** The host a resource in `namespace` means by `host` (short names resolved, lower-cased). */
  fqdn(host: string, namespace: string): string;
  /** Everything but the VirtualServices: the same object while that is unchanged (per-virtual-service.ts). */
  readonly world: World;
}

export function analysisContext(resources: readonly Resource[], options: AnalysisOptions = {}): AnalysisContext {
  const domain = options.domain ?? 'cluster.local';
  const registry = options.registry ?? buildRegistry(resources, { domain }).registry;
  const ofKind = <S>(kind: string) => resources.filter((r) => r.kind === kind) as Resource<S>[];
  const gateways = ofKind<GatewaySpec>('Gateway');
  const byRef = new Map<string, Resource<GatewaySpec>>(gateways.map((g) => [`${g.metadata.namespace}/${g.metadata.name}`, g]));
  const workloads: Array<{ namespace: string; labels: Labels }> = [];
  for (const r of resources) {
    if (r.kind === 'Pod') workloads.push({ namespace: r.metadata.namespace, labels: r.metadata.labels });
    const template = podTemplateLabels(r);
    if (template) workloads.push({ namespace: r.metadata.namespace, labels: template });
    if (r.kind === 'WorkloadEntry') {
      const labels = (r.spec as { labels?: Labels } | null)?.labels ?? {};
      workloads.push({ namespace: r.metadata.namespace, labels: { ...r.metadata.labels, ...labels } });
    }
  }
  for (const s of registry.services.values()) for (const e of s.endpoints) workloads.push({ namespace: e.namespace, labels: e.labels });
  for (const labels of options.gatewayLabels ?? []) workloads.push({ namespace: '*', labels });
  return {
    resources,
    registry,
    domain,
    virtualServices: ofKind<VirtualServiceSpec>('VirtualService'),
    gateways,
    destinationRules: ofKind<DestinationRuleSpec>('DestinationRule'),
    workloads,
    options,
    gateway: (ref, namespace) => byRef.get(ref.includes('/') ? ref : `${namespace}/${ref}`),
    fqdn: (host, namespace) => resolveShortName(host, namespace, domain).toLowerCase(),
    world: worldOf(resources, registry, domain, options),
  };
}

/** The labels a workload controller (Deployment, CronJob …) gives the pods it runs; undefined for other kinds. */
function podTemplateLabels(r: Resource): Labels | undefined {
  if (!CONTROLLERS.has(r.kind)) return undefined;
  const spec = r.spec as { template?: PodTemplate; jobTemplate?: { spec?: { template?: PodTemplate } } } | null;
  const template = r.kind === 'CronJob' ? spec?.jobTemplate?.spec?.template : spec?.template;
  const labels: unknown = template?.metadata?.labels;
  if (!labels || typeof labels !== 'object') return undefined;
  return Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, String(v)]));
}

interface PodTemplate {
  readonly metadata?: { readonly labels?: unknown };
}

const CONTROLLERS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'CronJob', 'ReplicationController']);

/** The gateways a VirtualService binds to: `mesh` when it names none. */
export function boundGateways(vs: Resource<VirtualServiceSpec>): readonly string[] {
  const g = vs.spec.gateways;
  return Array.isArray(g) && g.length > 0 ? g : ['mesh'];
}
