// The authorize stage for a connection passed through as TCP (a sidecar's inbound side: opaque TCP,
// TLS the app terminates itself, mesh mTLS carrying TCP; a gateway's PASSTHROUGH and TCP servers):
// AuthorizationPolicy's L4 rules decide (policy/authorization.ts `evaluateTcp`) on what a connection
// has — the peer certificate's principal (and its namespace), the peer address (`ipBlocks`,
// `remoteIpBlocks`, which on TCP is the same address), the port, the SNI. As Istio builds its TCP
// filter chains: an ALLOW rule with an HTTP-only field (methods, paths, hosts, headers,
// requestPrincipals, request.* conditions) never matches a connection, and in a DENY rule those fields
// are dropped, so the rule denies more (fail closed). A denied connection is closed before a byte
// reaches the destination, and, as Envoy's RBAC network filter reports it (termination details
// `rbac_deny_close`, no response flag), counted in the TCP metrics and logged. Dry-run policies
// (`istio.io/dry-run`) decide nothing here either: their shadow result is logged as for HTTP
// (dry-run-log.ts), one line per action and connection.

import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { SnapshotHolder } from '../../snapshot/holder.js';
import type { WorkloadSecurityCache } from '../../policy/workload-security.js';
import type { AuthzDecision, TcpAuthzRequest } from '../../policy/authorization.js';
import { logDryRun } from './dry-run-log.js';
import type { AccessLog } from '../../telemetry/access-log.js';
import { principalOf } from '../../pki/spiffe.js';
import { peerOfRequest, type WorkloadInfo } from '../../telemetry/workload.js';

export interface ConnectionAuthorization {
  readonly holder: SnapshotHolder;
  /** The workload whose policies apply (a sidecar's app, a gateway by its labels). */
  readonly security: WorkloadSecurityCache;
  readonly accessLog: AccessLog;
  readonly log: Logger;
}

/** What is known about a connection to pass through. */
export interface ConnectionFacts {
  /** The downstream socket (the TLS socket when mesh mTLS was terminated). */
  readonly socket: Socket;
  /** The port the connection was for (the app's port at a sidecar, the listen port at a gateway). */
  readonly destinationPort: number;
  /** `spiffe://…` of a verified peer certificate; none for plaintext and passed-through TLS. */
  readonly spiffeId?: string;
  /** Who the peer is, when it said more than its certificate does (Istio's TCP metadata exchange). */
  readonly downstreamPeer?: WorkloadInfo;
  readonly sni?: string;
  /** How the TCP metrics name the destination (`inbound|<port>||` at a sidecar). */
  readonly cluster: string;
  readonly reporter: 'source' | 'destination';
}

/** True when the connection may go on; otherwise it has been closed, counted and logged. */
export function authorizeConnection(a: ConnectionAuthorization, c: ConnectionFacts): boolean {
  const decision = decide(a, c);
  const { socket } = c;
  if (decision.allowed) return true;
  const downstreamPeer = c.downstreamPeer ?? peerOfRequest({}, c.spiffeId);
  const labels = { reporter: c.reporter, cluster: c.cluster, ...(downstreamPeer ? { downstreamPeer } : {}) };
  a.accessLog.tcpOpened?.(labels);
  a.accessLog.tcpClosed?.({ ...labels, flags: '-', bytesReceived: socket.bytesRead, bytesSent: 0 });
  a.accessLog.writeTcp?.({
    startTime: new Date(),
    durationMs: 0,
    flags: '-',
    terminationDetails: 'rbac_deny_close',
    bytesReceived: socket.bytesRead,
    bytesSent: 0,
    upstreamCluster: c.cluster,
    downstreamRemoteAddress: `${socket.remoteAddress ?? ''}:${socket.remotePort ?? 0}`,
    ...(c.sni ? { sni: c.sni } : {}),
  });
  a.log.info(
    {
      remote: `${socket.remoteAddress ?? ''}:${socket.remotePort ?? 0}`,
      destinationPort: c.destinationPort,
      ...(c.spiffeId ? { principal: c.spiffeId } : {}),
      ...(c.sni ? { sni: c.sni } : {}),
      policy: decision.policy ?? 'none',
      reason: decision.reason,
      connection_termination_details: 'rbac_deny_close',
    },
    'connection denied: AuthorizationPolicy',
  );
  socket.destroy();
  return false;
}

function decide(a: ConnectionAuthorization, c: ConnectionFacts): AuthzDecision {
  const snapshot = a.holder.current();
  // No configuration yet: no policy to check against, so closed, not open.
  if (!snapshot) return { allowed: false, reason: 'no configuration yet' };
  const { socket } = c;
  const authz = a.security.for(snapshot).authorizer;
  const request: TcpAuthzRequest = {
    ...(c.spiffeId ? { principal: principalOf(c.spiffeId) } : {}),
    sourceIp: socket.remoteAddress ?? '',
    ...(socket.localAddress ? { destinationIp: socket.localAddress } : {}),
    destinationPort: c.destinationPort,
    ...(c.sni ? { sni: c.sni } : {}),
  };
  // Dry-run policies are evaluated before the enforced ones decide, whatever they decide, as
  // Envoy's network RBAC filter runs its shadow rules on every connection.
  if (authz.dryRun) {
    logDryRun(a.log, authz.evaluateDryRunTcp(request), { remote: `${socket.remoteAddress ?? ''}:${socket.remotePort ?? 0}`, destinationPort: c.destinationPort, ...(c.spiffeId ? { principal: c.spiffeId } : {}) });
  }
  return authz.evaluateTcp(request);
}
