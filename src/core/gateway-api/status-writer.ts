// Writes the Gateway API status of each new snapshot to the API server: PUT on the status
// subresource of every GatewayClass, Gateway and route whose status would change, and of every
// Ingress served (its load balancer addresses, ingress/status.ts). Writes go one
// at a time; snapshots arriving meanwhile collapse into the newest. A conflict (409: the object
// changed under us) needs nothing: the change brings a new snapshot, and with it a new write.

import { HttpMethod, RequestContext, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { fetch } from 'undici';
import type { Snapshot } from '../snapshot/snapshot.js';
import { gatewayServiceAddresses, statusChanged, statusObjects, type StatusObject } from './status-objects.js';
import { ingressStatusObjects } from '../ingress/status.js';

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
  #closed = false;

  constructor(opts: StatusWriterOptions) {
    this.#kc = opts.kubeconfig;
    this.#log = opts.logger;
    this.#now = opts.now ?? (() => new Date());
  }

  /** Queue the status of `snapshot`; returns when it (or a newer one) has been written. */
  write(snapshot: Snapshot): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#pending = snapshot;
    this.#running ??= this.#drain().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#pending = undefined;
    await this.#running;
  }

  async #drain(): Promise<void> {
    while (this.#pending && !this.#closed) {
      const snapshot = this.#pending;
      this.#pending = undefined;
      const role = snapshot.role;
      const addresses = role.kind === 'gateway' ? gatewayServiceAddresses(snapshot.resources, role.namespace, role.labels) : [];
      const objects = [...statusObjects(snapshot.gatewayApi, this.#now(), { serviceAddresses: addresses, resources: snapshot.resources }), ...ingressStatusObjects(snapshot)].filter(statusChanged);
      for (const o of objects) {
        if (this.#closed) return;
        await this.#put(o);
      }
    }
  }

  async #put(o: StatusObject): Promise<void> {
    const r = o.resource;
    const apiVersion = String(r.raw.apiVersion ?? 'gateway.networking.k8s.io/v1');
    const scope = r.kind === 'GatewayClass' ? '' : `/namespaces/${encodeURIComponent(r.metadata.namespace)}`;
    const path = `/apis/${apiVersion}${scope}/${o.plural}/${encodeURIComponent(r.metadata.name)}/status`;
    const body = JSON.stringify({ ...r.raw, status: o.status });
    try {
      const cluster = this.#kc.getCurrentCluster();
      if (!cluster) throw new Error('the kubeconfig has no current cluster');
      const ctx = new RequestContext(cluster.server + path, HttpMethod.PUT);
      await this.#kc.applySecurityAuthentication(ctx);
      const dispatcher = ctx.getDispatcher();
      try {
        const res = await fetch(ctx.getUrl(), {
          method: 'PUT',
          headers: { ...ctx.getHeaders(), accept: 'application/json', 'content-type': 'application/json' },
          body,
          ...(dispatcher ? { dispatcher } : {}),
          signal: AbortSignal.timeout(30_000),
        });
        const text = await res.text();
        if (res.status === 409) this.#log.debug({ path }, 'status write conflicted; the newer object brings another write');
        else if (res.status >= 300) this.#log.warn({ path, status: res.status, answer: text.slice(0, 300) }, 'could not write status');
      } finally {
        await dispatcher?.close().catch(() => undefined);
      }
    } catch (err) {
      this.#log.warn({ path, error: (err as Error).message }, 'could not write status');
    }
  }
}
