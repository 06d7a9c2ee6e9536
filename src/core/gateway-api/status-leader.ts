// The Gateway API and Ingress status a gateway workload computes, written by one of its replicas:
// the holder of a Lease in the gateway's namespace, as istiod writes status under its election
// istio-gateway-status-leader. Replicas of two versions side by side in a rolling update would
// otherwise each write the status their version computes, and write it again after each other's
// write, for as long as both run. Every replica keeps the newest snapshot, so one that becomes the
// leader writes the current status at once. The Lease is named after what the gateway serves: every
// Gateway (istiod's name), or its --gateway-name list (a hash of it), so that the replicas of one
// Deployment share it and gateways serving other Gateways do not.

import { createHash } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Snapshot } from '../snapshot/snapshot.js';
import { GATEWAY_STATUS_ELECTION, LeaderElection, defaultIdentity, type LeaseTiming } from '../sources/kube-leader-election.js';
import { GatewayApiStatusWriter } from './status-writer.js';

/** The Lease of the gateways serving these Gateways (`namespace/name`), or every Gateway. */
export function statusLeaseName(gatewayNames: ReadonlySet<string> | undefined): string {
  return gatewayNames ? `meshgate-gateway-status-${gatewayNamesHash(gatewayNames)}` : GATEWAY_STATUS_ELECTION;
}

/** What names the Leases of the replicas serving these Gateways, whatever their order. */
export function gatewayNamesHash(gatewayNames: ReadonlySet<string>): string {
  return createHash('sha256').update([...gatewayNames].sort().join(',')).digest('hex').slice(0, 12);
}

export interface ElectedStatusWriterOptions {
  readonly kubeconfig: KubeConfig;
  /** The gateway's namespace, where the Lease is. */
  readonly namespace: string;
  readonly gatewayNames?: ReadonlySet<string>;
  readonly logger: Logger;
  /** Default $POD_NAME. */
  readonly identity?: string;
  readonly timing?: Partial<LeaseTiming>;
}

export class ElectedStatusWriter {
  readonly #election: LeaderElection;
  #writer: GatewayApiStatusWriter | undefined;
  #last: Snapshot | undefined;

  constructor(opts: ElectedStatusWriterOptions) {
    const name = statusLeaseName(opts.gatewayNames);
    this.#election = new LeaderElection({
      kubeconfig: opts.kubeconfig,
      namespace: opts.namespace,
      name,
      identity: opts.identity ?? defaultIdentity(),
      logger: opts.logger.child({ component: 'leader-election', election: name }),
      ...(opts.timing ? { timing: opts.timing } : {}),
      lead: () => {
        const writer = new GatewayApiStatusWriter({ kubeconfig: opts.kubeconfig, logger: opts.logger });
        this.#writer = writer;
        if (this.#last) void writer.write(this.#last);
        return {
          close: async () => {
            if (this.#writer === writer) this.#writer = undefined;
            await writer.close();
          },
        };
      },
    });
    this.#election.start();
  }

  get leading(): boolean {
    return this.#election.leading;
  }

  /** Queues the status of `snapshot` when this replica writes status; keeps it either way. */
  write(snapshot: Snapshot): Promise<void> {
    this.#last = snapshot;
    return this.#writer?.write(snapshot) ?? Promise.resolve();
  }

  close(): Promise<void> {
    return this.#election.close();
  }
}
