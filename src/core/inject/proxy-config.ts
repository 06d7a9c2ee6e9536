// A pod's ProxyConfig, as Istio's injector computes it: the mesh config's `defaultConfig`, with the
// pod's `proxy.istio.io/config` annotation (ProxyConfig as YAML or JSON) over it. Fields the
// annotation sets replace the mesh's; `proxyMetadata` is merged key by key (Istio merges that map
// the same way), so a pod adds one variable without repeating the mesh's. What injection reads of it:
//   holdApplicationUntilProxyStarts  the proxy starts first and the app waits for it (lifecycle.ts);
//   terminationDrainDuration         and the rest reach the sidecar whole in the env var
//                                    PROXY_CONFIG (JSON), as Istio's agent gets them;
//   proxyMetadata                    one env var each on the proxy container (EXIT_ON_ZERO_ACTIVE_CONNECTIONS,
//                                    MINIMUM_DRAIN_DURATION, …).
// An annotation that is not a YAML mapping fails injection, as it does in Istio: a pod whose
// settings are silently dropped would run with a drain or start-up order its owner did not ask for.

import { parseEmbeddedYaml } from '../config/embedded-yaml.js';

type Json = Record<string, unknown>;

export const PROXY_CONFIG_ANNOTATION = 'proxy.istio.io/config';

/** A pod the injector refuses, and why (the webhook answers allowed: false; `meshgate inject` reports it). */
export class InjectionError extends Error {}

export interface PodProxyConfig {
  /** The merged ProxyConfig; empty when neither the mesh nor the pod set anything. */
  readonly config: Json;
  readonly holdApplicationUntilProxyStarts: boolean;
  readonly proxyMetadata: Readonly<Record<string, string>>;
}

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

export function podProxyConfig(annotations: Readonly<Record<string, string>>, meshDefaultConfig: Json | undefined): PodProxyConfig {
  const base = isObj(meshDefaultConfig) ? meshDefaultConfig : {};
  let own: Json = {};
  const text = annotations[PROXY_CONFIG_ANNOTATION];
  if (text !== undefined && text.trim() !== '') {
    const parsed = parseEmbeddedYaml(text);
    if (!parsed.ok) throw new InjectionError(`${PROXY_CONFIG_ANNOTATION}: line ${parsed.line}: ${parsed.message}`);
    if (!isObj(parsed.value)) throw new InjectionError(`${PROXY_CONFIG_ANNOTATION} is not a ProxyConfig (a YAML mapping)`);
    own = parsed.value;
  }
  const metadata: Record<string, string> = {};
  for (const source of [base['proxyMetadata'], own['proxyMetadata']]) {
    if (source === undefined) continue;
    if (!isObj(source)) throw new InjectionError(`proxyMetadata must be a map of names to strings`);
    for (const [k, v] of Object.entries(source)) metadata[k] = typeof v === 'string' ? v : JSON.stringify(v);
  }
  const config: Json = { ...base, ...own, ...(Object.keys(metadata).length > 0 ? { proxyMetadata: metadata } : {}) };
  const hold = config['holdApplicationUntilProxyStarts'];
  if (hold !== undefined && typeof hold !== 'boolean' && hold !== 'true' && hold !== 'false') {
    throw new InjectionError(`holdApplicationUntilProxyStarts must be true or false, not ${JSON.stringify(hold)}`);
  }
  return { config, holdApplicationUntilProxyStarts: hold === true || hold === 'true', proxyMetadata: metadata };
}
