// The sidecar injection template: what a pod looks like with meshgate beside it, field for field
// as Istio's injector writes it where meshgate does the same job:
//   init container `istio-init` → `meshgate iptables` with the capture annotations as flags (root,
//     NET_ADMIN and NET_RAW, everything else dropped);
//   container `istio-proxy` → `meshgate sidecar --capture` (uid/gid 1337, read-only root, readiness
//     on 15021 /healthz/ready, port 15090 http-envoy-prom, the pod's identity from the downward API,
//     resources from sidecar.istio.io/proxyCPU, proxyMemory, proxyCPULimit, proxyMemoryLimit);
//   volumes: the projected service-account token (audience istio-ca) at /var/run/secrets/tokens,
//     the root certificate from the ConfigMap istio-ca-root-cert at /var/run/secrets/istio, and
//     Istio's istio-envoy, istio-data and istio-podinfo;
//   labels security.istio.io/tlsMode=istio and service.istio.io/canonical-name/-revision;
//   annotations sidecar.istio.io/status, kubectl's default container, and prometheus.io/scrape|port|path
//     at the sidecar's merged metrics on 15020, the app's own scrape settings handed to the sidecar
//     in ISTIO_PROMETHEUS_ANNOTATIONS (prometheus-annotations.ts);
//   HTTP probes of the app rewritten through the sidecar's 15020 (app-probes.ts);
//   the pod's sidecar.istio.io/userVolume volumes, mounted in the proxy by userVolumeMount (user-volumes.ts);
//   the pod's ProxyConfig (proxy.istio.io/config over the mesh's defaultConfig, proxy-config.ts) in
//     PROXY_CONFIG and its proxyMetadata as env vars of both containers (DNS capture is turned on so);
//   where the proxy sits and how it starts (last container, first and holding the app, or a native
//     sidecar among the init containers) and its startup probe (lifecycle.ts).
// The pod is copied, never changed in place.

import { APP_PROBERS_ENV, rewriteAppProbes } from './app-probes.js';
import { DEFAULT_REVISION, STATUS_ANNOTATION } from './selection.js';
import { SIDECAR_ENV } from './sidecar-node-options.js';
import { userVolumes } from './user-volumes.js';
import { podProxyConfig } from './proxy-config.js';
import { nativeSidecarFor, placeProxy } from './lifecycle.js';
import { applyMetricsMerge, pointsAtMergedMetrics, PROMETHEUS_SCRAPE_ENV, SIDECAR_METRICS_PORT } from './prometheus-annotations.js';

type Json = Record<string, unknown>;

export const PROXY_CONTAINER = 'istio-proxy';
export const INIT_CONTAINER = 'istio-init';
export const TOKEN_PATH = '/var/run/secrets/tokens/istio-token';
export const ROOT_CERT_DIR = '/var/run/secrets/istio';
export const ROOT_CONFIGMAP = 'istio-ca-root-cert';
export const TOKEN_AUDIENCE = 'istio-ca';
const UNCHANGED_ROOT_DIR_VOLUMES = ['istio-envoy', 'istio-data', 'istio-podinfo'] as const;
const VOLUMES = ['istio-envoy', 'istio-data', 'istio-podinfo', 'istio-token', 'istiod-ca-cert'] as const;

export interface InjectOptions {
  /** The meshgate image for both injected containers. */
  readonly image: string;
  /** The control plane, as proxies reach it. */
  readonly controlAddress: string;
  readonly trustDomain?: string;
  readonly revision?: string;
  readonly imagePullPolicy?: string;
  /** Used when the pod has no name yet (a Deployment's template): the workload's name. */
  readonly workloadName?: string;
  /** The mesh config's `enablePrometheusMerge` (default true); a pod's merge-metrics annotation wins. */
  readonly enablePrometheusMerge?: boolean;
  /** `apiVersion` and `kind` of the owning workload, for ISTIO_META_OWNER. */
  readonly owner?: { readonly apiVersion: string; readonly kind: string; readonly name: string; readonly namespace: string };
  /** The mesh config's `defaultConfig` (ProxyConfig), under each pod's proxy.istio.io/config. */
  readonly meshDefaultConfig?: Record<string, unknown>;
  /** The injector's own hold (Istio's values.global.proxy.holdApplicationUntilProxyStarts), or'ed with the pod's ProxyConfig. */
  readonly holdApplicationUntilProxyStarts?: boolean;
  /** The injector's ENABLE_NATIVE_SIDECARS, resolved; a pod's sidecar.istio.io/nativeSidecar wins. */
  readonly nativeSidecars?: boolean;
}

