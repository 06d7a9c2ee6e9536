// Which Ingresses this mesh serves, and which gateway serves them: Istio's MeshConfig fields
// `ingressControllerMode` (OFF | DEFAULT | STRICT, default STRICT), `ingressClass` (default `istio`),
// `ingressService` (default `istio-ingressgateway`) and `ingressSelector`, read from the mesh config
// (`data.mesh` of the ConfigMap `istio` in istio-system), and the Ingress's class:
// - OFF: no Ingress is served at all (istiod does not start its Ingress controller).
// - `spec.ingressClassName` naming an IngressClass that does not exist: not served.
// - the annotation `kubernetes.io/ingress.class` (it wins over the field): served when it equals
//   `ingressClass`, in DEFAULT and STRICT alike.
// - otherwise an IngressClass: served when its `spec.controller` is `istio.io/ingress-controller`.
// - no class at all: served in DEFAULT, not in STRICT.
// The gateway Istio generates for an Ingress selects pods labelled `istio: <ingressSelector>`, else
// `istio: <ingressService>` unless that is empty or `istio-ingressgateway`, else `istio: ingressgateway`.

import type { IngressClassSpec, IngressSpec } from '../model/ingress.js';
import { INGRESS_CLASS_ANNOTATION, ISTIO_INGRESS_CONTROLLER } from '../model/ingress.js';
import type { Resource } from '../model/resource.js';
import { DEFAULT_GATEWAY_LABELS } from '../model/gateway-labels.js';
import { DEFAULT_GATEWAY_NAME } from '../model/gateway-names.js';
import { meshConfigOf } from '../telemetry/telemetry-policy.js';

/** Where istiod puts the Gateways it makes from Ingresses (its K8S_INGRESS_NS default). */
export const INGRESS_GATEWAY_NAMESPACE = 'istio-system';

export type IngressControllerMode = 'OFF' | 'DEFAULT' | 'STRICT';

export interface IngressSettings {
  readonly mode: IngressControllerMode;
  readonly ingressClass: string;
  readonly ingressService: string;
  readonly ingressSelector: string;
}

export const DEFAULT_INGRESS_SETTINGS: IngressSettings = Object.freeze({ mode: 'STRICT', ingressClass: 'istio', ingressService: DEFAULT_GATEWAY_NAME, ingressSelector: '' });

const MODES: ReadonlySet<string> = new Set(['OFF', 'DEFAULT', 'STRICT']);

export function ingressSettings(resources: readonly Resource[]): IngressSettings {
  const mesh = meshConfigOf(resources);
  if (!mesh) return DEFAULT_INGRESS_SETTINGS;
  const text = (k: string, fallback: string): string => (typeof mesh[k] === 'string' ? (mesh[k] as string) : fallback);
  const mode = text('ingressControllerMode', DEFAULT_INGRESS_SETTINGS.mode).toUpperCase();
  return {
    // An unknown mode serves nothing, as Istio does (it logs the value and skips every Ingress).
    mode: MODES.has(mode) ? (mode as IngressControllerMode) : 'OFF',
    ingressClass: text('ingressClass', DEFAULT_INGRESS_SETTINGS.ingressClass),
    ingressService: text('ingressService', DEFAULT_INGRESS_SETTINGS.ingressService),
    ingressSelector: text('ingressSelector', DEFAULT_INGRESS_SETTINGS.ingressSelector),
  };
}

/** Why an Ingress is or is not served, for `analyze` and the docs' examples alike. */
export interface IngressSelection {
  readonly served: boolean;
  readonly reason: string;
}

export function selectIngress(ingress: Resource<IngressSpec>, classes: ReadonlyMap<string, Resource<IngressClassSpec>>, settings: IngressSettings): IngressSelection {
  if (settings.mode === 'OFF') return { served: false, reason: 'the mesh config sets ingressControllerMode: OFF' };
  const className = ingress.spec.ingressClassName;
  const klass = className === undefined ? undefined : classes.get(className);
  if (className !== undefined && !klass) return { served: false, reason: `its IngressClass ${className} does not exist` };
  const annotation = ingress.metadata.annotations[INGRESS_CLASS_ANNOTATION];
  if (annotation !== undefined) {
    return annotation === settings.ingressClass
      ? { served: true, reason: `annotation ${INGRESS_CLASS_ANNOTATION}: ${annotation}` }
      : { served: false, reason: `annotation ${INGRESS_CLASS_ANNOTATION} is ${annotation}, not the mesh's ingressClass ${settings.ingressClass}` };
  }
  if (klass) {
    return klass.spec.controller === ISTIO_INGRESS_CONTROLLER
      ? { served: true, reason: `IngressClass ${className} (controller ${ISTIO_INGRESS_CONTROLLER})` }
      : { served: false, reason: `IngressClass ${className} belongs to controller ${klass.spec.controller ?? '(none)'}` };
  }
  return settings.mode === 'DEFAULT'
    ? { served: true, reason: 'it names no class and ingressControllerMode is DEFAULT' }
    : { served: false, reason: 'it names no class and ingressControllerMode is STRICT (set ingressClassName or the kubernetes.io/ingress.class annotation)' };
}

/** The Ingresses served, in creation order. */
export function servedIngresses(resources: readonly Resource[], settings: IngressSettings = ingressSettings(resources)): Resource<IngressSpec>[] {
  if (settings.mode === 'OFF') return [];
  const classes = new Map(resources.filter((r) => r.kind === 'IngressClass').map((r) => [r.metadata.name, r as Resource<IngressClassSpec>]));
  return resources.filter((r): r is Resource<IngressSpec> => r.kind === 'Ingress' && selectIngress(r as Resource<IngressSpec>, classes, settings).served);
}

/**
 * The labels of the gateway pods that serve Ingresses. A selector, not a gateway's labels: by default
 * the `istio` label alone of Istio's ingress gateway (which a gateway started without --labels
 * carries), so a gateway labelled only `istio=ingressgateway` serves Ingresses too, as in Istio.
 */
export function ingressGatewaySelector(settings: IngressSettings): Readonly<Record<string, string>> {
  if (settings.ingressSelector !== '') return { istio: settings.ingressSelector };
  if (settings.ingressService !== '' && settings.ingressService !== DEFAULT_INGRESS_SETTINGS.ingressService) return { istio: settings.ingressService };
  return { istio: DEFAULT_GATEWAY_LABELS.istio };
}
