// The authenticate stage of the request pipeline, for listeners that serve a workload of their own
// (the gateway by its labels, a sidecar's inbound side; ctx.security): the workload's policies for the
// request's snapshot are found, and the request's JWT is checked (RequestAuthentication: a bad token
// is 401, none passes; policy/request-authentication.ts), and its header edits are made at once
// (the token header removed, claim headers set, client-sent claim headers dropped). The peer certificate's identity is the
// listener's to say (tls/peer-identity.ts) and is read by authorize. A listener with a workload but
// no configuration yet has no policy to check against: closed (503 UH), not open. A sidecar's
// outbound side has no workload to protect and does not run this stage, as Istio's does not.

import type { AuthnResult } from '../../policy/request-authentication.js';
import { jwtDenied, LocalReplies } from '../respond.js';
import { dashSpelling } from '../headers.js';
import { routedDestinationOf } from './select.js';
import type { Exchange, StageResult } from './exchange.js';

export function authenticate(ex: Exchange): StageResult | Promise<StageResult> {
  const { ctx, snapshot, req } = ex;
  if (!ctx.security || ex.authenticated) return undefined;
  // Once per request: select runs this first when routes match on JWT claims.
  ex.authenticated = true;
  if (!snapshot) return LocalReplies.noHealthyUpstream;
  const security = ctx.security.for(snapshot);
  ex.security = security;
  if (security.requestAuthentication.empty) return undefined;
  // Synchronous unless a token has to be verified, so a request without one costs no promise.
  const authn = security.requestAuthentication.authenticate(req.headers, req.url ?? '/');
  return authn instanceof Promise ? authn.then((r) => verified(ex, r)) : verified(ex, authn);
}

function verified(ex: Exchange, authn: AuthnResult | undefined): StageResult {
  if (!authn) return undefined;
  if (!authn.ok) {
    routedDestinationOf(ex);
    return jwtDenied(authn.reason);
  }
  ex.auth = authn.auth;
  // The token's header goes and the claim headers are written now, before authorization and any
  // external authorizer read the request, as Envoy's jwt_authn filter edits it ahead of ext_authz
  // and RBAC: a `when` on `request.headers[<claim header>]` reads the verified claim, never a value
  // the client sent under that name.
  const edits = authn.edits;
  if (edits) {
    const headers = ex.req.headers;
    for (const name of edits.remove) delete headers[name];
    // A client's `x_user_group` is `x-user-group` to CGI-style backends (headers.ts, dashSpelling).
    if (edits.remove.length > 0) {
      for (const name in headers) {
        const dashed = dashSpelling(name);
        if (dashed !== undefined && edits.remove.includes(dashed)) delete headers[name];
      }
    }
    for (const name in edits.set) headers[name] = edits.set[name];
  }
  return undefined;
}
