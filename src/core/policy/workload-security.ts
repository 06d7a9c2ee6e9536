// The inbound security of one workload, compiled once per snapshot: which PeerAuthentication mode
// each of its ports has, and which AuthorizationPolicies decide its requests. A proxy asks for the
// current snapshot's answer on every connection; the compile happens only when the snapshot changes.

import type { Snapshot } from '../snapshot/snapshot.js';
import { compileAuthorization, type Authorizer } from './authorization.js';
import { compilePeerAuthentication, type PeerAuthenticationPolicy, type WorkloadRef } from './peer-authentication.js';

export interface WorkloadSecurity {
  readonly peerAuthentication: PeerAuthenticationPolicy;
  readonly authorizer: Authorizer;
}

export class WorkloadSecurityCache {
  readonly #compiled = new WeakMap<Snapshot, WorkloadSecurity>();

  constructor(
    private readonly workload: WorkloadRef,
    private readonly rootNamespace = 'istio-system',
  ) {}

  for(snapshot: Snapshot): WorkloadSecurity {
    let s = this.#compiled.get(snapshot);
    if (!s) {
      s = {
        peerAuthentication: compilePeerAuthentication(snapshot.resources, this.workload, this.rootNamespace),
        authorizer: compileAuthorization(snapshot.resources, this.workload, this.rootNamespace),
      };
      this.#compiled.set(snapshot, s);
    }
    return s;
  }
}
