// The Secrets of one namespace, listed and watched (namespace-scoped: the gateway's Role allows no
// more), for `credentialName` in cluster mode; and writing one Secret, for certificates the gateway
// obtains itself (ACME) and the CA the control plane keeps. Secret data is key material: nothing
// here logs it, only names.

import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { isRecord } from '../config/load.js';
import type { SecretReader, SecretWriter } from '../tls/types.js';
import { KubeInformer } from './kube-informer.js';
import { kubeJson, KubeApiError } from './kube-request.js';
import type { KubeObject } from './kube-objects.js';

/**
 * Secret types that are never certificates and are often many and large (Helm keeps every release
 * in one; every service account had a token Secret before 1.24): the server filters them out, as
 * istiod's Secret controller does.
 */
export const SECRET_FIELD_SELECTOR = 'type!=helm.sh/release.v1,type!=kubernetes.io/service-account-token';

export function secretsPath(namespace: string): string {
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`;
}

export class KubeSecrets implements SecretReader, SecretWriter {
  readonly namespace: string;
  readonly #informer: KubeInformer;
  readonly #kc: KubeConfig;

  constructor(opts: { kubeconfig: KubeConfig; namespace: string; logger: Logger; debounceMs?: number; backoff?: { initialMs: number; maxMs: number } }) {
    this.namespace = opts.namespace;
    this.#kc = opts.kubeconfig;
    this.#informer = new KubeInformer({
      kubeconfig: opts.kubeconfig,
      path: secretsPath(opts.namespace),
      fieldSelector: SECRET_FIELD_SELECTOR,
      logger: opts.logger,
      ...(opts.debounceMs !== undefined ? { debounceMs: opts.debounceMs } : {}),
      ...(opts.backoff ? { backoff: opts.backoff } : {}),
    });
  }

  /** Resolves once the first list is in, so the first configuration finds the Secrets already there. */
  start(timeoutMs?: number): Promise<void> {
    return this.#informer.start(timeoutMs);
  }

  get(name: string): { type: string; data: Record<string, string>; annotations: Record<string, string> } | undefined {
    const obj = this.#informer.get(name, this.namespace);
    return obj ? decodeSecret(obj) : undefined;
  }

  onChange(listener: () => void): () => void {
    return this.#informer.onChange(listener);
  }

  fetch(name: string, opts: Parameters<SecretWriter['fetch']>[1] = {}): ReturnType<SecretWriter['fetch']> {
    return getSecret(this.#kc, this.namespace, name, opts);
  }

  put(name: string, secret: Parameters<SecretWriter['put']>[1], opts: Parameters<SecretWriter['put']>[2] = {}): Promise<{ created: boolean; conflict?: boolean }> {
    return putSecret(this.#kc, { namespace: this.namespace, name, ...secret }, opts);
  }

  close(): Promise<void> {
    return this.#informer.close();
  }
}

/** A Secret's type, data (base64 decoded; `stringData` never comes back from the server) and annotations. */
export function decodeSecret(obj: KubeObject): { type: string; data: Record<string, string>; annotations: Record<string, string> } {
  const data: Record<string, string> = {};
  if (isRecord(obj.data)) {
    for (const [k, v] of Object.entries(obj.data)) if (typeof v === 'string') data[k] = Buffer.from(v, 'base64').toString('utf8');
  }
  const annotations: Record<string, string> = {};
  const raw = obj.metadata?.annotations;
  if (isRecord(raw)) for (const [k, v] of Object.entries(raw)) if (typeof v === 'string') annotations[k] = v;
  return { type: typeof obj.type === 'string' ? obj.type : 'Opaque', data, annotations };
}

/** One Secret read directly (not watched): undefined when it does not exist. */
export async function getSecret(
  kc: KubeConfig,
  namespace: string,
  name: string,
  opts: { readonly timeoutMs?: number } = {},
): Promise<{ type: string; data: Record<string, string>; annotations: Record<string, string>; resourceVersion?: string } | undefined> {
  const res = await kubeJson(kc, 'GET', `${secretsPath(namespace)}/${encodeURIComponent(name)}`, [200, 404], undefined, opts);
  if (res.status === 404) return undefined;
  const meta = isRecord(res.body.metadata) ? res.body.metadata : {};
  return { ...decodeSecret(res.body as KubeObject), ...(typeof meta.resourceVersion === 'string' ? { resourceVersion: meta.resourceVersion } : {}) };
}

export interface SecretWrite {
  readonly namespace: string;
  readonly name: string;
  readonly type: string;
  readonly data: Readonly<Record<string, string>>;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

/**
 * Creates the Secret, or replaces its data, labels and annotations when it exists (keeping what
 * others put in its metadata). `onlyCreate`: an existing Secret is left alone and `created: false`
 * comes back, for first-start races between replicas. `ifResourceVersion`: replaced only if still
 * at that version (the caller read it and changed it), else `conflict: true`, to read again.
 */
export async function putSecret(kc: KubeConfig, s: SecretWrite, opts: { onlyCreate?: boolean; ifResourceVersion?: string } = {}): Promise<{ created: boolean; conflict?: boolean }> {
  const path = secretsPath(s.namespace);
  const data = Object.fromEntries(Object.entries(s.data).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')]));
  const metadata = { name: s.name, namespace: s.namespace, ...(s.labels ? { labels: s.labels } : {}), ...(s.annotations ? { annotations: s.annotations } : {}) };
  // Two tries: a conflict on replace means someone wrote in between; read again and write over it.
  for (let attempt = 0; ; attempt++) {
    const existing = await kubeJson(kc, 'GET', `${path}/${encodeURIComponent(s.name)}`, [200, 404]);
    if (existing.status === 404) {
      const created = await kubeJson(kc, 'POST', path, [201, 200, 409], { apiVersion: 'v1', kind: 'Secret', metadata, type: s.type, data });
      if (created.status !== 409) return { created: true };
      if (opts.onlyCreate) return { created: false };
      continue;
    }
    if (opts.onlyCreate) return { created: false };
    const old = existing.body;
    const oldMeta = isRecord(old.metadata) ? old.metadata : {};
    const conditional = opts.ifResourceVersion !== undefined;
    if (conditional && oldMeta.resourceVersion !== opts.ifResourceVersion) return { created: false, conflict: true };
    const merged = {
      ...oldMeta,
      labels: { ...(isRecord(oldMeta.labels) ? oldMeta.labels : {}), ...s.labels },
      annotations: { ...(isRecord(oldMeta.annotations) ? oldMeta.annotations : {}), ...s.annotations },
    };
    // The type of a Secret cannot change; a Secret of another type is replaced only in its data.
    const body = { apiVersion: 'v1', kind: 'Secret', metadata: merged, type: typeof old.type === 'string' ? old.type : s.type, data };
    try {
      await kubeJson(kc, 'PUT', `${path}/${encodeURIComponent(s.name)}`, [200], body);
      return { created: false };
    } catch (err) {
      if (conditional && err instanceof KubeApiError && err.statusCode === 409) return { created: false, conflict: true };
      if (!(err instanceof KubeApiError) || err.statusCode !== 409 || attempt >= 2) throw err;
    }
  }
}
