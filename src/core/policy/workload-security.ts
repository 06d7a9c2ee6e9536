// The security of one workload (a sidecar's app, or a gateway by its own labels), compiled once per
// snapshot: which PeerAuthentication mode each of its ports has, which RequestAuthentication rules
// check its tokens, and which AuthorizationPolicies decide its requests. A proxy asks for the current
// snapshot's answer on every request; the compile happens only when the snapshot changes. The JWKS
// cache outlives snapshots, so a reload does not refetch every issuer's keys.

import type { Snapshot } from '../snapshot/snapshot.js';
import { compileAuthorization, type Authorizer } from './authorization.js';
import { JwksCache } from './jwks-cache.js';
import { compilePeerAuthentication, type PeerAuthenticationPolicy, type WorkloadRef } from './peer-authentication.js';
import { compileRequestAuthentication, type RequestAuthenticator } from './request-authentication.js';

export interface WorkloadSecurity {
  readonly peerAuthentication: PeerAuthenticationPolicy;
  readonly requestAuthentication: RequestAuthenticator;
  readonly authorizer: Authorizer;
}

export class WorkloadSecurityCache {
  readonly #compiled = new WeakMap<Snapshot, WorkloadSecurity>();
  readonly jwks: JwksCache;

  constructor(
    readonly workload: WorkloadRef,
    private readonly rootNamespace = 'istio-system',
    jwks?: JwksCache,
  ) {
    this.jwks = jwks ?? new JwksCache();
  }

  for(snapshot: Snapshot): WorkloadSecurity {
    let s = this.#compiled.get(snapshot);
    if (!s) {
      s = {
        peerAuthentication: compilePeerAuthentication(snapshot.resources, this.workload, this.rootNamespace),
        requestAuthentication: compileRequestAuthentication(snapshot.resources, this.workload, this.jwks, this.rootNamespace),
        authorizer: compileAuthorization(snapshot.resources, this.workload, this.rootNamespace),
      };
      this.#compiled.set(snapshot, s);
    }
    return s;
  }
}
