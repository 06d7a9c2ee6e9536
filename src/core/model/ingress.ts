// Readonly shapes of the Kubernetes Ingress kinds meshgate reads (networking.k8s.io/v1), field names
// exactly as the API spells them. Validation (core/config/validate-ingress.ts) guarantees these
// shapes before the translation (core/ingress/) reads them.

/** The controller name an IngressClass must carry for Istio (and meshgate) to serve its Ingresses. */
export const ISTIO_INGRESS_CONTROLLER = 'istio.io/ingress-controller';

/** The legacy annotation that names an Ingress's class; it wins over `spec.ingressClassName`. */
export const INGRESS_CLASS_ANNOTATION = 'kubernetes.io/ingress.class';

export interface IngressClassSpec {
  readonly controller?: string;
  readonly parameters?: unknown;
}

export interface IngressServiceBackend {
  readonly name: string;
  /** Exactly one of number and name. */
  readonly port?: { readonly number?: number; readonly name?: string };
}

export interface IngressBackend {
  readonly service?: IngressServiceBackend;
  readonly resource?: { readonly apiGroup?: string; readonly kind: string; readonly name: string };
}

export type PathType = 'Exact' | 'Prefix' | 'ImplementationSpecific';

export interface HTTPIngressPath {
  readonly path?: string;
  readonly pathType: PathType;
  readonly backend: IngressBackend;
}

export interface IngressRule {
  readonly host?: string;
  readonly http?: { readonly paths: readonly HTTPIngressPath[] };
}

export interface IngressTLS {
  readonly hosts?: readonly string[];
  readonly secretName?: string;
}

export interface IngressSpec {
  readonly ingressClassName?: string;
  readonly defaultBackend?: IngressBackend;
  readonly rules?: readonly IngressRule[];
  readonly tls?: readonly IngressTLS[];
}
