// The Gateway API conformance suite's base setup, as YAML for meshgate: the infra namespace with a
// Gateway of meshgate's class admitting routes from its own namespace (`same-namespace`) and one
// admitting all (`all-namespaces`), backends v1–v3 in the infra namespace and one in
// `gateway-conformance-web-backend`, each a real loopback upstream.

import { serviceYaml } from './cluster-yaml.js';

export const INFRA = 'gateway-conformance-infra';
export const WEB = 'gateway-conformance-web-backend';

export function baseYaml(ports: { v1: number; v2: number; v3: number; web: number }, opts: { className?: string } = {}): string {
  const cls = opts.className ?? 'meshgate';
  return [
    `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: ${cls}}
spec: {controllerName: meshgate.io/gateway-controller}`,
    `apiVersion: v1
kind: Namespace
metadata: {name: ${INFRA}, labels: {gateway-conformance: infra}}`,
    `apiVersion: v1
kind: Namespace
metadata: {name: ${WEB}, labels: {gateway-conformance: web-backend}}`,
    `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: same-namespace, namespace: ${INFRA}}
spec:
  gatewayClassName: ${cls}
  listeners:
  - name: http
    port: 80
    protocol: HTTP
    allowedRoutes: {namespaces: {from: Same}}`,
    `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: all-namespaces, namespace: ${INFRA}}
spec:
  gatewayClassName: ${cls}
  listeners:
  - name: http
    port: 8080
    protocol: HTTP
    allowedRoutes: {namespaces: {from: All}}`,
    serviceYaml('infra-backend-v1', [{ pod: 'infra-backend-v1-1', port: ports.v1 }], { namespace: INFRA, port: 8080 }).trim(),
    serviceYaml('infra-backend-v2', [{ pod: 'infra-backend-v2-1', port: ports.v2 }], { namespace: INFRA, port: 8080 }).trim(),
    serviceYaml('infra-backend-v3', [{ pod: 'infra-backend-v3-1', port: ports.v3 }], { namespace: INFRA, port: 8080 }).trim(),
    serviceYaml('web-backend', [{ pod: 'web-backend-1', port: ports.web }], { namespace: WEB, port: 8080 }).trim(),
  ].join('\n---\n') + '\n';
}

/** A Gateway of meshgate's class; `listeners`: the YAML of its list, indented under `listeners:`. */
export function k8sGatewayYaml(name: string, listeners: string, ns = 'default'): string {
  return `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: ${name}, namespace: ${ns}}
spec:
  gatewayClassName: meshgate
  listeners:
${listeners}
`;
}

/** The GatewayClass `meshgate`, of meshgate's controller. */
export const MESHGATE_CLASS_YAML = `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: meshgate}
spec: {controllerName: meshgate.io/gateway-controller}
`;

/** An HTTPRoute on Gateway `gateway` sending everything for `hostname` to one Service port. */
export function httpRouteYaml(name: string, r: { gateway: string; hostname: string; backend: string; port: number; namespace?: string }): string {
  return `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ${name}, namespace: ${r.namespace ?? 'default'}}
spec:
  parentRefs: [{name: ${r.gateway}}]
  hostnames: [${r.hostname}]
  rules:
  - backendRefs: [{name: ${r.backend}, port: ${r.port}}]
`;
}