const A = {
  proxyCPU: 'sidecar.istio.io/proxyCPU',
  proxyMemory: 'sidecar.istio.io/proxyMemory',
  proxyCPULimit: 'sidecar.istio.io/proxyCPULimit',
  proxyMemoryLimit: 'sidecar.istio.io/proxyMemoryLimit',
  includeOutboundIPRanges: 'traffic.sidecar.istio.io/includeOutboundIPRanges',
  excludeOutboundIPRanges: 'traffic.sidecar.istio.io/excludeOutboundIPRanges',
  includeInboundPorts: 'traffic.sidecar.istio.io/includeInboundPorts',
  excludeInboundPorts: 'traffic.sidecar.istio.io/excludeInboundPorts',
  excludeOutboundPorts: 'traffic.sidecar.istio.io/excludeOutboundPorts',
  rewriteProbes: 'sidecar.istio.io/rewriteAppHTTPProbers',
  readinessInitialDelay: 'readiness.status.sidecar.istio.io/initialDelaySeconds',
  readinessPeriod: 'readiness.status.sidecar.istio.io/periodSeconds',
  readinessFailureThreshold: 'readiness.status.sidecar.istio.io/failureThreshold',
} as const;

/** Istio's global.proxy.resources default. */
const DEFAULT_RESOURCES = { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '2000m', memory: '1024Mi' } };

