// Automated deployment, as Istio does it: what a Gateway of meshgate's classes gets in its own
// namespace when it is not a manual deployment — a ServiceAccount, a Deployment of meshgate
// gateways serving just that Gateway, a Service in front of them (ports from the listeners, type
// from the networking.istio.io/service-type annotation), and a RoleBinding for the Secrets its
// listeners name. Names, labels and annotations are Istio's, so `kubectl port-forward
// svc/<gateway>-istio` and selectors written for Istio work. Pure: control/gateway-deployer.ts
// writes these objects and keeps them so.

import { BUILT_IN_CLASSES } from './listeners.js';
import { CONTROLLER_NAMES, MESHGATE_CONTROLLER } from '../model/gateway-api.js';
import { OWNED_KEYS_ANNOTATION, ownedKeysValue } from './owned-metadata.js';

type Obj = Record<string, unknown>;

export const MANAGED_LABEL = 'gateway.istio.io/managed';
export const GATEWAY_NAME_LABEL = 'gateway.networking.k8s.io/gateway-name';
export const GATEWAY_CLASS_LABEL = 'gateway.networking.k8s.io/gateway-class-name';
/** Istio's earlier name label, still what many AuthorizationPolicy selectors in its docs use. */
export const ISTIO_GATEWAY_NAME_LABEL = 'istio.io/gateway-name';
export const SERVICE_TYPE_ANNOTATION = 'networking.istio.io/service-type';
const NAME_OVERRIDE = 'gateway.istio.io/name-override';
const SERVICE_ACCOUNT_OVERRIDE = 'gateway.istio.io/service-account';
/** Not carried to the objects: kubectl's bookkeeping and the annotations that steer this controller. */
const NOT_PROPAGATED = new Set(['kubectl.kubernetes.io/last-applied-configuration', NAME_OVERRIDE, SERVICE_ACCOUNT_OVERRIDE, 'gateway.istio.io/controller-version', OWNED_KEYS_ANNOTATION]);
/** The ClusterRole (deploy/rbac.yaml) that lets a gateway read and write Secrets of its own namespace. */
export const GATEWAY_SECRETS_ROLE = 'meshgate-gateway-secrets';

/** A Gateway as the API server sends it. */
export interface GatewayObject {
  readonly metadata: { readonly name: string; readonly namespace: string; readonly uid?: string; readonly labels?: Record<string, string>; readonly annotations?: Record<string, string> };
  readonly spec: {
    readonly gatewayClassName: string;
    readonly listeners?: ReadonlyArray<{ readonly name?: string; readonly port: number; readonly protocol: string }>;
    readonly addresses?: ReadonlyArray<{ readonly type?: string; readonly value: string }>;
    readonly infrastructure?: { readonly labels?: Record<string, string>; readonly annotations?: Record<string, string> };
  };
}

/** The controller of a class name: its GatewayClass's, else the built-in class's (`istio`, `meshgate`). */
export function controllerOf(className: string, classes: ReadonlyMap<string, string>): string | undefined {
  const fromObject = classes.get(className);
  if (fromObject !== undefined) return fromObject;
  if (!BUILT_IN_CLASSES.includes(className)) return undefined;
  return className === 'istio' ? 'istio.io/gateway-controller' : MESHGATE_CONTROLLER;
}

/**
 * Istio's rule: a Gateway that names a Service (a Hostname address), or several addresses, points
 * at gateways deployed by hand; with no address, or one IP address (the Service's load-balancer
 * IP), it gets a deployment of its own.
 */
export function isManualDeployment(spec: { readonly addresses?: ReadonlyArray<{ readonly type?: string }> }): boolean {
  const addresses = spec.addresses ?? [];
  if (addresses.length === 0) return false;
  if (addresses.length > 1) return true;
  const type = addresses[0]!.type;
  return type !== undefined && type !== 'IPAddress';
}

/** Whether a Gateway gets its own deployment: one of meshgate's classes, and not a manual deployment. */
export function isAutomated(gw: GatewayObject, classes: ReadonlyMap<string, string>): boolean {
  const controller = controllerOf(gw.spec.gatewayClassName, classes);
  return controller !== undefined && CONTROLLER_NAMES.includes(controller) && !isManualDeployment(gw.spec);
}

