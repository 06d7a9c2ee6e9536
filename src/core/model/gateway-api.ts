// Readonly shapes of the Kubernetes Gateway API resources meshgate reads (gateway.networking.k8s.io
// v1 standard channel, plus v1alpha2 TLSRoute/TCPRoute), field names exactly as the API spells them.
// Validation (core/config/validate-gateway-api.ts) guarantees these shapes before anything reads them.

export const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';

/**
 * The Gateway API's Gateway shares its kind name with Istio's; inside meshgate it travels as this
 * kind (as Istio itself names it), so nothing written for Istio's Gateway ever sees one.
 */
export const K8S_GATEWAY_KIND = 'KubernetesGateway';

/** Controller names meshgate answers to in a GatewayClass. */
export const MESHGATE_CONTROLLER = 'meshgate.io/gateway-controller';
export const CONTROLLER_NAMES: readonly string[] = [MESHGATE_CONTROLLER, 'istio.io/gateway-controller'];

export interface GatewayClassSpec {
  readonly controllerName: string;
  readonly description?: string;
  readonly parametersRef?: unknown;
}

export interface SecretObjectReference {
  readonly group?: string;
  readonly kind?: string;
  readonly name: string;
  readonly namespace?: string;
}

export interface GatewayTLSConfig {
  /** Default Terminate. */
  readonly mode?: 'Terminate' | 'Passthrough';
  readonly certificateRefs?: readonly SecretObjectReference[];
  readonly options?: Readonly<Record<string, string>>;
}

export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: ReadonlyArray<{ readonly key: string; readonly operator: string; readonly values?: readonly string[] }>;
}

export interface AllowedRoutes {
  readonly namespaces?: { readonly from?: 'All' | 'Same' | 'Selector'; readonly selector?: LabelSelector };
  readonly kinds?: ReadonlyArray<{ readonly group?: string; readonly kind: string }>;
}

export interface GatewayListener {
  readonly name: string;
  readonly hostname?: string;
  readonly port: number;
  readonly protocol: string;
  readonly tls?: GatewayTLSConfig;
  readonly allowedRoutes?: AllowedRoutes;
}

export interface K8sGatewaySpec {
  readonly gatewayClassName: string;
  readonly listeners: readonly GatewayListener[];
  /** A value may be left out: the implementation then picks an address of that type. */
  readonly addresses?: ReadonlyArray<{ readonly type?: string; readonly value?: string }>;
  readonly infrastructure?: { readonly parametersRef?: { readonly group?: string; readonly kind?: string; readonly name?: string } };
}

export interface ParentReference {
  readonly group?: string;
  readonly kind?: string;
  readonly namespace?: string;
  readonly name: string;
  readonly sectionName?: string;
  readonly port?: number;
}

export interface BackendRef {
  readonly group?: string;
  readonly kind?: string;
  readonly name: string;
  readonly namespace?: string;
  readonly port?: number;
  /** Default 1. */
  readonly weight?: number;
  readonly filters?: readonly HTTPRouteFilter[];
}

export interface HTTPPathMatch {
  /** Default PathPrefix. */
  readonly type?: 'Exact' | 'PathPrefix' | 'RegularExpression';
  /** Default `/`. */
  readonly value?: string;
}

export interface ValueMatch {
  /** Default Exact. */
  readonly type?: 'Exact' | 'RegularExpression';
  readonly name: string;
  readonly value: string;
}

export interface HTTPRouteMatch {
  readonly path?: HTTPPathMatch;
  readonly headers?: readonly ValueMatch[];
  readonly queryParams?: readonly ValueMatch[];
  readonly method?: string;
}

export interface HeaderModifier {
  readonly set?: ReadonlyArray<{ readonly name: string; readonly value: string }>;
  readonly add?: ReadonlyArray<{ readonly name: string; readonly value: string }>;
  readonly remove?: readonly string[];
}

export interface PathModifier {
  readonly type: 'ReplaceFullPath' | 'ReplacePrefixMatch';
  readonly replaceFullPath?: string;
  readonly replacePrefixMatch?: string;
}

