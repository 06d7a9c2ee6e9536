// The Kubernetes API collections KubeSource watches, and how the objects read from them become
// Resources: the same shape the YAML loader makes, with a `kube:Kind/namespace/name` origin instead
// of file:line, so problems point at the object a person would `kubectl edit`.

import { resourceFromObject, isRecord, type LoadResult } from '../config/load.js';
import type { Problem } from '../config/problem.js';
import { policyCaConfigMapNames } from '../model/gateway-api.js';
import type { Resource, TextStart } from '../model/resource.js';

export interface KubeKind {
  readonly kind: string;
  /** `v1`, `discovery.k8s.io/v1`, `networking.istio.io/v1`. */
  readonly apiVersion: string;
  readonly plural: string;
  /** Served only when its CustomResourceDefinition is installed; a 404 then means "none". */
  readonly crd: boolean;
  /** Cluster-scoped kinds (ClusterIssuer) are listed once, whatever namespaces are watched. */
  readonly clusterScoped?: boolean;
  /**
   * Only this one object is read (by a field selector, in its namespace): the mesh config is the
   * ConfigMap `istio` in istio-system, and no other ConfigMap is any of the proxy's business.
   */
  readonly only?: { readonly namespace: string; readonly name: string };
  /**
   * Of the objects listed, only those a BackendTLSPolicy of their namespace names as its CA
   * (`caCertificateRefs`) are read: the ConfigMaps beside them are none of the proxy's business.
   */
  readonly onlyCaOfPolicies?: true;
  /**
   * An older version of a kind listed before it: its objects are read only when the newer version's
   * list does not hold them, since a CRD that serves both versions lists every object in both.
   */
  readonly olderVersion?: true;
}

/**
 * What the gateway reads from a cluster. Endpoints (v1) are left out on purpose: EndpointSlices carry
 * the same addresses and every supported Kubernetes version has them. Secrets are not read yet.
 */