/** `<gateway>-<gatewayClassName>` (Istio's naming), or the gateway.istio.io/name-override annotation. */
export function deploymentName(gw: GatewayObject): string {
  return gw.metadata.annotations?.[NAME_OVERRIDE] ?? `${gw.metadata.name}-${gw.spec.gatewayClassName}`;
}

export function serviceAccountName(gw: GatewayObject): string {
  return gw.metadata.annotations?.[SERVICE_ACCOUNT_OVERRIDE] ?? deploymentName(gw);
}

/** What each object of a Gateway's deployment must hold; everything else in them is left as found. */
export interface DeploymentObjects {
  readonly serviceAccount: Obj;
  readonly service: Obj;
  readonly deployment: Obj;
  readonly roleBinding: Obj;
}

export interface DeploymentSettings {
  /** The meshgate image the gateways run (the control plane's --proxy-image). */
  readonly image: string;
}

export function deploymentObjects(gw: GatewayObject, controller: string, settings: DeploymentSettings): DeploymentObjects {
  const { name: gwName, namespace } = gw.metadata;
  const name = deploymentName(gw);
  const sa = serviceAccountName(gw);
  const labels: Record<string, string> = {
    ...infrastructure(gw, 'labels'),
    [GATEWAY_NAME_LABEL]: gwName,
    [ISTIO_GATEWAY_NAME_LABEL]: gwName,
    [GATEWAY_CLASS_LABEL]: gw.spec.gatewayClassName,
    [MANAGED_LABEL]: controller.replaceAll('/', '-'),
  };
  const annotations = infrastructure(gw, 'annotations');
  // The keys handed down from the Gateway, so that one it drops is taken off the objects too.
  const owned = ownedKeysValue({ labels: Object.keys(infrastructure(gw, 'labels')), annotations: Object.keys(annotations) });
  const metadata = (objectName: string): Obj => ({
    name: objectName,
    namespace,
    labels,
    annotations: { ...annotations, [OWNED_KEYS_ANNOTATION]: owned },
    // Kubernetes deletes them with the Gateway.
    ownerReferences: [{ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', name: gwName, uid: gw.metadata.uid ?? '' }],
  });
  const type = gw.metadata.annotations?.[SERVICE_TYPE_ANNOTATION] ?? 'LoadBalancer';
  const ip = gw.spec.addresses?.length === 1 ? gw.spec.addresses[0]!.value : undefined;
  // The pod's own labels, which Gateway, AuthorizationPolicy and RequestAuthentication selectors match.
  const podLabels = { 'sidecar.istio.io/inject': 'false', 'service.istio.io/canonical-name': name, 'service.istio.io/canonical-revision': 'latest', ...labels };
  const proxyLabels = Object.entries(podLabels).filter(([k]) => k !== 'sidecar.istio.io/inject').map(([k, v]) => `${k}=${v}`).join(',');
  return {
    serviceAccount: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: metadata(sa) },
    service: {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: metadata(name),
      spec: {
        type,
        selector: { [GATEWAY_NAME_LABEL]: gwName },
        ports: servicePorts(gw),
        ...(ip !== undefined && type === 'LoadBalancer' ? { loadBalancerIP: ip } : {}),
      },
    },
    deployment: {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: metadata(name),
      spec: {
        selector: { matchLabels: { [GATEWAY_NAME_LABEL]: gwName } },
        template: {
          metadata: {
            labels: podLabels,
            annotations: { ...annotations, 'prometheus.io/scrape': 'true', 'prometheus.io/port': '15090', 'prometheus.io/path': '/stats/prometheus' },
          },
          spec: {
            serviceAccountName: sa,
            // The token is how the gateway reads the API server (list+watch, status writes).
            automountServiceAccountToken: true,
            // Listener ports below 1024 are bound by the unprivileged gateway itself, as Istio's
            // gateway pods bind them: the Service's ports are the listener ports, end to end.
            securityContext: { runAsUser: 1337, runAsGroup: 1337, runAsNonRoot: true, fsGroup: 1337, seccompProfile: { type: 'RuntimeDefault' }, sysctls: [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }] },
            containers: [gatewayContainer(`${namespace}/${gwName}`, proxyLabels, settings.image)],
            volumes: [
              { name: 'certs', emptyDir: {} },
              { name: 'tmp', emptyDir: {} },
            ],
          },
        },
      },
    },
    roleBinding: {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: metadata(name),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: GATEWAY_SECRETS_ROLE },
      subjects: [{ kind: 'ServiceAccount', name: sa, namespace }],
    },
  };
}