export interface HTTPRouteFilter {
  readonly type: 'RequestHeaderModifier' | 'ResponseHeaderModifier' | 'RequestRedirect' | 'URLRewrite' | 'RequestMirror' | 'ExtensionRef';
  readonly requestHeaderModifier?: HeaderModifier;
  readonly responseHeaderModifier?: HeaderModifier;
  readonly requestRedirect?: {
    readonly scheme?: string;
    readonly hostname?: string;
    readonly path?: PathModifier;
    readonly port?: number;
    /** Default 302. */
    readonly statusCode?: number;
  };
  readonly urlRewrite?: { readonly hostname?: string; readonly path?: PathModifier };
  readonly requestMirror?: { readonly backendRef: BackendRef; readonly percent?: number; readonly fraction?: { readonly numerator: number; readonly denominator?: number } };
}

export interface HTTPRouteRule {
  readonly name?: string;
  readonly matches?: readonly HTTPRouteMatch[];
  readonly filters?: readonly HTTPRouteFilter[];
  readonly backendRefs?: readonly BackendRef[];
  readonly timeouts?: { readonly request?: string; readonly backendRequest?: string };
}

export interface HTTPRouteSpec {
  readonly parentRefs?: readonly ParentReference[];
  readonly hostnames?: readonly string[];
  readonly rules?: readonly HTTPRouteRule[];
}

export interface GRPCMethodMatch {
  /** Default Exact. */
  readonly type?: 'Exact' | 'RegularExpression';
  readonly service?: string;
  readonly method?: string;
}

export interface GRPCRouteMatch {
  readonly method?: GRPCMethodMatch;
  readonly headers?: readonly ValueMatch[];
}

export interface GRPCRouteRule {
  readonly name?: string;
  readonly matches?: readonly GRPCRouteMatch[];
  readonly filters?: readonly HTTPRouteFilter[];
  readonly backendRefs?: readonly BackendRef[];
}

export interface GRPCRouteSpec {
  readonly parentRefs?: readonly ParentReference[];
  readonly hostnames?: readonly string[];
  readonly rules?: readonly GRPCRouteRule[];
}

/** TLSRoute and TCPRoute (v1alpha2): rules are only backends. */
export interface L4RouteSpec {
  readonly parentRefs?: readonly ParentReference[];
  /** TLSRoute only: SNI names. */
  readonly hostnames?: readonly string[];
  readonly rules?: ReadonlyArray<{ readonly name?: string; readonly backendRefs?: readonly BackendRef[] }>;
}

export interface ReferenceGrantSpec {
  readonly from: ReadonlyArray<{ readonly group: string; readonly kind: string; readonly namespace: string }>;
  readonly to: ReadonlyArray<{ readonly group: string; readonly kind: string; readonly name?: string }>;
}

/** Route kinds meshgate attaches to listeners. */
export const ROUTE_KINDS = ['HTTPRoute', 'GRPCRoute', 'TLSRoute', 'TCPRoute'] as const;
export type RouteKind = (typeof ROUTE_KINDS)[number];

/** BackendTLSPolicy (v1 since Gateway API v1.4; v1alpha3 before, the same shape): how to originate TLS to a Service. */
export interface BackendTLSPolicySpec {
  readonly targetRefs: ReadonlyArray<{ readonly group: string; readonly kind: string; readonly name: string; readonly sectionName?: string }>;
  readonly validation: {
    readonly caCertificateRefs?: ReadonlyArray<{ readonly group: string; readonly kind: string; readonly name: string }>;
    readonly wellKnownCACertificates?: string;
    readonly hostname: string;
    readonly subjectAltNames?: ReadonlyArray<{ readonly type: 'Hostname' | 'URI'; readonly hostname?: string; readonly uri?: string }>;
  };
  /** Implementation-specific; Istio reads none, and neither does meshgate. */
  readonly options?: Readonly<Record<string, string>>;
}

/**
 * The ConfigMaps (names, in the policy's namespace) a BackendTLSPolicy's spec, validated or not, takes
 * its CA from: what the Kubernetes source and the control plane must read and send along with it.
 */
export function policyCaConfigMapNames(spec: unknown): string[] {
  const validation = typeof spec === 'object' && spec !== null ? (spec as { validation?: unknown }).validation : undefined;
  const refs = typeof validation === 'object' && validation !== null ? (validation as { caCertificateRefs?: unknown }).caCertificateRefs : undefined;
  if (!Array.isArray(refs)) return [];
  return refs.flatMap((r: unknown) => {
    const ref = (typeof r === 'object' && r !== null ? r : {}) as { group?: unknown; kind?: unknown; name?: unknown };
    return ref.group === '' && ref.kind === 'ConfigMap' && typeof ref.name === 'string' ? [ref.name] : [];
  });
}
