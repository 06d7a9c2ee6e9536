// Leader election between replicas, as istiod elects: one coordination.k8s.io/v1 Lease per
// controller in the replicas' namespace, held by one pod at a time (holderIdentity: its name). The
// control plane elects the holders of its root publisher and gateway deployer (control/main.ts), a
// gateway the one of its replicas that writes status (gateway-api/status-leader.ts); everything
// else runs on every replica. Two replicas (of two versions, in a rolling upgrade) then never write
// the same objects against each other.
//
// The rules are client-go's, with istiod's timing (30 s lease, 15 s renew deadline, a try every
// 7.5 s). A replica takes the Lease when nobody holds it, when it names the replica itself, or when
// its record has not changed for leaseDurationSeconds as this replica's own clock measures it (the
// clocks of two machines are never compared). Every write carries the resourceVersion read, so of
// two replicas writing at once the API server lets one through and answers the other 409. The
// holder renews every try; when no renewal has gone through for the renew deadline, shorter than
// the lease, it stops its controller first, so it has stopped before any other replica may take
// over. It then keeps trying, like the others. Closing stops the controller and gives the Lease up
// (holderIdentity cleared), so a successor takes over at its next try instead of after the lease.

import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { isRecord } from '../config/load.js';
import { describeError, kubeJson } from './kube-request.js';

/** istiod's Lease names: the namespace controller (the root ConfigMaps), and the gateway deployment controller of revision default. */
export const NAMESPACE_CONTROLLER_ELECTION = 'istio-namespace-controller-election';
export const GATEWAY_DEPLOYMENT_ELECTION = 'istio-gateway-deployment-default';
/** istiod's Lease for the Gateway API status; here a gateway's, in its namespace, when it serves every Gateway. */
export const GATEWAY_STATUS_ELECTION = 'istio-gateway-status-leader';

export interface LeaseTiming {
  /** How long a Lease not renewed stays another replica's (written as leaseDurationSeconds, at least 1). */
  readonly leaseDurationMs: number;
  /** How long the holder may go without a renewal before it stops leading; less than the lease. */
  readonly renewDeadlineMs: number;
  /** Time between tries, to take the Lease or to renew it. */
  readonly retryPeriodMs: number;
}

/** istiod's: a 30 s lease, renewDeadline half of it, a try every quarter. */
export const ISTIOD_LEASE_TIMING: LeaseTiming = { leaseDurationMs: 30_000, renewDeadlineMs: 15_000, retryPeriodMs: 7_500 };
/** How long the release on close may take, at least: one GET and one PUT. */
const RELEASE_TIMEOUT_MS = 2_000;

/** What identifies this replica in a Lease: the pod's name (POD_NAME, from the downward API), else the host's name and a random part. */
export function defaultIdentity(env: NodeJS.ProcessEnv = process.env): string {
  return env.POD_NAME || `${hostname()}_${randomUUID().slice(0, 8)}`;
}

/** The leader-only work: started on gaining the Lease, closed on losing it. */
export interface LeaderWork {
  close(): Promise<void>;
}

export interface LeaderElectionOptions {
  readonly kubeconfig: KubeConfig;
  readonly namespace: string;
  /** The Lease's name. */
  readonly name: string;
  readonly identity: string;
  readonly logger: Logger;
  readonly timing?: Partial<LeaseTiming>;
  /** Starts the leader-only work; called again each time leadership is gained. */
  readonly lead: () => LeaderWork;
  /** Told of each change of leadership (for the metrics). */
  readonly onChange?: (leading: boolean) => void;
}

type Json = Record<string, unknown>;

