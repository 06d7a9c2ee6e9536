// The security of one workload (a sidecar's app, or a gateway by its own labels), compiled once per
// snapshot: which PeerAuthentication mode each of its ports has, which RequestAuthentication rules
// check its tokens, and which AuthorizationPolicies decide its requests. A proxy asks for the current
// snapshot's answer on every request; the compile happens only when the snapshot changes. The JWKS
// cache outlives snapshots, so a reload does not refetch every issuer's keys. The trust domains
// (which peers are accepted, which domains principals stand for) depend on the snapshot's mesh
// config and on the proxy's own certificate; a certificate of another domain compiles again.

import type { Snapshot } from '../snapshot/snapshot.js';
import { compileAuthorization, type Authorizer } from './authorization.js';
import { JwksCache } from './jwks-cache.js';
import { compilePeerAuthentication, type PeerAuthenticationPolicy, type WorkloadRef } from './peer-authentication.js';
import { compileRequestAuthentication, type RequestAuthenticator } from './request-authentication.js';
import { trustDomainsOf, type TrustDomains } from '../pki/trust-domain.js';

export interface WorkloadSecurity {
  readonly peerAuthentication: PeerAuthenticationPolicy;
  readonly requestAuthentication: RequestAuthenticator;
  readonly authorizer: Authorizer;
  /** The trust domain of this proxy and its aliases: whose peers its inbound side accepts. */
  readonly trustDomains: TrustDomains;
}

export interface WorkloadSecurityOptions {
  readonly rootNamespace?: string;
  readonly jwks?: JwksCache;
  /** The SPIFFE id of the proxy's current workload certificate; absent without one. */
  readonly ownSpiffeId?: () => string | undefined;
}

export class WorkloadSecurityCache {
  readonly #compiled = new WeakMap<Snapshot, { readonly own: string | undefined; readonly security: WorkloadSecurity }>();
  readonly jwks: JwksCache;
  readonly #rootNamespace: string;
  readonly #ownSpiffeId: () => string | undefined;

  constructor(
    readonly workload: WorkloadRef,
    opts: WorkloadSecurityOptions = {},
  ) {
    this.jwks = opts.jwks ?? new JwksCache();
    this.#rootNamespace = opts.rootNamespace ?? 'istio-system';
    this.#ownSpiffeId = opts.ownSpiffeId ?? (() => undefined);
  }

  for(snapshot: Snapshot): WorkloadSecurity {
    const own = this.#ownSpiffeId();
    const known = this.#compiled.get(snapshot);
    if (known && known.own === own) return known.security;
    const root = this.#rootNamespace;
    const trustDomains = trustDomainsOf(snapshot.resources, own);
    const security: WorkloadSecurity = {
      peerAuthentication: compilePeerAuthentication(snapshot.resources, this.workload, root),
      requestAuthentication: compileRequestAuthentication(snapshot.resources, this.workload, this.jwks, root),
      authorizer: compileAuthorization(snapshot.resources, this.workload, root, trustDomains),
      trustDomains,
    };
    this.#compiled.set(snapshot, { own, security });
    return security;
  }
}
