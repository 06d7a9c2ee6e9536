// Which apiVersion/kind pairs meshgate reads. Anything else is reported and ignored, so a folder that
// also holds unrelated manifests still loads; the Kubernetes kinds that every sample beside Istio's
// config holds (ServiceAccounts, RBAC) are ignored without a word, as Istio ignores them.

import { closest } from './suggest.js';

const KINDS: Readonly<Record<string, { readonly group: string; readonly versions: readonly string[] }>> = {
  Gateway: { group: 'networking.istio.io', versions: ['v1', 'v1beta1', 'v1alpha3'] },
  VirtualService: { group: 'networking.istio.io', versions: ['v1', 'v1beta1', 'v1alpha3'] },
  DestinationRule: { group: 'networking.istio.io', versions: ['v1', 'v1beta1', 'v1alpha3'] },
  ServiceEntry: { group: 'networking.istio.io', versions: ['v1', 'v1beta1', 'v1alpha3'] },
  WorkloadEntry: { group: 'networking.istio.io', versions: ['v1', 'v1beta1', 'v1alpha3'] },
  // What a sidecar imports (egress.hosts); the control plane narrows each sidecar's configuration by it.
  Sidecar: { group: 'networking.istio.io', versions: ['v1', 'v1beta1', 'v1alpha3'] },
  PeerAuthentication: { group: 'security.istio.io', versions: ['v1', 'v1beta1'] },
  AuthorizationPolicy: { group: 'security.istio.io', versions: ['v1', 'v1beta1'] },
  RequestAuthentication: { group: 'security.istio.io', versions: ['v1', 'v1beta1'] },
  Service: { group: '', versions: ['v1'] },
  Endpoints: { group: '', versions: ['v1'] },
  Pod: { group: '', versions: ['v1'] },
  Secret: { group: '', versions: ['v1'] },
  // Only the mesh config (`istio` in istio-system) is read; other ConfigMaps load and are ignored.
  ConfigMap: { group: '', versions: ['v1'] },
  Telemetry: { group: 'telemetry.istio.io', versions: ['v1', 'v1alpha1'] },
  EndpointSlice: { group: 'discovery.k8s.io', versions: ['v1'] },
  // cert-manager's own resources: a Certificate whose secretName a Gateway server uses is issued by the gateway.
  Issuer: { group: 'cert-manager.io', versions: ['v1'] },
  ClusterIssuer: { group: 'cert-manager.io', versions: ['v1'] },
  Certificate: { group: 'cert-manager.io', versions: ['v1'] },
  // Read for its local rate limit patches only (policy/envoy-filter-patches.ts); other patches are warnings.
  EnvoyFilter: { group: 'networking.istio.io', versions: ['v1alpha3'] },
  // meshgate's own: what Istio only offers through an EnvoyFilter and an external service.
  RateLimitPolicy: { group: 'meshgate.io', versions: ['v1'] },
  // The Kubernetes Gateway API (standard channel; TLSRoute, TCPRoute and ReferenceGrant also at their
  // older versions, whose schemas are the same).
  GatewayClass: { group: 'gateway.networking.k8s.io', versions: ['v1', 'v1beta1'] },
  KubernetesGateway: { group: 'gateway.networking.k8s.io', versions: ['v1', 'v1beta1'] },
  HTTPRoute: { group: 'gateway.networking.k8s.io', versions: ['v1', 'v1beta1'] },
  GRPCRoute: { group: 'gateway.networking.k8s.io', versions: ['v1'] },
  TLSRoute: { group: 'gateway.networking.k8s.io', versions: ['v1', 'v1alpha2', 'v1alpha3'] },
  TCPRoute: { group: 'gateway.networking.k8s.io', versions: ['v1', 'v1alpha2'] },
  ReferenceGrant: { group: 'gateway.networking.k8s.io', versions: ['v1', 'v1beta1', 'v1alpha2'] },
  // v1 since Gateway API v1.4 (Istio 1.28 reads it), v1alpha3 before: the same fields.
  BackendTLSPolicy: { group: 'gateway.networking.k8s.io', versions: ['v1', 'v1alpha3'] },
  // Kubernetes Ingress, served as Istio serves it (core/ingress/).
  Ingress: { group: 'networking.k8s.io', versions: ['v1'] },
  IngressClass: { group: 'networking.k8s.io', versions: ['v1'] },
  // Namespace labels decide a listener's allowedRoutes selector.
  Namespace: { group: '', versions: ['v1'] },
  // Workload controllers: only their pod template's labels are read, so that a selector
  // (AuthorizationPolicy, DestinationRule workloadSelector …) finds the workloads of the
  // Deployments beside it in a folder before any Pod exists (analyze, IST0127).
  Deployment: { group: 'apps', versions: ['v1'] },
  StatefulSet: { group: 'apps', versions: ['v1'] },
  DaemonSet: { group: 'apps', versions: ['v1'] },
  ReplicaSet: { group: 'apps', versions: ['v1'] },
  Job: { group: 'batch', versions: ['v1'] },
  CronJob: { group: 'batch', versions: ['v1'] },
  ReplicationController: { group: '', versions: ['v1'] },
};

