// The authenticate and authorize stages of the request pipeline, for every listener that serves a
// workload of its own (the gateway by its labels, a sidecar's inbound side): the request's JWT is
// checked (RequestAuthentication: a bad token is 401, none passes), then AuthorizationPolicy decides
// with everything known about the request — the peer certificate's principal, the connection's peer
// address (`ipBlocks`), the original client behind trusted proxies (`remoteIpBlocks`), the listener
// port, the normalized path, the token's principal and claims. A denial is 403 `RBAC: access denied`.
// A sidecar's outbound side has no workload to protect and skips both, as Istio's does.

import type { IncomingMessage } from 'node:http';
import type { RequestFacts } from '../routing/types.js';
import type { WorkloadSecurity } from '../policy/workload-security.js';
import type { AuthnHeaderEdits, AuthnResult, RequestAuth } from '../policy/request-authentication.js';
import { trustedClientAddress } from './client-address.js';
import { jwtDenied, rbacDenied, type LocalReply } from './respond.js';

/** What the connection knows about the caller and the destination. */
export interface SecurityPeer {
  /** The connection's peer address (`source.ip`, `ipBlocks`). */
  readonly address: string;
  /** The peer certificate's principal, without `spiffe://`; none for plaintext. */
  readonly principal?: string;
  /** The port the connection came in on (the workload's port at a sidecar, the listen port at a gateway). */
  readonly destinationPort: number;
  readonly destinationIp?: string;
  readonly sni?: string;
}

/** undefined: go on to the next stage; a reply: answer the request with it. */
export type StageOutcome = LocalReply | undefined;

/**
 * Runs authentication then authorization. Synchronous unless a token has to be verified, so a
 * request without one costs no promise. Header edits of a verified token (removing it, adding
 * claim headers) are applied to the request's headers before it goes on.
 */
export function authenticateAndAuthorize(security: WorkloadSecurity, req: IncomingMessage, facts: RequestFacts, peer: SecurityPeer, trustedProxies: number): StageOutcome | Promise<StageOutcome> {
  const authn = security.requestAuthentication.empty ? undefined : security.requestAuthentication.authenticate(req.headers, req.url ?? '/');
  if (authn instanceof Promise) return authn.then((r) => afterAuthn(security, req, facts, peer, trustedProxies, r));
  return afterAuthn(security, req, facts, peer, trustedProxies, authn);
}

function afterAuthn(security: WorkloadSecurity, req: IncomingMessage, facts: RequestFacts, peer: SecurityPeer, trustedProxies: number, authn: AuthnResult | undefined): StageOutcome {
  if (authn && !authn.ok) return jwtDenied(authn.reason);
  const auth = authn?.ok ? authn.auth : undefined;
  const denied = authorize(security, facts, peer, trustedProxies, auth);
  if (denied) return denied;
  if (authn?.ok && authn.edits) applyEdits(req, authn.edits);
  return undefined;
}

function authorize(security: WorkloadSecurity, facts: RequestFacts, peer: SecurityPeer, trustedProxies: number, auth: RequestAuth | undefined): StageOutcome {
  const authz = security.authorizer;
  if (authz.empty) return undefined;
  const decision = authz.evaluate({
    ...(peer.principal ? { principal: peer.principal } : {}),
    sourceIp: peer.address,
    remoteIp: trustedClientAddress(peer.address, facts.headers['x-forwarded-for'], trustedProxies),
    ...(peer.destinationIp ? { destinationIp: peer.destinationIp } : {}),
    destinationPort: peer.destinationPort,
    ...(peer.sni ? { sni: peer.sni } : {}),
    host: facts.authority,
    method: facts.method,
    path: facts.path,
    headers: facts.headers,
    ...(auth ? { auth } : {}),
  });
  return decision.allowed ? undefined : rbacDenied(decision.policy);
}

function applyEdits(req: IncomingMessage, edits: AuthnHeaderEdits): void {
  for (const name of edits.remove) delete req.headers[name];
  for (const [name, value] of Object.entries(edits.set)) req.headers[name] = value;
}
