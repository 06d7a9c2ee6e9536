// The Nodes whose ExternalIP addresses an Ingress status lists (ingressService: "", istiod's
// node-address mode) are watched, one Node each by name, so that a node whose addresses change
// brings a new status write instead of waiting for the next configuration change. Only the Nodes
// of the ingress gateway pods are watched, and none when that mode is off.

import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { KubeInformer } from '../sources/kube-informer.js';

export class NodeWatch {
  readonly #kc: KubeConfig;
  readonly #log: Logger;
  readonly #onChange: () => void;
  readonly #informers = new Map<string, KubeInformer>();

  constructor(kubeconfig: KubeConfig, logger: Logger, onChange: () => void) {
    this.#kc = kubeconfig;
    this.#log = logger;
    this.#onChange = onChange;
  }

  /** Watch exactly these Nodes: new names start a watch, names no longer listed end theirs. */
  follow(names: readonly string[]): void {
    for (const [name, informer] of this.#informers) {
      if (names.includes(name)) continue;
      this.#informers.delete(name);
      void informer.close();
    }
    for (const name of names) {
      if (this.#informers.has(name)) continue;
      const informer = new KubeInformer({ kubeconfig: this.#kc, logger: this.#log, path: '/api/v1/nodes', fieldSelector: `metadata.name=${name}` });
      this.#informers.set(name, informer);
      informer.onChange(this.#onChange);
      // A Node that cannot be listed (no RBAC for list/watch on nodes) is retried by the informer;
      // the status still reads it with a plain get on each write.
      informer.start().catch((err: Error) => this.#log.debug({ node: name, error: err.message }, 'cannot watch the node of an ingress gateway pod'));
    }
  }

  async close(): Promise<void> {
    const all = [...this.#informers.values()];
    this.#informers.clear();
    await Promise.all(all.map((i) => i.close()));
  }
}