/**
 * Fields written when an object is created and never again, so that `kubectl scale`, an HPA or
 * edited resources stay as their owner set them.
 */
export const CREATE_ONLY: Readonly<Record<string, Obj>> = {
  Deployment: { spec: { replicas: 1 } },
};

function gatewayContainer(gatewayKey: string, labels: string, image: string): Obj {
  return {
    name: 'meshgate',
    image,
    // `--ports 80=80`: no listener port is moved; every other port listens as it is too.
    args: ['gateway', '--config-source', 'kubernetes', '--namespace', '$(POD_NAMESPACE)', '--gateway-name', gatewayKey, '--labels', labels, '--ports', '80=80', '--certs', '/var/lib/meshgate/certs', '--workers', '1'],
    env: [
      { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      { name: 'NODE_OPTIONS', value: '--max-semi-space-size=32' },
    ],
    ports: [
      { name: 'status-port', containerPort: 15021, protocol: 'TCP' },
      { name: 'http-envoy-prom', containerPort: 15090, protocol: 'TCP' },
    ],
    readinessProbe: { httpGet: { path: '/healthz/ready', port: 15021, scheme: 'HTTP' }, initialDelaySeconds: 1, periodSeconds: 2, failureThreshold: 30, successThreshold: 1, timeoutSeconds: 1 },
    securityContext: { runAsUser: 1337, runAsGroup: 1337, runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
    volumeMounts: [
      { name: 'certs', mountPath: '/var/lib/meshgate/certs' },
      { name: 'tmp', mountPath: '/tmp' },
    ],
  };
}

/** The status port, then one port per listener port (the first listener on it names it), as Istio's. */
function servicePorts(gw: GatewayObject): Obj[] {
  const ports: Obj[] = [{ name: 'status-port', port: 15021, protocol: 'TCP', appProtocol: 'tcp' }];
  const seen = new Set<number>();
  (gw.spec.listeners ?? []).forEach((l, i) => {
    if (seen.has(l.port)) return;
    seen.add(l.port);
    // A listener name allows dots and 253 characters; a port name neither.
    const name = (l.name ?? '').replaceAll('.', '-').slice(0, 63) || `${l.protocol.toLowerCase()}-${i}`;
    ports.push({ name, port: l.port, protocol: 'TCP', appProtocol: l.protocol.toLowerCase() });
  });
  return ports;
}

/**
 * spec.infrastructure's labels or annotations when given, else the Gateway's own (Istio copies
 * them by default); names under gateway.networking.k8s.io/ are the API's and are not copied.
 */
function infrastructure(gw: GatewayObject, which: 'labels' | 'annotations'): Record<string, string> {
  const infra = gw.spec.infrastructure?.[which];
  const from = infra ?? gw.metadata[which] ?? {};
  return Object.fromEntries(Object.entries(from).filter(([k]) => !NOT_PROPAGATED.has(k) && !(infra && k.startsWith('gateway.networking.k8s.io/'))));
}

/**
 * The Service of a Gateway's own deployment, when it has one: named for the Gateway, in its
 * namespace, made by a gateway controller. Such a Gateway is served by the gateways behind that
 * Service only; its status addresses are that Service's.
 */
export function ownService<R extends { readonly kind: string; readonly metadata: { readonly name: string; readonly namespace: string; readonly labels: Readonly<Record<string, string>> } }>(
  gw: { readonly metadata: { readonly name: string; readonly namespace: string; readonly annotations?: Readonly<Record<string, string>> }; readonly spec: { readonly gatewayClassName: string; readonly addresses?: ReadonlyArray<{ readonly type?: string }> } },
  resources: readonly R[],
): R | undefined {
  if (isManualDeployment(gw.spec)) return undefined;
  const name = deploymentName(gw as GatewayObject);
  return resources.find((r) => r.kind === 'Service' && r.metadata.namespace === gw.metadata.namespace && r.metadata.name === name && MANAGED_LABEL in r.metadata.labels);
}
