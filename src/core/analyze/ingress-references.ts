// Kubernetes Ingress references that point at nothing, for the Ingresses this mesh serves
// (ingress/selection.ts): IST0101 ReferencedResourceNotFound for a backend Service that does not
// exist, a port number it does not have or a port name it does not have (that path is left out of
// the routes, ingress/translate.ts), and a tls secretName with no Secret (when that can be known),
// which Istio, and meshgate, read from the gateway's own namespace. MG0007 IngressNotServed for an
// Ingress that looks meant for this mesh but is not served: no class at all under the default
// ingressControllerMode STRICT, or an ingressClassName whose IngressClass does not exist.

import type { Problem } from '../config/problem.js';
import type { IngressBackend, IngressClassSpec, IngressSpec } from '../model/ingress.js';
import type { FieldPath, Resource } from '../model/resource.js';
import { ingressBackendHost } from '../ingress/backends.js';
import { INGRESS_GATEWAY_NAMESPACE, ingressSettings, selectIngress } from '../ingress/selection.js';
import type { AnalysisContext } from './context.js';
import { finding, MESSAGES } from './finding.js';

const T = MESSAGES.ReferencedResourceNotFound;

export function ingressReferences(ctx: AnalysisContext): Problem[] {
  const ingresses = ctx.resources.filter((r) => r.kind === 'Ingress') as Resource<IngressSpec>[];
  if (ingresses.length === 0) return [];
  const settings = ingressSettings(ctx.resources);
  const classes = new Map(ctx.resources.filter((r) => r.kind === 'IngressClass').map((r) => [r.metadata.name, r as Resource<IngressClassSpec>]));
  const out: Problem[] = [];
  for (const ing of ingresses) {
    const selection = selectIngress(ing, classes, settings);
    if (!selection.served) {
      const missingClass = ing.spec.ingressClassName !== undefined && !classes.has(ing.spec.ingressClassName);
      const classless = ing.spec.ingressClassName === undefined && ing.metadata.annotations['kubernetes.io/ingress.class'] === undefined;
      if (settings.mode !== 'OFF' && (missingClass || classless)) {
        out.push(finding(MESSAGES.IngressNotServed, ing, missingClass ? ['spec', 'ingressClassName'] : ['metadata', 'name'], `Ingress not served: ${selection.reason}`, 'create an IngressClass with controller istio.io/ingress-controller and name it in spec.ingressClassName (or set ingressControllerMode: DEFAULT in the mesh config)'));
      }
      continue;
    }
    (ing.spec.rules ?? []).forEach((rule, i) => {
      (rule?.http?.paths ?? []).forEach((p, j) => checkBackend(ctx, ing, p?.backend, ['spec', 'rules', i, 'http', 'paths', j, 'backend'], out));
    });
    const exists = ctx.options.credentialExists;
    if (!exists) continue;
    (ing.spec.tls ?? []).forEach((tls, i) => {
      const name = tls?.secretName;
      if (!name || exists(INGRESS_GATEWAY_NAMESPACE, name)) return;
      const beside = exists(ing.metadata.namespace, name) ? ` (there is one in ${ing.metadata.namespace}, the Ingress's namespace, but the gateway reads Secrets from its own namespace, as Istio's does)` : '';
      out.push(finding(T, ing, ['spec', 'tls', i, 'secretName'], `referenced Secret not found: "${INGRESS_GATEWAY_NAMESPACE}/${name}"${beside}`, `create the Secret in ${INGRESS_GATEWAY_NAMESPACE} (kubectl create -n ${INGRESS_GATEWAY_NAMESPACE} secret tls ${name} ...) or the folder certs/${name}/ with tls.crt and tls.key; until then HTTPS for these hosts cannot complete a handshake`));
    });
  }
  return out;
}

function checkBackend(ctx: AnalysisContext, ing: Resource<IngressSpec>, backend: IngressBackend | undefined, at: FieldPath, out: Problem[]): void {
  const svc = backend?.service;
  if (!svc || typeof svc.name !== 'string') return;
  const ns = ing.metadata.namespace;
  const service = ctx.registry.lookup(ingressBackendHost(ing, svc.name, ctx.domain).toLowerCase());
  if (!service || service.kind !== 'Service') {
    out.push(finding(T, ing, [...at, 'service', 'name'], `referenced Service not found: "${ns}/${svc.name}"`, 'create that Service in the Ingress\'s namespace, or correct the name; until then requests for this path get 503'));
    return;
  }
  const ports = service.ports.map((p) => (p.name ? `${p.number} (${p.name})` : String(p.number))).join(', ');
  if (svc.port?.number !== undefined && !service.ports.some((p) => p.number === svc.port!.number)) {
    out.push(finding(T, ing, [...at, 'service', 'port', 'number'], `Service ${ns}/${svc.name} has no port ${svc.port.number} (ports: ${ports})`, 'use one of the Service\'s ports; until then requests for this path get 503'));
  } else if (svc.port?.name !== undefined && !service.ports.some((p) => p.name === svc.port!.name)) {
    out.push(finding(T, ing, [...at, 'service', 'port', 'name'], `Service ${ns}/${svc.name} has no port named "${svc.port.name}" (ports: ${ports})`, 'use one of the Service\'s port names; until then this path is not routed (404)'));
  }
}
