// Which replica of a gateway orders its ACME certificates: the holder of one Lease in the gateway's
// namespace, `meshgate-gateway-acme` (a hash of the --gateway-name list is appended when the gateway
// serves only those Gateways, as for its status Lease), elected as every meshgate controller is
// (core/sources/kube-leader-election.ts). The other replicas serve what the holder writes to the
// Secrets and answer its HTTP-01 challenges from the Secret it publishes them in. When the holder
// stops renewing (it died, or lost the API server), another takes the Lease once it has run out and
// orders whatever is still missing or due; an order the old holder had in flight is not finalized
// and writes nothing.
//
// A Lease of its own rather than the status writer's: ACME runs also where no status is written
// (`--control` with `--credentials kubernetes`), and an order that takes minutes should not hold up
// or be cut short by status work. One Lease for every certificate, as cert-manager's single
// controller: its cost does not grow with the number of certificates.

import type { Logger } from 'pino';
import { gatewayNamesHash, type ElectedStatusWriterOptions } from '../../core/gateway-api/status-leader.js';
import { LeaderElection, defaultIdentity } from '../../core/sources/kube-leader-election.js';
import type { SecretReader, SecretWriter } from '../../core/tls/types.js';
import type { AcmeManager } from './acme-manager.js';
import { CHALLENGE_SECRET, SecretChallenges } from './secret-challenges.js';

export const ACME_ELECTION = 'meshgate-gateway-acme';

/** The ACME Lease of the gateways serving these Gateways (`namespace/name`), or every Gateway. */
export function acmeLeaseName(gatewayNames: ReadonlySet<string> | undefined): string {
  return gatewayNames ? `${ACME_ELECTION}-${gatewayNamesHash(gatewayNames)}` : ACME_ELECTION;
}

/** As for the status writer's: an election among the replicas of one gateway, in its namespace. */
export type AcmeElectionOptions = ElectedStatusWriterOptions;

/**
 * The ordering side of a replicated gateway: the Lease, and the Secret where challenges are
 * published. `challenges` goes to every process's AcmeManager; `attach` (one process per replica)
 * makes the manager order while the Lease is this replica's.
 */
export class AcmeElection {
  readonly identity: string;
  readonly lease: string;
  readonly #opts: AcmeElectionOptions;
  #election: LeaderElection | undefined;

  constructor(opts: AcmeElectionOptions) {
    this.#opts = opts;
    this.identity = opts.identity ?? defaultIdentity();
    this.lease = acmeLeaseName(opts.gatewayNames);
  }

  /** Where this replica publishes and reads HTTP-01 answers. */
  challenges(secrets: SecretReader & SecretWriter): SecretChallenges {
    return new SecretChallenges({ secrets, identity: this.identity, lease: this.lease, logger: this.#opts.logger });
  }

  /** Who holds the Lease, as far as this replica knows. */
  holder(): string | undefined {
    return this.#election?.holder;
  }

  /** Runs the election; while this replica leads, `manager` orders (after clearing what a dead predecessor left). */
  attach(manager: AcmeManager, challenges: SecretChallenges): void {
    if (this.#election) throw new Error('the ACME election runs once');
    const log = this.#opts.logger;
    this.#election = new LeaderElection({
      kubeconfig: this.#opts.kubeconfig,
      namespace: this.#opts.namespace,
      name: this.lease,
      identity: this.identity,
      logger: log.child({ component: 'leader-election', election: this.lease }),
      ...(this.#opts.timing ? { timing: this.#opts.timing } : {}),
      lead: () => {
        void challenges.withdrawLeftovers().then(
          (n) => n > 0 && log.info({ secret: CHALLENGE_SECRET, removed: n }, 'removed HTTP-01 answers the previous ACME orderer left behind'),
          (err: unknown) => log.warn({ error: (err as Error).message }, 'cannot remove the HTTP-01 answers the previous ACME orderer left behind; they expire on their own'),
        );
        return manager.lead();
      },
    });
    this.#election.start();
  }

  /** Stops ordering and gives the Lease up, so another replica orders at its next try. */
  close(): Promise<void> {
    return this.#election?.close() ?? Promise.resolve();
  }
}
