// What the Kubernetes API stand-in (kube-api.ts) serves: its collections, written out here rather
// than imported from the code under test (so a wrong path there shows up), and the list/watch
// selectors as kube-apiserver reads them.

export interface Collection {
  readonly apiVersion: string;
  readonly kind: string;
  readonly plural: string;
  /** Built-in kinds: the real server leaves apiVersion/kind off list items. */
  readonly builtIn: boolean;
  readonly clusterScoped?: boolean;
}

export const COLLECTIONS: readonly Collection[] = [
  { apiVersion: 'v1', kind: 'Service', plural: 'services', builtIn: true },
  { apiVersion: 'v1', kind: 'Pod', plural: 'pods', builtIn: true },
  { apiVersion: 'v1', kind: 'Endpoints', plural: 'endpoints', builtIn: true },
  { apiVersion: 'v1', kind: 'Secret', plural: 'secrets', builtIn: true },
  { apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps', builtIn: true },
  { apiVersion: 'v1', kind: 'ServiceAccount', plural: 'serviceaccounts', builtIn: true },
  { apiVersion: 'v1', kind: 'Namespace', plural: 'namespaces', builtIn: true, clusterScoped: true },
  { apiVersion: 'apps/v1', kind: 'Deployment', plural: 'deployments', builtIn: true },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', plural: 'rolebindings', builtIn: true },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', plural: 'clusterrolebindings', builtIn: true, clusterScoped: true },
  { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', plural: 'endpointslices', builtIn: true },
  { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', plural: 'ingresses', builtIn: true },
  { apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', plural: 'ingressclasses', builtIn: true, clusterScoped: true },
  ...['Gateway:gateways', 'VirtualService:virtualservices', 'DestinationRule:destinationrules', 'ServiceEntry:serviceentries', 'WorkloadEntry:workloadentries'].map((s) => {
    const [kind, plural] = s.split(':') as [string, string];
    return { apiVersion: 'networking.istio.io/v1', kind, plural, builtIn: false };
  }),
  { apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', plural: 'peerauthentications', builtIn: false },
  { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', plural: 'authorizationpolicies', builtIn: false },
  { apiVersion: 'cert-manager.io/v1', kind: 'Issuer', plural: 'issuers', builtIn: false },
  { apiVersion: 'cert-manager.io/v1', kind: 'ClusterIssuer', plural: 'clusterissuers', builtIn: false, clusterScoped: true },
  { apiVersion: 'cert-manager.io/v1', kind: 'Certificate', plural: 'certificates', builtIn: false },
  { apiVersion: 'telemetry.istio.io/v1', kind: 'Telemetry', plural: 'telemetries', builtIn: false },
  // The Gateway API (standard channel, and TLSRoute/TCPRoute of the experimental one), with status subresources.
  { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'GatewayClass', plural: 'gatewayclasses', builtIn: false, clusterScoped: true },
  ...['Gateway:gateways', 'HTTPRoute:httproutes', 'GRPCRoute:grpcroutes'].map((s) => {
    const [kind, plural] = s.split(':') as [string, string];
    return { apiVersion: 'gateway.networking.k8s.io/v1', kind, plural, builtIn: false };
  }),
  { apiVersion: 'gateway.networking.k8s.io/v1alpha2', kind: 'TLSRoute', plural: 'tlsroutes', builtIn: false },
  { apiVersion: 'gateway.networking.k8s.io/v1alpha2', kind: 'TCPRoute', plural: 'tcproutes', builtIn: false },
  { apiVersion: 'gateway.networking.k8s.io/v1beta1', kind: 'ReferenceGrant', plural: 'referencegrants', builtIn: false },
];

type Obj = Record<string, unknown>;

/** Field selectors as the API server reads them: comma-separated `path=value` / `path!=value` terms. */
export function fieldSelectorOf(text: string | undefined): (o: Obj) => boolean {
  if (!text) return () => true;
  const fieldValue = (o: Obj, path: string): unknown => path.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Obj)[k] : undefined), o);
  const terms = text.split(',').map((t) => {
    const m = /^([A-Za-z.]+)(!=|==|=)(.*)$/.exec(t.trim());
    if (!m) throw new Error(`bad field selector ${t}`);
    return { path: m[1]!, not: m[2] === '!=', value: m[3]! };
  });
  return (o) => terms.every((t) => (String(fieldValue(o, t.path) ?? '') === t.value) !== t.not);
}

/** Label selectors, the equality forms: `key`, `!key`, `key=value`, `key==value`, `key!=value`. */
export function labelSelectorOf(text: string | undefined): (o: Obj) => boolean {
  if (!text) return () => true;
  const terms = text.split(',').map((t) => {
    const m = /^(!?)([A-Za-z0-9._/-]+)(?:(!=|==|=)(.*))?$/.exec(t.trim());
    if (!m) throw new Error(`bad label selector ${t}`);
    return { absent: m[1] === '!', key: m[2]!, op: m[3], value: m[4] ?? '' };
  });
  return (o) => {
    const labels = ((o.metadata as Obj | undefined)?.labels ?? {}) as Record<string, string>;
    return terms.every((t) => {
      const has = Object.hasOwn(labels, t.key);
      if (t.absent) return !has;
      if (t.op === undefined) return has;
      return t.op === '!=' ? labels[t.key] !== t.value : has && labels[t.key] === t.value;
    });
  };
}
