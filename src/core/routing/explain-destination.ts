// The second half of `meshgate explain`: what happens after the route picked a destination. The
// cluster and its endpoints (ready or not), 503 NC when there is no cluster and 503 UH when it has
// no ready endpoint, and then the decision of the destination's sidecar, which the gateway cannot
// see but the client will: its PeerAuthentication mode for the port, and its AuthorizationPolicy
// (DENY first, then ALLOW) evaluated for this request from the gateway's identity, with the rule.

import type { IncomingHttpHeaders } from 'node:http';
import { compileAuthorization } from '../policy/authorization.js';
import { trustDomainsOf } from '../pki/trust-domain.js';
import { compilePeerAuthentication } from '../policy/peer-authentication.js';
import type { Cluster } from '../policy/types.js';
import { endpointPort, type Endpoint } from '../registry/types.js';
import { resourceRef, type Resource } from '../model/resource.js';

export interface DestinationRequest {
  readonly host: string;
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  /** The gateway's identity without `spiffe://` (cluster.local/ns/istio-system/sa/…). */
  readonly principal: string;
}

export interface DestinationAnswer {
  readonly lines: string[];
  /** Set when the destination will not answer with the upstream's response: `503 UH`, `403 …`. */
  readonly verdict?: string;
}

export function explainDestination(cluster: Cluster, resources: readonly Resource[], req: DestinationRequest): DestinationAnswer {
  const lines: string[] = [];
  const all = cluster.service.endpoints;
  const ready = cluster.endpoints;
  const notReady = all.filter((e) => !e.ready).length;
  lines.push(`    cluster ${cluster.name}: load balancer ${cluster.lb.algorithm}${cluster.policy.source ? `, policy from ${cluster.policy.source}` : ''}`);
  // TLS the rule (or a BackendTLSPolicy's) originates replaces mesh mTLS, sidecar or not.
  const tls = cluster.policy.tls;
  const originated = tls?.mode === 'SIMPLE' || tls?.mode === 'MUTUAL';
  if (originated) lines.push(`    TLS ${tls.mode}${tls.sni ? `, SNI ${tls.sni}` : ''}, server certificate checked for ${(tls.subjectAltNames && tls.subjectAltNames.length > 0 ? tls.subjectAltNames : [tls.sni ?? 'the request host']).join(', ')}`);
  for (const e of ready) lines.push(`    endpoint ${e.address}:${endpointPort(e, cluster.port)} ready${e.meshTls ? (originated ? ', sidecar' : ', sidecar (mTLS)') : ', no sidecar'}${e.locality ? `, ${e.locality}` : ''}`);
  if (notReady > 0) lines.push(`    ${notReady} endpoint${notReady === 1 ? '' : 's'} of the service not ready (never picked)`);
  if (cluster.traffic?.outlier) lines.push('    outlier detection is on: ejections are live state, see the admin /clusters of a running gateway');
  if (ready.length === 0) {
    lines.push(`    no ready endpoint${cluster.subset ? ` in subset ${cluster.subset} (its labels select none)` : ''} → 503 UH`);
    return { lines, verdict: '503 UH (no healthy upstream)' };
  }
  // Every endpoint of one subset runs the same workload in practice: the first stands for them.
  const target = ready[0]!;
  if (!target.meshTls) {
    lines.push('    the endpoint runs no sidecar: no server-side policy applies');
    return { lines };
  }
  return serverSide(cluster, target, resources, req, lines);
}

function serverSide(cluster: Cluster, e: Endpoint, resources: readonly Resource[], req: DestinationRequest, lines: string[]): DestinationAnswer {
  const workload = { namespace: e.namespace, labels: e.labels };
  const port = endpointPort(e, cluster.port);
  const peer = compilePeerAuthentication(resources, workload);
  const mode = peer.modeFor(port);
  const plaintext = cluster.plaintextSidecars?.has(e) === true || cluster.policy.tls?.mode === 'DISABLE';
  const who = Object.entries(e.labels).filter(([k]) => k === 'app' || k === 'version').map(([k, v]) => `${k}=${v}`).join(',');
  lines.push(`    destination sidecar (${e.namespace}${who ? ` ${who}` : ''}) port ${port}: mTLS ${mode}${peer.sourceFor(port) ? ` (${peer.sourceFor(port)})` : ' (no PeerAuthentication: default)'}`);
  if (mode === 'STRICT' && plaintext) {
    lines.push(`      the gateway sends plaintext here (${cluster.policy.tls?.mode === 'DISABLE' ? `tls DISABLE in ${cluster.policy.source ?? 'the DestinationRule'}` : 'auto mTLS off'}), which STRICT refuses → 503 UC`);
    return { lines, verdict: '503 UC (the destination sidecar requires mTLS)' };
  }
  const principal = plaintext ? undefined : req.principal;
  lines.push(`      caller identity: ${principal ?? 'none (plaintext)'}`);
  // The destination's certificate is not at hand here: its trust domains are the mesh config's.
  const authz = compileAuthorization(resources, workload, 'istio-system', trustDomainsOf(resources, undefined));
  if (authz.empty) {
    lines.push('      AuthorizationPolicy: none applies, every request is allowed');
    return { lines };
  }
  const decision = authz.evaluate({
    ...(principal ? { principal } : {}),
    sourceIp: '127.0.0.1',
    destinationPort: port,
    host: req.host,
    method: req.method,
    path: req.path,
    headers: req.headers,
  });
  // What an external authorizer will say cannot be known here: explain says who is asked first.
  for (const ask of decision.ask ?? []) lines.push(`      CUSTOM: ${ask.policy} sends the request to provider "${ask.provider}" first, which must allow it`);
  const policy = resources.find((r) => resourceRef(r) === decision.policy);
  const where = policy ? ` (${policy.origin.file}:${policy.origin.line})` : '';
  lines.push(`      AuthorizationPolicy: ${decision.allowed ? 'allowed' : 'denied'}: ${decision.reason}${where}`);
  if (decision.allowed) return { lines };
  return { lines, verdict: `403 RBAC: access denied (${decision.policy ?? 'no ALLOW rule matched'})` };
}
