// Writes the Gateway API status of each new snapshot to the API server: PUT on the status
// subresource of every GatewayClass, Gateway and route whose status would change, and of every
// Ingress served or no longer served (its load balancer addresses, or none: ingress/status.ts, which
// may name Nodes to read first). Writes go one at a time; snapshots arriving meanwhile collapse into
// the newest. In node-address mode the Nodes named are watched (ingress/node-watch.ts): a change
// of theirs writes the last snapshot's status again. A conflict (409: the object changed under us) needs nothing: the change brings a new
// snapshot, and with it a new write.

import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { kubeRequest } from '../sources/kube-request.js';
import type { Snapshot } from '../snapshot/snapshot.js';
import { gatewayServiceAddresses, statusChanged, statusObjects, type StatusObject } from './status-objects.js';
import { ingressStatusNodes, ingressStatusObjects, nodeExternalAddresses } from '../ingress/status.js';
import { NodeWatch } from '../ingress/node-watch.js';

export interface StatusWriterOptions {
  readonly kubeconfig: KubeConfig;
  readonly logger: Logger;
  readonly now?: () => Date;
}

export class GatewayApiStatusWriter {
  readonly #kc: KubeConfig;
  readonly #log: Logger;
  readonly #now: () => Date;
  #pending: Snapshot | undefined;
  #running: Promise<void> | undefined;
  /** The Ingresses whose status the last round wrote (or has yet to see cleared). */
  #ingressesServed: ReadonlySet<string> = new Set();
  #closed = false;
  /** The last snapshot queued: what a Node's change writes again. */
  #last: Snapshot | undefined;
  readonly #nodes: NodeWatch;

  constructor(opts: StatusWriterOptions) {
    this.#kc = opts.kubeconfig;
    this.#log = opts.logger;
    this.#now = opts.now ?? (() => new Date());
    this.#nodes = new NodeWatch(opts.kubeconfig, opts.logger, () => {
      if (this.#last) void this.write(this.#last);
    });
  }

  /** Queue the status of `snapshot`; returns when it (or a newer one) has been written. */
  write(snapshot: Snapshot): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#pending = snapshot;
    this.#last = snapshot;
    this.#running ??= this.#drain().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#pending = undefined;
    this.#last = undefined;
    await this.#nodes.close();
    await this.#running;
  }

  async #drain(): Promise<void> {
    while (this.#pending && !this.#closed) {
      const snapshot = this.#pending;
      this.#pending = undefined;
      const role = snapshot.role;
      const addresses = role.kind === 'gateway' ? gatewayServiceAddresses(snapshot.resources, role.namespace, role.labels) : [];
      const nodes = ingressStatusNodes(snapshot);
      this.#nodes.follow(nodes);
      const ingress = ingressStatusObjects(snapshot, this.#ingressesServed, await this.#nodeAddresses(nodes));
      this.#ingressesServed = ingress.served;
      const objects = [...statusObjects(snapshot.gatewayApi, this.#now(), { serviceAddresses: addresses, resources: snapshot.resources }), ...ingress.objects].filter(statusChanged);
      for (const o of objects) {
        if (this.#closed) return;
        await this.#put(o);
      }
    }
  }

  /**
   * The ExternalIP addresses of the first of `names` that can be read (istiod's choice: the first
   * running ingress gateway pod whose Node it finds). A Node that cannot be read (gone, or the RBAC
   * lacks `get` on nodes) is skipped, and said once per reason at debug level.
   */
  async #nodeAddresses(names: readonly string[]): Promise<Map<string, string[]>> {
    for (const name of names) {
      const path = `/api/v1/nodes/${encodeURIComponent(name)}`;
      try {
        const { status, text } = await kubeRequest(this.#kc, 'GET', path, { timeoutMs: 30_000 });
        if (status === 200) return new Map([[name, nodeExternalAddresses(JSON.parse(text) as unknown)]]);
        this.#log.debug({ path, status, answer: text.slice(0, 300) }, 'could not read the node of an ingress gateway pod');
      } catch (err) {
        this.#log.debug({ path, error: (err as Error).message }, 'could not read the node of an ingress gateway pod');
      }
    }
    return new Map();
  }

  async #put(o: StatusObject): Promise<void> {
    const r = o.resource;
    const apiVersion = String(r.raw.apiVersion ?? 'gateway.networking.k8s.io/v1');
    const scope = r.kind === 'GatewayClass' ? '' : `/namespaces/${encodeURIComponent(r.metadata.namespace)}`;
    const path = `/apis/${apiVersion}${scope}/${o.plural}/${encodeURIComponent(r.metadata.name)}/status`;
    try {
      const { status, text } = await kubeRequest(this.#kc, 'PUT', path, { body: { ...r.raw, status: o.status }, timeoutMs: 30_000 });
      if (status === 409) this.#log.debug({ path }, 'status write conflicted; the newer object brings another write');
      else if (status >= 300) this.#log.warn({ path, status, answer: text.slice(0, 300) }, 'could not write status');
    } catch (err) {
      this.#log.warn({ path, error: (err as Error).message }, 'could not write status');
    }
  }
}
