// The cluster's nodes and their kubelet versions, for ENABLE_NATIVE_SIDECARS=auto (the default): the
// injector makes a pod's proxy a native sidecar only where the kubelet runs sidecar containers
// (core/inject/native-sidecars.ts). Watched, not asked per pod: admission must answer quickly. Until
// the first list is in, auto answers as with no node known: no native sidecars.

import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { KubeInformer } from '../core/sources/kube-informer.js';
import { autoNativeSidecars, type NodeVersion } from '../core/inject/native-sidecars.js';

export class NodeVersions {
  readonly #nodes: KubeInformer;
  readonly #log: Logger;

  constructor(opts: { readonly kubeconfig: KubeConfig; readonly logger: Logger; readonly backoff?: { readonly initialMs: number; readonly maxMs: number } }) {
    this.#log = opts.logger;
    this.#nodes = new KubeInformer({ kubeconfig: opts.kubeconfig, logger: opts.logger, path: '/api/v1/nodes', ...(opts.backoff ? { backoff: opts.backoff } : {}) });
  }

  /** In the background: the webhook serves meanwhile, with auto off. */
  start(): void {
    this.#nodes.start().catch((err: unknown) => this.#log.warn({ err: (err as Error).message }, 'nodes not listed: native sidecars stay off until they are'));
  }

  /** auto's answer for a pod (on `podNodeName` when it is already scheduled). */
  nativeSidecars(podNodeName?: string): boolean {
    const nodes: NodeVersion[] = this.#nodes.list().map((n) => {
      const status = (n as unknown as { status?: { nodeInfo?: { kubeletVersion?: unknown } } }).status;
      return { name: n.metadata?.name ?? '', kubeletVersion: String(status?.nodeInfo?.kubeletVersion ?? '') };
    });
    return autoNativeSidecars(nodes, podNodeName);
  }

  close(): Promise<void> {
    return this.#nodes.close();
  }
}