export const KUBE_KINDS: readonly KubeKind[] = [
  { kind: 'Service', apiVersion: 'v1', plural: 'services', crd: false },
  { kind: 'Pod', apiVersion: 'v1', plural: 'pods', crd: false },
  { kind: 'EndpointSlice', apiVersion: 'discovery.k8s.io/v1', plural: 'endpointslices', crd: false },
  { kind: 'Gateway', apiVersion: 'networking.istio.io/v1', plural: 'gateways', crd: true },
  { kind: 'VirtualService', apiVersion: 'networking.istio.io/v1', plural: 'virtualservices', crd: true },
  { kind: 'DestinationRule', apiVersion: 'networking.istio.io/v1', plural: 'destinationrules', crd: true },
  { kind: 'ServiceEntry', apiVersion: 'networking.istio.io/v1', plural: 'serviceentries', crd: true },
  { kind: 'WorkloadEntry', apiVersion: 'networking.istio.io/v1', plural: 'workloadentries', crd: true },
  // Istio's Sidecar: egress.hosts narrows what the control plane sends a sidecar; outboundTrafficPolicy.
  { kind: 'Sidecar', apiVersion: 'networking.istio.io/v1', plural: 'sidecars', crd: true },
  // EnvoyFilter: its local rate limit patches (policy/envoy-filter-patches.ts); served at v1alpha3 only.
  { kind: 'EnvoyFilter', apiVersion: 'networking.istio.io/v1alpha3', plural: 'envoyfilters', crd: true },
  { kind: 'PeerAuthentication', apiVersion: 'security.istio.io/v1', plural: 'peerauthentications', crd: true },
  { kind: 'AuthorizationPolicy', apiVersion: 'security.istio.io/v1', plural: 'authorizationpolicies', crd: true },
  { kind: 'RequestAuthentication', apiVersion: 'security.istio.io/v1', plural: 'requestauthentications', crd: true },
  // cert-manager's resources: Certificates whose secretName a Gateway server uses are issued by ACME.
  { kind: 'Issuer', apiVersion: 'cert-manager.io/v1', plural: 'issuers', crd: true },
  { kind: 'ClusterIssuer', apiVersion: 'cert-manager.io/v1', plural: 'clusterissuers', crd: true, clusterScoped: true },
  { kind: 'Certificate', apiVersion: 'cert-manager.io/v1', plural: 'certificates', crd: true },
  // The mesh config (the `istio` ConfigMap) and Istio's Telemetry; `crd`: an API without them is tolerated.
  { kind: 'ConfigMap', apiVersion: 'v1', plural: 'configmaps', crd: true, only: { namespace: 'istio-system', name: 'istio' } },
  { kind: 'Telemetry', apiVersion: 'telemetry.istio.io/v1', plural: 'telemetries', crd: true },
  // meshgate's own kinds (deploy/crds/meshgate-io.yaml).
  { kind: 'RateLimitPolicy', apiVersion: 'meshgate.io/v1', plural: 'ratelimitpolicies', crd: true },
  // The Kubernetes Gateway API (deploy/crds/gateway-api-standard.yaml); TLSRoute/TCPRoute only where
  // the experimental channel is installed. Namespaces give their labels to allowedRoutes selectors
  // and count as absent where they cannot be listed.
  { kind: 'GatewayClass', apiVersion: 'gateway.networking.k8s.io/v1', plural: 'gatewayclasses', crd: true, clusterScoped: true },
  { kind: 'Gateway', apiVersion: 'gateway.networking.k8s.io/v1', plural: 'gateways', crd: true },
  { kind: 'HTTPRoute', apiVersion: 'gateway.networking.k8s.io/v1', plural: 'httproutes', crd: true },
  { kind: 'GRPCRoute', apiVersion: 'gateway.networking.k8s.io/v1', plural: 'grpcroutes', crd: true },
  { kind: 'TLSRoute', apiVersion: 'gateway.networking.k8s.io/v1alpha2', plural: 'tlsroutes', crd: true },
  { kind: 'TCPRoute', apiVersion: 'gateway.networking.k8s.io/v1alpha2', plural: 'tcproutes', crd: true },
  { kind: 'ReferenceGrant', apiVersion: 'gateway.networking.k8s.io/v1beta1', plural: 'referencegrants', crd: true },
  // BackendTLSPolicy at v1 (Gateway API v1.4, which Istio 1.28 reads), and the ConfigMaps that hold
  // their CAs (watched in every namespace, as Istio watches them; only the ones named are kept).
  { kind: 'BackendTLSPolicy', apiVersion: 'gateway.networking.k8s.io/v1', plural: 'backendtlspolicies', crd: true },
  // Where the CRD is older than Gateway API v1.4, it serves only v1alpha3 (the same fields).
  { kind: 'BackendTLSPolicy', apiVersion: 'gateway.networking.k8s.io/v1alpha3', plural: 'backendtlspolicies', crd: true, olderVersion: true },
  { kind: 'ConfigMap', apiVersion: 'v1', plural: 'configmaps', crd: true, onlyCaOfPolicies: true },
  { kind: 'Namespace', apiVersion: 'v1', plural: 'namespaces', crd: true, clusterScoped: true },
  // Kubernetes Ingress (core/ingress/), served as Istio serves it; `crd`: an API that does not
  // serve them counts as having none.
  { kind: 'Ingress', apiVersion: 'networking.k8s.io/v1', plural: 'ingresses', crd: true },
  { kind: 'IngressClass', apiVersion: 'networking.k8s.io/v1', plural: 'ingressclasses', crd: true, clusterScoped: true },
];

/** The collection's URL path: cluster-wide when `namespace` is undefined. */
export function collectionPath(k: KubeKind, namespace?: string): string {
  const root = k.apiVersion.includes('/') ? `/apis/${k.apiVersion}` : `/api/${k.apiVersion}`;
  return namespace === undefined || k.clusterScoped ? `${root}/${k.plural}` : `${root}/namespaces/${encodeURIComponent(namespace)}/${k.plural}`;
}

/** An object as the API server sends it (JSON), before it becomes a Resource. */
export type KubeObject = Record<string, unknown> & { metadata?: Record<string, unknown> & { name?: string; namespace?: string } };