export function injectPod(pod: Json, opts: InjectOptions): Json {
  const out = structuredClone(pod);
  const meta = ((out.metadata ??= {}) as Json);
  const spec = ((out.spec ??= {}) as Json);
  const labels = ((meta.labels ??= {}) as Record<string, string>);
  const annotations = ((meta.annotations ??= {}) as Record<string, string>);
  const pc = podProxyConfig(annotations, opts.meshDefaultConfig);
  const native = nativeSidecarFor(annotations, opts.nativeSidecars ?? false);
  const previousProxy = [...((spec.containers ?? []) as Json[]), ...((spec.initContainers ?? []) as Json[])].find((c) => c.name === PROXY_CONTAINER);
  const containers = ((spec.containers ??= []) as Json[]).filter((c) => c.name !== PROXY_CONTAINER);
  const appNames = containers.map((c) => String(c.name ?? ''));
  const trustDomain = opts.trustDomain ?? 'cluster.local';
  const workload = opts.workloadName ?? opts.owner?.name ?? (typeof meta.name === 'string' ? meta.name : undefined);

  labels['security.istio.io/tlsMode'] ??= 'istio';
  labels['service.istio.io/canonical-name'] ??= labels['app.kubernetes.io/name'] ?? labels.app ?? workload ?? 'unknown';
  labels['service.istio.io/canonical-revision'] ??= labels['app.kubernetes.io/version'] ?? labels.version ?? 'latest';
  if (appNames[0]) {
    annotations['kubectl.kubernetes.io/default-logs-container'] ??= appNames[0];
    annotations['kubectl.kubernetes.io/default-container'] ??= appNames[0];
  }

  // A pod injected before already points at 15020: the app's settings are in its old proxy's env.
  const scrapeEnv = pointsAtMergedMetrics(annotations)
    ? (((previousProxy?.env as Json[] | undefined) ?? []).find((e) => e.name === PROMETHEUS_SCRAPE_ENV)?.value as string | undefined) ?? '{}'
    : applyMetricsMerge(annotations, opts.enablePrometheusMerge ?? true);
  const probers = annotations[A.rewriteProbes] === 'false' ? {} : rewriteAppProbes(containers);
  const podPorts = containers.flatMap((c) => (Array.isArray(c.ports) ? (c.ports as Json[]) : []));
  const appPort = podPorts.find((p) => typeof p.containerPort === 'number')?.containerPort as number | undefined;
  const resources = resourcesFrom(annotations);
  const user = userVolumes(annotations);

  const init: Json = {
    name: INIT_CONTAINER,
    image: opts.image,
    ...(opts.imagePullPolicy ? { imagePullPolicy: opts.imagePullPolicy } : {}),
    args: captureArgs(annotations),
    // The proxy metadata reaches the init container too: ISTIO_META_DNS_CAPTURE adds the DNS redirect.
    ...(Object.keys(pc.proxyMetadata).length > 0 ? { env: Object.entries(pc.proxyMetadata).map(([name, value]) => ({ name, value })) } : {}),
    resources,
    securityContext: {
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
      readOnlyRootFilesystem: false,
      runAsGroup: 0,
      runAsNonRoot: false,
      runAsUser: 0,
    },
  };

  const proxy: Json = {
    name: PROXY_CONTAINER,
    image: opts.image,
    ...(opts.imagePullPolicy ? { imagePullPolicy: opts.imagePullPolicy } : {}),
    ports: [{ containerPort: SIDECAR_METRICS_PORT, protocol: 'TCP', name: 'http-envoy-prom' }],
    args: [
      'sidecar',
      '--control', opts.controlAddress,
      '--token', TOKEN_PATH,
      '--root-cert', `${ROOT_CERT_DIR}/root-cert.pem`,
      '--namespace', '$(POD_NAMESPACE)',
      '--service-account', '$(SERVICE_ACCOUNT)',
      '--workload', '$(POD_NAME)',
      '--labels', Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(','),
      '--capture',
      '--app-host', '$(INSTANCE_IP)',
      ...(appPort !== undefined ? ['--app-port', String(appPort)] : []),
    ],
    env: [
      { name: 'CA_ADDR', value: opts.controlAddress.replace(/^https:\/\//, '') },
      fieldEnv('POD_NAME', 'metadata.name'),
      fieldEnv('POD_NAMESPACE', 'metadata.namespace'),
      fieldEnv('INSTANCE_IP', 'status.podIP'),
      fieldEnv('SERVICE_ACCOUNT', 'spec.serviceAccountName'),
      fieldEnv('HOST_IP', 'status.hostIP'),
      { name: 'ISTIO_META_POD_PORTS', value: JSON.stringify(podPorts) },
      { name: 'ISTIO_META_APP_CONTAINERS', value: appNames.join(',') },
      { name: 'ISTIO_META_CLUSTER_ID', value: 'Kubernetes' },
      { name: 'ISTIO_META_INTERCEPTION_MODE', value: 'REDIRECT' },
      ...(workload ? [{ name: 'ISTIO_META_WORKLOAD_NAME', value: workload }] : []),
      ...(opts.owner ? [{ name: 'ISTIO_META_OWNER', value: `kubernetes://apis/${opts.owner.apiVersion}/namespaces/${opts.owner.namespace}/${opts.owner.kind.toLowerCase()}s/${opts.owner.name}` }] : []),
      { name: 'ISTIO_META_MESH_ID', value: trustDomain },
      { name: 'TRUST_DOMAIN', value: trustDomain },
      ...Object.entries(SIDECAR_ENV).map(([name, value]) => ({ name, value })),
      ...(Object.keys(probers).length > 0 ? [{ name: APP_PROBERS_ENV, value: JSON.stringify(probers) }] : []),
      ...(scrapeEnv !== undefined ? [{ name: PROMETHEUS_SCRAPE_ENV, value: scrapeEnv }] : []),
      ...(Object.keys(pc.config).length > 0 ? [{ name: 'PROXY_CONFIG', value: JSON.stringify(pc.config) }] : []),
      ...Object.entries(pc.proxyMetadata).map(([name, value]) => ({ name, value })),
    ],
    readinessProbe: {
      httpGet: { path: '/healthz/ready', port: 15021 },
      initialDelaySeconds: intAnnotation(annotations[A.readinessInitialDelay], 0),
      periodSeconds: intAnnotation(annotations[A.readinessPeriod], 15),
      timeoutSeconds: 3,
      failureThreshold: intAnnotation(annotations[A.readinessFailureThreshold], 4),
    },
    securityContext: {
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      privileged: false,
      readOnlyRootFilesystem: true,
      runAsGroup: 1337,
      runAsNonRoot: true,
      runAsUser: 1337,
    },
    resources,
    volumeMounts: [
      { mountPath: ROOT_CERT_DIR, name: 'istiod-ca-cert' },
      { mountPath: '/var/lib/istio/data', name: 'istio-data' },
      { mountPath: '/etc/istio/proxy', name: 'istio-envoy' },
      { mountPath: '/var/run/secrets/tokens', name: 'istio-token' },
      { mountPath: '/etc/istio/pod', name: 'istio-podinfo' },
      ...user.mounts,
    ],
  };

  const userInits = ((spec.initContainers as Json[] | undefined) ?? []).filter((c) => c.name !== INIT_CONTAINER && c.name !== PROXY_CONTAINER);
  const placed = placeProxy(containers, userInits, proxy, init, { native, hold: pc.holdApplicationUntilProxyStarts || opts.holdApplicationUntilProxyStarts === true });
  spec.containers = placed.containers;
  spec.initContainers = placed.initContainers;
  const ours = new Set<string>([...VOLUMES, ...user.volumes.map((v) => String(v.name))]);
  spec.volumes = [
    ...((spec.volumes as Json[] | undefined) ?? []).filter((v) => !ours.has(String(v.name))),
    { name: 'istio-envoy', emptyDir: { medium: 'Memory' } },
    { name: 'istio-data', emptyDir: {} },
    {
      name: 'istio-podinfo',
      downwardAPI: {
        items: [
          { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
          { path: 'annotations', fieldRef: { fieldPath: 'metadata.annotations' } },
        ],
      },
    },
    { name: 'istio-token', projected: { sources: [{ serviceAccountToken: { path: 'istio-token', expirationSeconds: 43200, audience: TOKEN_AUDIENCE } }] } },
    { name: 'istiod-ca-cert', configMap: { name: ROOT_CONFIGMAP } },
    ...user.volumes,
  ];
  annotations[STATUS_ANNOTATION] = JSON.stringify({
    initContainers: native ? [INIT_CONTAINER, PROXY_CONTAINER] : [INIT_CONTAINER],
    containers: native ? null : [PROXY_CONTAINER],
    volumes: [...UNCHANGED_ROOT_DIR_VOLUMES, 'istio-token', 'istiod-ca-cert'],
    imagePullSecrets: null,
    revision: opts.revision ?? DEFAULT_REVISION,
  });
  return out;
}

/** The init container's flags, from the traffic annotations (Istio's defaults otherwise). */
export function captureArgs(annotations: Readonly<Record<string, string>>): string[] {
  const excludeIn = ['15090', '15021', '15020', ...(annotations[A.excludeInboundPorts] ?? '').split(',').map((p) => p.trim()).filter(Boolean)];
  return [
    'iptables',
    '-p', '15001',
    '-z', '15006',
    '-u', '1337',
    '-i', annotations[A.includeOutboundIPRanges] ?? '*',
    '-x', annotations[A.excludeOutboundIPRanges] ?? '',
    '-b', annotations[A.includeInboundPorts] ?? '*',
    '-d', [...new Set(excludeIn)].join(','),
    ...(annotations[A.excludeOutboundPorts] !== undefined ? ['-o', annotations[A.excludeOutboundPorts]] : []),
  ];
}

function resourcesFrom(annotations: Readonly<Record<string, string>>): Json {
  const has = [A.proxyCPU, A.proxyMemory, A.proxyCPULimit, A.proxyMemoryLimit].some((k) => annotations[k] !== undefined);
  if (!has) return structuredClone(DEFAULT_RESOURCES);
  const requests: Json = {};
  const limits: Json = {};
  if (annotations[A.proxyCPU] !== undefined) requests.cpu = annotations[A.proxyCPU];
  if (annotations[A.proxyMemory] !== undefined) requests.memory = annotations[A.proxyMemory];
  if (annotations[A.proxyCPULimit] !== undefined) limits.cpu = annotations[A.proxyCPULimit];
  if (annotations[A.proxyMemoryLimit] !== undefined) limits.memory = annotations[A.proxyMemoryLimit];
  return { ...(Object.keys(requests).length ? { requests } : {}), ...(Object.keys(limits).length ? { limits } : {}) };
}

function fieldEnv(name: string, fieldPath: string): Json {
  return { name, valueFrom: { fieldRef: { fieldPath } } };
}

function intAnnotation(value: string | undefined, fallback: number): number {
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : fallback;
}