/** A MicroTime as the API server parses it: RFC 3339 with exactly six fractional digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaderElection {
  readonly #opts: LeaderElectionOptions;
  readonly #timing: LeaseTiming;
  readonly #path: string;
  #leading = false;
  #closed = false;
  #started = false;
  #closing: Promise<void> | undefined;
  #next: NodeJS.Timeout | undefined;
  #deadline: NodeJS.Timeout | undefined;
  #attempt: Promise<void> | undefined;
  readonly #abort = new AbortController();
  /** The record last seen (its resourceVersion) and when, by this replica's clock. */
  #observed: { rv: string; at: number } | undefined;
  #holder = '';
  /** Starting and stopping the work, one after the other. */
  #work: LeaderWork | undefined;
  #transitions: Promise<void> = Promise.resolve();

  constructor(opts: LeaderElectionOptions) {
    this.#opts = opts;
    this.#timing = { ...ISTIOD_LEASE_TIMING, ...opts.timing };
    if (this.#timing.renewDeadlineMs >= this.#timing.leaseDurationMs) throw new Error('the renew deadline must be shorter than the lease');
    this.#path = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(opts.namespace)}/leases`;
  }

  get leading(): boolean {
    return this.#leading;
  }

  get name(): string {
    return this.#opts.name;
  }

  /** Who held the Lease at the last look (this replica's identity when leading); undefined before the first or when nobody did. */
  get holder(): string | undefined {
    return this.#leading ? this.#opts.identity : this.#holder || undefined;
  }

  start(): void {
    if (this.#closed || this.#started) return;
    this.#started = true;
    this.#try();
  }

  /** Stops the work, then gives the Lease up if this replica holds it. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      clearTimeout(this.#next);
      this.#abort.abort(new Error('closed'));
      await this.#attempt;
      this.#stepDown(undefined);
      await this.#transitions;
      // Whether leading or not: a try that went through as we closed may have left it ours.
      if (this.#started) await this.#release();
    })();
    return this.#closing;
  }

  #try(): void {
    this.#next = undefined;
    this.#attempt = this.#tryAcquireOrRenew().finally(() => {
      this.#attempt = undefined;
      if (this.#closed) return;
      // Trying to take it, a little jitter keeps replicas that started together from asking in step.
      const wait = this.#timing.retryPeriodMs * (this.#leading ? 1 : 1 + Math.random() * 0.2);
      this.#next = setTimeout(() => this.#try(), wait);
      this.#next.unref();
    });
  }

  async #tryAcquireOrRenew(): Promise<void> {
    const { identity, logger: log } = this.#opts;
    const sentAt = Date.now();
    try {
      const got = await this.#request('GET', this.#leasePath(), [200, 404]);
      if (got.status === 404) {
        // 409: another replica created it first.
        const created = await this.#request('POST', this.#path, [201, 200, 409], this.#lease({}, sentAt, 0, true));
        if (created.status !== 409) this.#won(sentAt);
        return;
      }
      // When this replica saw the record: from the answer, not the question (a record written
      // while the GET was on its way must not look older than it is).
      const seenAt = Date.now();
      const lease = got.body;
      const meta = isRecord(lease.metadata) ? lease.metadata : {};
      const spec = isRecord(lease.spec) ? lease.spec : {};
      const holder = typeof spec.holderIdentity === 'string' ? spec.holderIdentity : '';
      this.#holder = holder;
      const rv = String(meta.resourceVersion ?? '');
      if (this.#observed?.rv !== rv) this.#observed = { rv, at: seenAt };
      const seconds = typeof spec.leaseDurationSeconds === 'number' && spec.leaseDurationSeconds > 0 ? spec.leaseDurationSeconds : this.#seconds();
      if (holder !== '' && holder !== identity && this.#observed.at + seconds * 1000 > Date.now()) {
        // Another replica holds it; had it been ours, our deadline would have stopped us already.
        if (this.#leading) this.#stepDown(`${holder} holds the Lease now`);
        return;
      }
      const transitions = typeof spec.leaseTransitions === 'number' ? spec.leaseTransitions : 0;
      const taking = holder !== identity;
      // 409: written in between (the resourceVersion sent is no longer current); the next try reads it again.
      const put = await this.#request('PUT', this.#leasePath(), [200, 409], this.#lease(lease, sentAt, taking ? transitions + 1 : transitions, taking));
      if (put.status === 200) this.#won(sentAt);
    } catch (err) {
      if (this.#closed) return;
      log.warn({ lease: this.#where(), error: describeError(err), leading: this.#leading }, this.#leading ? 'cannot renew the leader Lease; trying again' : 'cannot read or take the leader Lease; trying again');
    }
  }

  /** The Lease as this replica writes it: held by it, renewed at `at`. */
  #lease(old: Json, at: number, transitions: number, acquired: boolean): Json {
    const meta = isRecord(old.metadata) ? old.metadata : {};
    const spec = isRecord(old.spec) ? old.spec : {};
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { ...meta, name: this.#opts.name, namespace: this.#opts.namespace },
      spec: {
        ...spec,
        holderIdentity: this.#opts.identity,
        leaseDurationSeconds: this.#seconds(),
        renewTime: microTime(at),
        ...(acquired ? { acquireTime: microTime(at) } : {}),
        leaseTransitions: transitions,
      },
    };
  }

  #seconds(): number {
    return Math.max(1, Math.ceil(this.#timing.leaseDurationMs / 1000));
  }

  /** A write sent at `sentAt` went through: leading until the renew deadline, counted from then. */
  #won(sentAt: number): void {
    if (this.#closed) return;
    clearTimeout(this.#deadline);
    this.#deadline = setTimeout(() => this.#stepDown(`no renewal for ${this.#timing.renewDeadlineMs / 1000} s`), Math.max(0, sentAt + this.#timing.renewDeadlineMs - Date.now()));
    this.#deadline.unref();
    if (this.#leading) return;
    this.#leading = true;
    this.#opts.logger.info({ lease: this.#where(), identity: this.#opts.identity }, 'leader election lock obtained: running this controller');
    this.#opts.onChange?.(true);
    this.#transitions = this.#transitions.then(() => {
      if (!this.#leading || this.#work) return;
      try {
        this.#work = this.#opts.lead();
      } catch (err) {
        this.#opts.logger.error({ lease: this.#where(), error: describeError(err) }, 'cannot start this controller');
      }
    });
  }

  /** Stops leading; `why` is logged (none when closing). */
  #stepDown(why: string | undefined): void {
    clearTimeout(this.#deadline);
    this.#deadline = undefined;
    if (!this.#leading) return;
    this.#leading = false;
    if (why) this.#opts.logger.warn({ lease: this.#where(), identity: this.#opts.identity, reason: why }, 'leader election lock lost: stopping this controller');
    else this.#opts.logger.info({ lease: this.#where(), identity: this.#opts.identity }, 'giving up the leader election lock: stopping this controller');
    this.#opts.onChange?.(false);
    this.#transitions = this.#transitions.then(async () => {
      const work = this.#work;
      this.#work = undefined;
      await work?.close().catch((err: unknown) => this.#opts.logger.warn({ lease: this.#where(), error: describeError(err) }, 'stopping the controller failed'));
    });
  }

  /** Clears holderIdentity (as client-go releases), if the Lease still names this replica. */
  async #release(): Promise<void> {
    const { identity, kubeconfig: kc, logger: log } = this.#opts;
    // Not the try's period (which tests set to tens of ms): giving up is worth a moment on the way out.
    const opts = { timeoutMs: Math.max(this.#timing.retryPeriodMs, RELEASE_TIMEOUT_MS) };
    try {
      const { status, body: lease } = await kubeJson(kc, 'GET', this.#leasePath(), [200, 404], undefined, opts);
      const spec = isRecord(lease.spec) ? lease.spec : {};
      if (status !== 200 || spec.holderIdentity !== identity) return;
      const now = microTime(Date.now());
      await kubeJson(kc, 'PUT', this.#leasePath(), [200], { ...lease, spec: { ...spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: now, acquireTime: now } }, opts);
      log.info({ lease: this.#where(), identity }, 'leader election lock released');
    } catch (err) {
      log.warn({ lease: this.#where(), error: describeError(err) }, 'cannot release the leader Lease; another replica takes it when it runs out');
    }
  }

  #request(method: 'GET' | 'POST' | 'PUT', path: string, expect: readonly number[], body?: Json): Promise<{ status: number; body: Json }> {
    // An answer later than a try's period is as good as none: the deadline timer, not the request, decides.
    return kubeJson(this.#opts.kubeconfig, method, path, expect, body, { signal: this.#abort.signal, timeoutMs: this.#timing.retryPeriodMs });
  }

  #leasePath(): string {
    return `${this.#path}/${encodeURIComponent(this.#opts.name)}`;
  }

  #where(): string {
    return `${this.#opts.namespace}/${this.#opts.name}`;
  }
}
