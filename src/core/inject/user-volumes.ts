// Istio's `sidecar.istio.io/userVolume` and `sidecar.istio.io/userVolumeMount` pod annotations:
// volumes the injector adds to the pod and mounts into the proxy container, such as the certificate
// files a Sidecar ingress listener's `tls` names (Istio's "Ingress Sidecar TLS Termination" task).
// Either annotation is JSON in one of the two forms Istio's template reads: an object keyed by the
// volume's name (`{"tls-secret": {"secret": {...}}}`), or a list of entries that carry their own
// `name` (`[{"name": "tls-secret", "secret": {...}}]`). An annotation that is not such JSON adds nothing.

type Json = Record<string, unknown>;

export const USER_VOLUME = 'sidecar.istio.io/userVolume';
export const USER_VOLUME_MOUNT = 'sidecar.istio.io/userVolumeMount';

export function userVolumes(annotations: Readonly<Record<string, string>>): { readonly volumes: Json[]; readonly mounts: Json[] } {
  return { volumes: named(annotations[USER_VOLUME]), mounts: named(annotations[USER_VOLUME_MOUNT]) };
}

function named(text: string | undefined): Json[] {
  if (!text) return [];
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return [];
  }
  const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (Array.isArray(value)) return value.filter((v): v is Json => isObject(v) && typeof v.name === 'string');
  if (!isObject(value)) return [];
  return Object.entries(value).filter((e): e is [string, Json] => isObject(e[1])).map(([name, spec]) => ({ name, ...spec }));
}