/**
 * Kubernetes kinds that say nothing about traffic or policy and that the manifests applied with
 * Istio's config routinely hold (`kubectl apply -f samples/httpbin/httpbin.yaml` creates a
 * ServiceAccount): ignored quietly, by group/kind.
 */
const QUIET: ReadonlySet<string> = new Set([
  '/ServiceAccount',
  '/PersistentVolumeClaim',
  '/LimitRange',
  '/ResourceQuota',
  'rbac.authorization.k8s.io/Role',
  'rbac.authorization.k8s.io/RoleBinding',
  'rbac.authorization.k8s.io/ClusterRole',
  'rbac.authorization.k8s.io/ClusterRoleBinding',
  // Enforced by the network plugin, below the mesh (Istio's egress gateway task applies one).
  'networking.k8s.io/NetworkPolicy',
  'policy/PodDisruptionBudget',
  'autoscaling/HorizontalPodAutoscaler',
]);

/**
 * The kind a resource travels as inside meshgate: the Gateway API's Gateway becomes
 * `KubernetesGateway` (Istio's own name for it) so that it never meets code written for Istio's.
 */
export function internalKind(apiVersion: string, kind: string): string {
  return kind === 'Gateway' && apiVersion.startsWith('gateway.networking.k8s.io/') ? 'KubernetesGateway' : kind;
}

/** Kinds that share a name with ours but belong to other APIs (Gateway API's Gateway) are 'unknown'. */
export function knownKind(apiVersion: string, kind: string): 'known' | 'unknown' | 'unsupported-version' | 'quiet' {
  const slash = apiVersion.lastIndexOf('/');
  const group = slash < 0 ? '' : apiVersion.slice(0, slash);
  if (QUIET.has(`${group}/${kind}`)) return 'quiet';
  const spec = KINDS[internalKind(apiVersion, kind)];
  if (!spec) return 'unknown';
  const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
  if (group !== spec.group) return 'unknown';
  return spec.versions.includes(version) ? 'known' : 'unsupported-version';
}

/**
 * For a kind knownKind calls 'unknown', what was probably meant: a kind meshgate reads in the same
 * group spelt nearly alike (`VirtualServce`), or the same kind's own apiVersion when the group is
 * misspelt (`networking.isito.io/v1`). A typo'd kind is otherwise a resource silently left out.
 */
/** Istio kinds meshgate knows and does not run: what that means for the config that relies on them. */
const UNRUN: Readonly<Record<string, string>> = {
  // Istio's own samples install with one; what it sets for the mesh (extensionProviders, above all)
  // is what their Telemetry and AuthorizationPolicy resources name.
  'install.istio.io/IstioOperator': "meshgate reads the mesh config from the istio ConfigMap of istio-system (data.mesh); copy this IstioOperator's spec.meshConfig there",
  'extensions.istio.io/WasmPlugin': "meshgate runs no Wasm plugins: the plugin's filter is not in the chain, and what it would set (attributegen's filter_state for Telemetry tagOverrides) stays unset",
};

export function unrunKind(apiVersion: string, kind: string): string | undefined {
  const slash = apiVersion.lastIndexOf('/');
  return UNRUN[`${slash < 0 ? '' : apiVersion.slice(0, slash)}/${kind}`];
}

export function meantKind(apiVersion: string, kind: string): string | undefined {
  const slash = apiVersion.lastIndexOf('/');
  const group = slash < 0 ? '' : apiVersion.slice(0, slash);
  const spec = KINDS[internalKind(apiVersion, kind)];
  // Only a group spelt nearly alike: a Service of serving.knative.dev is another API, not a typo.
  if (spec && spec.group !== group && closest(group, [spec.group]) !== undefined) return `${kind} is ${spec.group === '' ? '' : `${spec.group}/`}${spec.versions[0]}`;
  const sameGroup = Object.entries(KINDS).filter(([, s]) => s.group === group).map(([k]) => (k === 'KubernetesGateway' ? 'Gateway' : k));
  const near = closest(kind, sameGroup);
  return near !== undefined && near !== kind ? `did you mean \`${near}\`?` : undefined;
}
