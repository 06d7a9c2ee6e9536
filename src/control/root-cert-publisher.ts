// Publishes the mesh root where every proxy can mount it, as istiod does: the ConfigMap
// `istio-ca-root-cert` (key `root-cert.pem`) in every namespace, created when a namespace appears,
// and put back when someone deletes or edits it. Namespaces and those ConfigMaps are watched (the
// ConfigMaps by name, with a field selector: no other ConfigMap is read); after any change the whole
// set is compared with what should be there and the differences are written. A write that fails is
// tried again with back-off; nothing else waits for it.

import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { isRecord } from '../core/config/load.js';
import { KubeInformer } from '../core/sources/kube-informer.js';
import { describeError, kubeJson } from '../core/sources/kube-request.js';
import { ReconcileRounds } from '../core/sources/reconcile-rounds.js';

export const ROOT_CONFIGMAP = 'istio-ca-root-cert';
export const ROOT_CONFIGMAP_KEY = 'root-cert.pem';
/** istiod leaves these alone (its injector's ignored namespaces): nothing in them joins the mesh. */
export const IGNORED_NAMESPACES: ReadonlySet<string> = new Set(['kube-system', 'kube-public', 'kube-node-lease', 'local-path-storage']);

export interface RootCertPublisherOptions {
  readonly kubeconfig: KubeConfig;
  readonly rootCertPem: string;
  readonly logger: Logger;
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
}

export class RootCertPublisher {
  readonly #opts: RootCertPublisherOptions;
  readonly #namespaces: KubeInformer;
  readonly #configMaps: KubeInformer;
  readonly #rounds: ReconcileRounds;

  constructor(opts: RootCertPublisherOptions) {
    this.#opts = opts;
    const common = { kubeconfig: opts.kubeconfig, logger: opts.logger, ...(opts.backoff ? { backoff: opts.backoff } : {}) };
    this.#namespaces = new KubeInformer({ ...common, path: '/api/v1/namespaces' });
    this.#configMaps = new KubeInformer({ ...common, path: '/api/v1/configmaps', fieldSelector: `metadata.name=${ROOT_CONFIGMAP}` });
    this.#rounds = new ReconcileRounds({ round: () => this.#round(), ready: () => this.#namespaces.listed && this.#configMaps.listed, ...(opts.backoff ? { backoff: opts.backoff } : {}) });
    this.#namespaces.onChange(() => this.#rounds.trigger());
    this.#configMaps.onChange(() => this.#rounds.trigger());
  }

  /** Resolves once both collections are listed and the first round of writes is done (failed or not). */
  async start(): Promise<void> {
    await Promise.all([this.#namespaces.start(), this.#configMaps.start()]);
    this.#rounds.trigger();
    await this.#rounds.settled();
  }

  async close(): Promise<void> {
    await Promise.all([this.#rounds.close(), this.#namespaces.close(), this.#configMaps.close()]);
  }

  /** Writes what differs; resolves to how many writes failed. */
  async #round(): Promise<number> {
    const { kubeconfig: kc, rootCertPem, logger: log } = this.#opts;
    let failed = 0;
    for (const ns of this.#namespaces.list()) {
      if (this.#rounds.closed) return failed;
      const name = ns.metadata?.name;
      if (!name || IGNORED_NAMESPACES.has(name)) continue;
      // A namespace being deleted refuses new objects; writing would only fail.
      if (isRecord(ns.status) && ns.status.phase === 'Terminating') continue;
      const cm = this.#configMaps.get(ROOT_CONFIGMAP, name);
      const data = isRecord(cm?.data) ? cm.data : {};
      if (cm && data[ROOT_CONFIGMAP_KEY] === rootCertPem) continue;
      const path = `/api/v1/namespaces/${encodeURIComponent(name)}/configmaps`;
      const labels = { 'istio.io/config': 'true' };
      try {
        if (!cm) {
          await kubeJson(kc, 'POST', path, [201, 200, 409], { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: ROOT_CONFIGMAP, namespace: name, labels }, data: { [ROOT_CONFIGMAP_KEY]: rootCertPem } });
          log.info({ namespace: name }, `published the mesh root in ConfigMap ${name}/${ROOT_CONFIGMAP}`);
        } else {
          const meta = isRecord(cm.metadata) ? cm.metadata : {};
          await kubeJson(kc, 'PUT', `${path}/${ROOT_CONFIGMAP}`, [200], {
            apiVersion: 'v1',
            kind: 'ConfigMap',
            metadata: { ...meta, labels: { ...(isRecord(meta.labels) ? meta.labels : {}), ...labels } },
            data: { ...data, [ROOT_CONFIGMAP_KEY]: rootCertPem },
          });
          log.warn({ namespace: name }, `ConfigMap ${name}/${ROOT_CONFIGMAP} did not hold the mesh root; put it back`);
        }
      } catch (err) {
        // A 409 on replace is a newer version in between; its watch event brings another round.
        failed++;
        log.warn({ namespace: name, error: describeError(err) }, `cannot write ConfigMap ${name}/${ROOT_CONFIGMAP}; trying again`);
      }
    }
    return failed;
  }
}
