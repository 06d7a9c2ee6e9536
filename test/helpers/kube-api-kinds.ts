// What the Kubernetes API stand-in (kube-api.ts) serves: its collections, written out here rather than
// imported from the code under test, so that a wrong path there shows up, how objects are keyed
// and sent back, and which of them a list or watch selects (field and label selectors).

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
  { apiVersion: 'v1', kind: 'Node', plural: 'nodes', builtIn: true, clusterScoped: true },
  { apiVersion: 'apps/v1', kind: 'Deployment', plural: 'deployments', builtIn: true },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', plural: 'rolebindings', builtIn: true },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', plural: 'clusterrolebindings', builtIn: true, clusterScoped: true },
  { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', plural: 'mutatingwebhookconfigurations', builtIn: true, clusterScoped: true },
  { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', plural: 'endpointslices', builtIn: true },
  { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', plural: 'leases', builtIn: true },
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
  { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'BackendTLSPolicy', plural: 'backendtlspolicies', builtIn: false },
];

export type Obj = Record<string, unknown> & { metadata: Record<string, unknown> & { name: string; namespace: string } };

/** The object as sent: with its apiVersion and kind. */
export function withType(c: Collection, o: Obj): Obj {
  return { ...o, apiVersion: c.apiVersion, kind: c.kind };
}

/** `namespace/name`, or `/name` for a cluster-scoped kind. */
export function keyOf(c: Collection, namespace: string | undefined, name: string): string {
  return `${c.clusterScoped ? '' : (namespace ?? 'default')}/${name}`;
}

/** The collection, and for one object its name, that a URL path names; undefined when it names none. */
export function route(path: string): { collection: Collection; namespace: string | undefined; name?: string } | undefined {
  const m = /^\/(?:api\/(v1)|apis\/([^/]+\/[^/]+))(?:\/namespaces\/([^/]+))?\/([^/]+)(?:\/([^/]+))?$/.exec(path);
  if (!m) return undefined;
  const apiVersion = m[1] ?? m[2];
  // `/api/v1/namespaces/NAME` is one Namespace, not a collection in it.
  if (apiVersion === 'v1' && m[3] === undefined && m[4] === 'namespaces' && m[5] !== undefined) {
    return { collection: COLLECTIONS.find((c) => c.plural === 'namespaces')!, namespace: undefined, name: decodeURIComponent(m[5]) };
  }
  const collection = COLLECTIONS.find((c) => c.apiVersion === apiVersion && c.plural === m[4]);
  return collection ? { collection, namespace: m[3] === undefined ? undefined : decodeURIComponent(m[3]), ...(m[5] !== undefined ? { name: decodeURIComponent(m[5]) } : {}) } : undefined;
}

/** Field selectors as the API server reads them: comma-separated `path=value` / `path!=value` terms. */
export function fieldSelectorOf(text: string | undefined): (o: Obj) => boolean {
  if (!text) return () => true;
  const fieldValue = (o: Obj, path: string): unknown => path.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), o);
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
    const labels = (o.metadata.labels ?? {}) as Record<string, string>;
    return terms.every((t) => {
      const has = Object.hasOwn(labels, t.key);
      if (t.absent) return !has;
      if (t.op === undefined) return has;
      return t.op === '!=' ? labels[t.key] !== t.value : has && labels[t.key] === t.value;
    });
  };
}