/**
 * The whole set, from each kind's current objects. `order` follows creationTimestamp (then kind,
 * namespace, name), so resources that tie on time still come out the same way every time.
 */
export function toLoadResult(objects: ReadonlyArray<{ readonly kind: KubeKind; readonly items: Iterable<KubeObject> }>): LoadResult {
  const all: Array<{ kind: KubeKind; kindIndex: number; obj: KubeObject; time: number }> = [];
  const cas = policyCaConfigMaps(objects);
  const named = (kind: KubeKind, obj: KubeObject): string => `${kind.kind}/${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
  // Only the kinds listed at two versions are looked at: the set is not built for every Pod.
  const twice = new Set(objects.filter(({ kind }) => kind.olderVersion).map(({ kind }) => kind.kind));
  const newer = new Set(objects.filter(({ kind }) => !kind.olderVersion && twice.has(kind.kind)).flatMap(({ kind, items }) => [...items].map((obj) => named(kind, obj))));
  objects.forEach(({ kind, items }, kindIndex) => {
    for (const obj of items) {
      if (kind.onlyCaOfPolicies && !cas.has(`${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`)) continue;
      if (kind.olderVersion && newer.has(named(kind, obj))) continue;
      const time = Date.parse(String(obj.metadata?.creationTimestamp ?? ''));
      all.push({ kind, kindIndex, obj, time: Number.isNaN(time) ? Number.POSITIVE_INFINITY : time });
    }
  });
  all.sort((a, b) => {
    if (a.time !== b.time) return a.time < b.time ? -1 : 1;
    if (a.kindIndex !== b.kindIndex) return a.kindIndex - b.kindIndex;
    const an = `${a.obj.metadata?.namespace ?? ''}/${a.obj.metadata?.name ?? ''}`;
    const bn = `${b.obj.metadata?.namespace ?? ''}/${b.obj.metadata?.name ?? ''}`;
    return an < bn ? -1 : an > bn ? 1 : 0;
  });
  const resources: Resource[] = [];
  const problems: Problem[] = [];
  for (const { kind, obj } of all) {
    // An object from the API has no file: every field is on its line 1, and embedded YAML (the mesh
    // config) counts lines from its own text's first.
    const r = resourceFromObject(asServed(kind, obj), { file: kubeOrigin(kind, obj), line: 1, order: resources.length, lineOf: onLineOne, textStart: textFromItsOwnFirstLine }, problems);
    if (r) resources.push(r);
  }
  return { resources, problems };
}

/** `ns/name` of every ConfigMap a BackendTLSPolicy names as its CA, but the mesh config (read on its own). */
function policyCaConfigMaps(objects: ReadonlyArray<{ readonly kind: KubeKind; readonly items: Iterable<KubeObject> }>): Set<string> {
  const out = new Set<string>();
  for (const { kind, items } of objects) {
    if (kind.kind !== 'BackendTLSPolicy') continue;
    for (const obj of items) for (const name of policyCaConfigMapNames(obj.spec)) out.add(`${obj.metadata?.namespace ?? ''}/${name}`);
  }
  out.delete('istio-system/istio');
  return out;
}

const onLineOne = (): number => 1;
const TEXT_START: TextStart = Object.freeze({ line: 1, indent: 0 });
const textFromItsOwnFirstLine = (): TextStart => TEXT_START;

/** `kube:VirtualService/default/reviews`: what problems print where a file name would be. */
export function kubeOrigin(kind: KubeKind, obj: KubeObject): string {
  return `kube:${kind.kind}/${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
}

/**
 * The API server leaves apiVersion and kind off the items of a list of built-in kinds; the
 * collection says what they are. managedFields is bookkeeping for server-side apply, often the
 * largest part of an object, and nothing here reads it.
 */
function asServed(kind: KubeKind, obj: KubeObject): Record<string, unknown> {
  const metadata = isRecord(obj.metadata) ? { ...obj.metadata } : obj.metadata;
  if (isRecord(metadata)) delete metadata.managedFields;
  return { ...obj, apiVersion: kind.apiVersion, kind: kind.kind, metadata };
}
