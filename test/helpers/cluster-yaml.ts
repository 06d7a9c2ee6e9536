// Writes Kubernetes Service/EndpointSlice/Pod YAML for test upstreams on loopback, the way a cluster
// would hold them, so tests exercise the same registry path as real deployments.

export interface TestEndpoint {
  readonly pod: string;
  readonly port: number;
  readonly labels?: Record<string, string>;
  readonly address?: string;
  /** The pod's spec.serviceAccountName (its mesh identity). */
  readonly serviceAccount?: string;
  /** The EndpointSlice's `ready` condition (default true): false once the pod's readiness probe fails. */
  readonly ready?: boolean;
}

export function serviceYaml(name: string, endpoints: readonly TestEndpoint[], opts: { namespace?: string; port?: number; portName?: string; clusterIP?: string } = {}): string {
  const ns = opts.namespace ?? 'default';
  const port = opts.port ?? 80;
  const portName = opts.portName ?? 'http';
  const docs = [
    `apiVersion: v1
kind: Service
metadata: {name: ${name}, namespace: ${ns}}
spec:
  selector: {app: ${name}}${opts.clusterIP ? `\n  clusterIP: ${opts.clusterIP}` : ''}
  ports: [{name: ${portName}, port: ${port}, targetPort: ${portName}}]`,
  ];
  for (const ep of endpoints) {
    const labels = { app: name, ...ep.labels };
    docs.push(`apiVersion: v1
kind: Pod
metadata:
  name: ${ep.pod}
  namespace: ${ns}
  labels: ${JSON.stringify(labels)}${ep.serviceAccount ? `\nspec: {serviceAccountName: ${ep.serviceAccount}}` : ''}
status: {podIP: ${ep.address ?? '127.0.0.1'}}`);
    docs.push(`apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ${ep.pod}-slice
  namespace: ${ns}
  labels: {kubernetes.io/service-name: ${name}}
addressType: IPv4
ports: [{name: ${portName}, port: ${ep.port}}]
endpoints:
- addresses: [${ep.address ?? '127.0.0.1'}]
  conditions: {ready: ${ep.ready ?? true}}
  targetRef: {kind: Pod, name: ${ep.pod}, namespace: ${ns}}`);
  }
  return docs.join('\n---\n') + '\n';
}

export function gatewayYaml(hosts: readonly string[], opts: { name?: string; namespace?: string; port?: number; httpsRedirect?: boolean } = {}): string {
  return `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ${opts.name ?? 'gw'}, namespace: ${opts.namespace ?? 'default'}}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: ${opts.port ?? 80}, name: http, protocol: HTTP}
    hosts: ${JSON.stringify(hosts)}${opts.httpsRedirect ? '\n    tls: {httpsRedirect: true}' : ''}
`;
}

/** A TCP Gateway server on 5432 whose one tcp route goes to the `db` Service, whose endpoint is `upstreamPort`. */
export function tcpGatewayYaml(upstreamPort: number): string {
  return `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: tcp}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 5432, name: tcp, protocol: TCP}
    hosts: ['*']
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db}
spec:
  hosts: ['*']
  gateways: [tcp]
  tcp:
  - route: [{destination: {host: db, port: {number: 5432}}}]
---
${serviceYaml('db', [{ pod: 'db-1', port: upstreamPort }], { port: 5432, portName: 'tcp' })}`;
}

/** A MESH_INTERNAL ServiceEntry on port 80 with STATIC loopback endpoints, each with an optional locality. */
export function staticServiceEntryYaml(host: string, endpoints: ReadonlyArray<{ readonly port: number; readonly locality?: string }>): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${host.split('.')[0]}}
spec:
  hosts: [${host}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints:
${endpoints.map((e) => `  - {address: 127.0.0.1, ports: {http: ${e.port}}${e.locality ? `, locality: ${e.locality}` : ''}}`).join('\n')}
`;
}

/** A VirtualService `app` of namespace default binding `hosts` on Gateway `gw` to one destination. */
export function gatewayRouteYaml(hosts: readonly string[], destination = 'app'): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app, namespace: default}
spec:
  hosts: ${JSON.stringify(hosts)}
  gateways: [gw]
  http:
  - route: [{destination: {host: ${destination}}}]
`;
}

/** PeerAuthentication PERMISSIVE mesh-wide: plaintext and mesh mTLS are both let in. */
export const PERMISSIVE_MESH_YAML = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: PERMISSIVE}}
`;

/**
 * PeerAuthentication PERMISSIVE mesh-wide (plaintext and mesh mTLS both let in) and a DENY
 * AuthorizationPolicy on `paths` for the workload labelled `app: <app>` in namespace default.
 */
export function permissiveDenyPathsYaml(app: string, paths: readonly string[]): string {
  return `${PERMISSIVE_MESH_YAML}---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-paths, namespace: default}
spec:
  selector: {matchLabels: {app: ${app}}}
  action: DENY
  rules:
  - to: [{operation: {paths: [${paths.join(', ')}]}}]
`;
}

/** The mesh config (ConfigMap `istio`) saying how many proxies in front of gateways append to x-forwarded-for. */
export function gatewayTopologyYaml(numTrustedProxies: number): string {
  return `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata:\n  mesh: |\n    defaultConfig:\n      gatewayTopology:\n        numTrustedProxies: ${numTrustedProxies}\n`;
}

/** The mesh config (ConfigMap `istio` in istio-system) holding `body`, YAML as in `meshConfig:` of an IstioOperator. */
export function meshConfigYaml(body: string): string {
  return `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata:\n  mesh: |-\n${body.replace(/^/gm, '    ')}\n`;
}

/**
 * An AuthorizationPolicy for the workloads `selector` (YAML flow, `{matchLabels: {…}}`) picks;
 * `spec` holds its further lines under `spec:` (indented two spaces), '' for Istio's deny-all (an
 * ALLOW policy without rules).
 */
export function authorizationPolicy(name: string, namespace: string, selector: string, spec: string): string {
  return `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ${name}, namespace: ${namespace}}
spec:
  selector: ${selector}
${spec}
`;
}

/** A RequestAuthentication for the workloads `selector` (YAML flow) picks; `jwtRules` holds its rule lines (indented two spaces, under `jwtRules:`). */
export function requestAuthentication(name: string, namespace: string, selector: string, jwtRules: string): string {
  return `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: ${name}, namespace: ${namespace}}
spec:
  selector: ${selector}
  jwtRules:
${jwtRules}
`;
}
