// The authorize stage of the request pipeline: AuthorizationPolicy (CUSTOM, DENY, then ALLOW;
// policy/authorization.ts) decides with everything known about the request — the peer certificate's
// principal, the connection's peer address (`ipBlocks`), the original client behind trusted proxies
// (`remoteIpBlocks`), the port the connection came in on, the normalized path, the token's principal
// and claims. A denial is 403 `RBAC: access denied` naming the deciding policy. A request CUSTOM
// policies matched waits for their external authorizers first (../ext-authz.ts), whose denial comes
// before DENY and ALLOW, as Envoy's ext_authz filter comes before its RBAC filters. The verified
// token's header edits (forwardOriginalToken, outputClaimToHeaders) were made by authenticate, so
// every check here reads the headers the upstream will get.
// Dry-run policies (`istio.io/dry-run`) decide nothing; what they would have decided is logged, one
// line per request and action (dry-run-log.ts), and kept on the record for the span's tags and the
// RBAC shadow series (rbac-stats.ts).

import { principalOf } from '../../pki/spiffe.js';
import { clientAddressOf } from '../client-address.js';
import { rbacDenied } from '../respond.js';
import { whenNeeded } from '../../runtime/when-needed.js';
import { currentCertificate } from '../../tls/upstream-tls.js';
import type { AuthzDecision, AuthzRequest } from '../../policy/authorization.js';
import { logDryRun } from './dry-run-log.js';
import { routedDestinationOf } from './select.js';
import type { Exchange, StageResult } from './exchange.js';
import { factsOf } from './exchange.js';

// The external authorizers' client (HTTP and gRPC, four modules) is loaded with the first request a
// CUSTOM policy sends to one: most proxies have no such policy (runtime/when-needed.ts).
const extAuthz = whenNeeded<typeof import('../ext-authz.js')>('../ext-authz.js', import.meta.url);

export function authorize(ex: Exchange): StageResult | Promise<StageResult> {
  const { security, req, listener, ctx, remoteAddress, auth } = ex;
  if (!security) return undefined;
  const facts = factsOf(ex);
  const authz = security.authorizer;
  if (!authz.empty || authz.dryRun) {
    const socket = req.socket;
    const principal = listener.peerPrincipal?.(req);
    const peerNames = listener.peerNames?.(req);
    const request: AuthzRequest = {
      ...(principal ? { principal: principalOf(principal) } : {}),
      ...(peerNames ? { peerNames } : {}),
      sourceIp: remoteAddress,
      remoteIp: clientAddressOf(ex),
      ...(socket.localAddress ? { destinationIp: socket.localAddress } : {}),
      destinationPort: listener.destinationPort?.(req) ?? socket.localPort ?? ex.port,
      host: facts.authority,
      method: facts.method,
      path: facts.path,
      headers: facts.headers,
      ...(auth ? { auth } : {}),
    };
    if (authz.dryRun) {
      const results = authz.evaluateDryRun(request);
      logDryRun(ctx.log, results, { requestId: ex.requestId });
      // Envoy's stat prefix of the listener: a sidecar's inbound port, or a gateway's.
      ex.record.rbacDryRun = { statPrefix: `${listener.localApp ? 'inbound' : 'outbound'}_0.0.0.0_${request.destinationPort}`, results };
    }
    if (authz.empty) return undefined;
    const decision = authz.evaluate(request);
    if (decision.ask) {
      const { snapshot, res } = ex;
      const peer = {
        sourcePort: socket.remotePort,
        sourcePrincipal: principal,
        destinationAddress: socket.localAddress,
        destinationPort: socket.localPort,
        destinationPrincipal: ctx.identity ? currentCertificate(ctx.identity)?.spiffeId : undefined,
        requestId: ex.requestId,
        scheme: facts.scheme,
        protocol: req.httpVersionMajor === 2 ? 'HTTP/2' : `HTTP/${req.httpVersion}`,
      };
      const asked = { req, res, facts, remoteAddress, providers: snapshot?.extAuthz, ctx: { pools: ctx.meshPools ?? ctx.pools, identity: ctx.identity }, peer };
      return extAuthz().askAuthorizers(asked, decision.ask).then((refused) => {
        if (!refused) return decided(ex, decision);
        routedDestinationOf(ex);
        return refused;
      });
    }
    return decided(ex, decision);
  }
  return undefined;
}

/** What DENY and ALLOW say, once any external authorizer has allowed. */
function decided(ex: Exchange, decision: AuthzDecision): StageResult {
  if (!decision.allowed) {
    routedDestinationOf(ex);
    return rbacDenied(decision.policy);
  }
  return undefined;
}
