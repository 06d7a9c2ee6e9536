// An index of v1 Pods by name and by IP within each namespace, with what an endpoint needs from its
// pod: labels (for subsets), service account, locality, sidecar presence and named container ports.

import type { Labels } from '../model/istio.js';
import type { PodSpec, PodStatus } from '../model/kube.js';
import type { Resource } from '../model/resource.js';
import { hasMeshTls, localityFromLabels, selectorMatches } from './labels.js';

export interface PodInfo {
  readonly name: string;
  readonly namespace: string;
  readonly ip: string | undefined;
  readonly labels: Labels;
  readonly serviceAccount: string;
  readonly meshTls: boolean;
  /** `Ready` condition; a pod that says nothing about it counts as ready. */
  readonly ready: boolean;
  /** Finished pods (Succeeded/Failed) never back a service. */
  readonly terminated: boolean;
  /** `spec.hostname` when `spec.subdomain` is set: its name under the headless Service `subdomain` names. */
  readonly dnsName?: { readonly hostname: string; readonly subdomain: string };
  /** Named container ports, for Services whose targetPort is a name. */
  readonly namedPorts: ReadonlyMap<string, number>;
  /** Locality from the pod's own labels, or '' when they say nothing. */
  locality(fallbackZone?: string): string;
}

/** The Pod resources of the last index built, and the identity that stands for them. */
let lastPods: readonly Resource[] = [];
let lastIdentity: object = {};

export class PodIndex {
  readonly #byName = new Map<string, PodInfo>();
  readonly #byIp = new Map<string, PodInfo>();
  readonly #byNamespace = new Map<string, PodInfo[]>();
  /**
   * The same object for two indexes built from the very same Pod resources in the same order (two
   * reloads in a row that kept every Pod): what was derived from one index holds for the other.
   */
  readonly identity: object;

  constructor(resources: readonly Resource[]) {
    const podResources = resources.filter((r) => r.kind === 'Pod');
    if (podResources.length !== lastPods.length || podResources.some((p, i) => p !== lastPods[i])) {
      lastPods = podResources;
      lastIdentity = {};
    }
    this.identity = lastIdentity;
    for (const r of podResources) {
      const pod = podInfo(r);
      const ns = pod.namespace;
      this.#byName.set(`${ns}/${pod.name}`, pod);
      // The first pod holding an IP keeps it; a finished pod's stale IP must not shadow a live one.
      if (pod.ip && !pod.terminated && !this.#byIp.has(`${ns}/${pod.ip}`)) this.#byIp.set(`${ns}/${pod.ip}`, pod);
      const list = this.#byNamespace.get(ns);
      if (list) list.push(pod);
      else this.#byNamespace.set(ns, [pod]);
    }
  }

  byName(namespace: string, name: string): PodInfo | undefined {
    return this.#byName.get(`${namespace}/${name}`);
  }

  byIp(namespace: string, ip: string): PodInfo | undefined {
    return this.#byIp.get(`${namespace}/${ip}`);
  }

  /** Running pods with an IP in `namespace` whose labels match `selector`, in load order. */
  select(namespace: string, selector: Labels): PodInfo[] {
    return (this.#byNamespace.get(namespace) ?? []).filter((p) => p.ip && !p.terminated && selectorMatches(selector, p.labels));
  }
}

function podInfo(r: Resource): PodInfo {
  const spec = (isRecord(r.spec) ? r.spec : {}) as PodSpec;
  const status = (isRecord(r.raw.status) ? r.raw.status : {}) as PodStatus & { conditions?: unknown };
  const labels = r.metadata.labels;
  const namedPorts = new Map<string, number>();
  for (const c of Array.isArray(spec.containers) ? spec.containers : []) {
    for (const p of Array.isArray(c?.ports) ? c.ports : []) {
      if (typeof p?.name === 'string' && typeof p.containerPort === 'number' && !namedPorts.has(p.name)) namedPorts.set(p.name, p.containerPort);
    }
  }
  const readyCondition = Array.isArray(status.conditions)
    ? (status.conditions as unknown[]).find((c): c is { status?: unknown } => isRecord(c) && c.type === 'Ready')
    : undefined;
  return {
    name: r.metadata.name,
    namespace: r.metadata.namespace,
    ip: typeof status.podIP === 'string' && status.podIP !== '' ? status.podIP : undefined,
    labels,
    // The API server fills in `default` when a pod names no account; YAML written by hand often omits it.
    serviceAccount: typeof spec.serviceAccountName === 'string' && spec.serviceAccountName !== '' ? spec.serviceAccountName : 'default',
    meshTls: hasMeshTls(labels),
    ready: readyCondition === undefined || String(readyCondition.status) !== 'False',
    terminated: status.phase === 'Succeeded' || status.phase === 'Failed',
    ...(typeof spec.hostname === 'string' && spec.hostname !== '' && typeof spec.subdomain === 'string' && spec.subdomain !== ''
      ? { dnsName: { hostname: spec.hostname.toLowerCase(), subdomain: spec.subdomain.toLowerCase() } }
      : {}),
    namedPorts,
    locality: (fallbackZone = '') => localityFromLabels(labels, fallbackZone),
  };
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
