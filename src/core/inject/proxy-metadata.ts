// Istio's proxy metadata at injection: `proxyMetadata` of the mesh config's `defaultConfig`, with the
// pod's `proxy.istio.io/config` annotation (a ProxyConfig in YAML or JSON) setting keys over it,
// becomes environment variables of both injected containers, as Istio's template writes them. That
// is how a mesh or one workload turns on DNS capture: ISTIO_META_DNS_CAPTURE reaches the init
// container (`meshgate iptables` adds the DNS redirect) and the sidecar (its DNS proxy), and
// ISTIO_META_DNS_AUTO_ALLOCATE the sidecar.

import { parseEmbeddedYaml } from '../config/embedded-yaml.js';

export const PROXY_CONFIG_ANNOTATION = 'proxy.istio.io/config';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `defaultConfig.proxyMetadata` of a mesh config (parsed), values as strings; empty when it has none. */
export function meshProxyMetadata(mesh: unknown): Record<string, string> {
  const dc = isObj(mesh) ? mesh['defaultConfig'] : undefined;
  return metadataOf(isObj(dc) ? dc['proxyMetadata'] : undefined);
}

/**
 * The proxy metadata of one pod: the mesh's, then the annotation's keys over it. An annotation that
 * is not a ProxyConfig is left out with a `problem` for the injector's log, as Istio ignores it.
 */
export function podProxyMetadata(annotations: Readonly<Record<string, string>>, mesh: Readonly<Record<string, string>> = {}): { metadata: Record<string, string>; problem?: string } {
  const text = annotations[PROXY_CONFIG_ANNOTATION];
  if (text === undefined || text.trim() === '') return { metadata: { ...mesh } };
  const parsed = parseEmbeddedYaml(text);
  if (!parsed.ok || !isObj(parsed.value)) return { metadata: { ...mesh }, problem: `${PROXY_CONFIG_ANNOTATION} is not a ProxyConfig (YAML or JSON mapping): left out` };
  return { metadata: { ...mesh, ...metadataOf(parsed.value['proxyMetadata']) } };
}

function metadataOf(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isObj(value)) return out;
  for (const [k, v] of Object.entries(value)) if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = String(v);
  return out;
}
