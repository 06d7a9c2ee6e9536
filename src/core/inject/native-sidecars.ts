// Whether the injector makes native sidecars (the proxy an init container with restartPolicy Always,
// lifecycle.ts) for pods that do not say: the env var ENABLE_NATIVE_SIDECARS, Istio's switch.
//   true   always;
//   false  never;
//   auto   (the default) where every node the pod may run on supports them: the pod's node when it
//          is already named, else every node of the cluster, each with a kubelet of 1.33 or later
//          (the release in which Kubernetes' sidecar containers became stable). It needs the nodes:
//          the webhook in cluster mode watches them; `meshgate inject` and file mode have none, and
//          then auto is off, as istioctl kube-inject without a cluster.
// Any other value is read as false, with a warning. A pod's sidecar.istio.io/nativeSidecar
// annotation ("true"/"false") wins over all of this.

export const NATIVE_SIDECARS_ENV = 'ENABLE_NATIVE_SIDECARS';
/** The kubelet minor version from which auto turns native sidecars on. */
export const NATIVE_SIDECARS_MIN_MINOR = 33;

export type NativeSidecarMode = 'true' | 'false' | 'auto';

export function nativeSidecarMode(value: string | undefined): { mode: NativeSidecarMode; problem?: string } {
  const v = (value ?? 'auto').trim();
  if (v === 'true' || v === 'false' || v === 'auto') return { mode: v };
  return { mode: 'false', problem: `${NATIVE_SIDECARS_ENV}: '${v}' is not true, false or auto; native sidecars are off` };
}

/** A kubelet version (`v1.33.1`, `v1.34.0-eks-…`) that runs sidecar containers as stable. */
export function kubeletSupportsNativeSidecars(version: string): boolean {
  const m = /^v?(\d+)\.(\d+)/.exec(version.trim());
  if (!m) return false;
  const major = Number(m[1]);
  return major > 1 || (major === 1 && Number(m[2]) >= NATIVE_SIDECARS_MIN_MINOR);
}

export interface NodeVersion {
  readonly name: string;
  readonly kubeletVersion: string;
}

/**
 * auto's answer for one pod: its node's kubelet when the pod names a node that is known, else every
 * node's (one older node turns it off for all: the pod could be scheduled there). No node known: off.
 */
export function autoNativeSidecars(nodes: readonly NodeVersion[], podNodeName?: string): boolean {
  if (podNodeName) {
    const node = nodes.find((n) => n.name === podNodeName);
    if (node) return kubeletSupportsNativeSidecars(node.kubeletVersion);
  }
  return nodes.length > 0 && nodes.every((n) => kubeletSupportsNativeSidecars(n.kubeletVersion));
}
