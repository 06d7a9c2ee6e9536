// forwardTcp(): pipes one downstream connection to an endpoint of a weighted destination, as Envoy's
// tcp_proxy does for TLS passthrough and TCP routes. The bytes are never parsed; the ones a listener
// already read (the peeked ClientHello) go first. A missing cluster, no endpoint, or a failed connect
// closes the downstream connection, which is all TCP can say (no status code to send). The cluster's
// maxConnections turns connections away (UO) and connect failures count towards outlier ejection.
// Given the proxy's identity and a connector, the connection to the endpoint gets the TLS an HTTP
// request would (upstream-tls.ts): auto mTLS to an endpoint with a sidecar (ALPN `istio-peer-exchange`,
// `istio`, which tells the server sidecar it carries TCP), a DestinationRule's ISTIO_MUTUAL, SIMPLE
// or MUTUAL; a TLS failure counts as a connect failure (UF).
// Given an original destination (a headless Service's pod the app dialled), the cluster's endpoint at
// that address and port is the one used, never another: Envoy's ORIGINAL_DST cluster. A ServiceEntry
// with `resolution: NONE` has no endpoints: the dialled address is the endpoint.

import { connect, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { PEER_EXCHANGE_ALPN, PeerFrameStripper, peerFrame } from '../telemetry/tcp-peer-exchange.js';
import type { Slot } from '../policy/circuit-breaker.js';
import type { Cluster } from '../policy/types.js';
import type { Endpoint } from '../registry/types.js';
import { endpointPort } from '../registry/types.js';
import { originalEndpoint } from '../policy/original-dst.js';
import { endpointKey } from '../policy/lb-endpoints.js';
import type { DestinationTarget } from '../routing/types.js';
import { pickDestination } from './destination-pick.js';
import { workloadOfEndpoint } from '../telemetry/workload.js';
import type { IdentityProvider } from '../pki/types.js';
import { decideUpstreamTls } from '../tls/upstream-tls.js';
import { UpstreamTlsError, type UpstreamConnector } from '../tls/upstream-connector.js';
import { splice } from './tcp-passthrough.js';
import { TcpConnectionRecord, type TcpObserver, type TcpSummary } from './tcp-record.js';
import { connectTimeoutFor } from '../policy/connection-limits.js';
import type { PeerMetadata } from '../telemetry/peer-metadata.js';

/** A forwarded connection as it ended (tcp-record.ts). */
export type TcpForwardRecord = TcpSummary;

export interface TcpForwardDeps {
  readonly random: () => number;
  readonly connectTimeoutMs?: number;
  /** Called once, when the downstream connection (and the upstream one, if any) have closed. */
  readonly onDone?: (record: TcpForwardRecord) => void;
  /** Istio's TCP metrics (a connection opened to an endpoint, and closed) and the access-log line. */
  readonly observer?: TcpObserver;
  /** The SNI that chose the route (TLS passed through), for the access log. */
  readonly sni?: string;
  /**
   * The address and port the app dialled: when the chosen cluster has a ready endpoint there, the
   * connection goes to it alone (no load balancing, no retry elsewhere).
   */
  readonly originalDestination?: { readonly address: string; readonly port: number };
  /** Where a captured connection was going, for the access log's downstream local address (the listener's otherwise). */
  readonly downstreamLocal?: { readonly address: string; readonly port: number };
  /** TLS towards endpoints (auto mTLS, DestinationRule `tls`); without it every connection is plaintext. */
  readonly tls?: {
    readonly connector: UpstreamConnector;
    readonly identity?: IdentityProvider;
    /** This proxy's peer metadata: sent in Istio's TCP metadata exchange (tcp-peer-exchange.ts). */
    readonly peerMetadata?: PeerMetadata;
  };
}

/**
 * Connects `downstream` to one of `destinations` (by weight) and pipes both ways, half-closes
 * included. `initial` holds bytes already read from `downstream` (do not also `unshift` them).
 * A failed connect is tried once more on another endpoint when the cluster has one.
 */
export function forwardTcp(
  downstream: Socket,
  initial: Buffer,
  destinations: readonly DestinationTarget[],
  totalWeight: number,
  deps: TcpForwardDeps,
): void {
  const dest = pickDestination({ destinations, totalWeight }, deps.random);
  const record = new TcpConnectionRecord(downstream, initial.length, { observer: deps.observer, reporter: 'source', cluster: dest?.clusterName ?? '', sni: deps.sni, downstreamLocal: deps.downstreamLocal ?? deps.originalDestination });
  let open = 1; // sockets still to close before the record is written
  const report = (): void => {
    const summary = record.finish();
    deps.onDone?.(summary);
  };
  const closed = (): void => {
    if (--open === 0) report();
  };

  if (downstream.destroyed) {
    report();
    return;
  }
  // Each direction ends on its own: a client's FIN after its request must not cut off the reply.
  downstream.allowHalfOpen = true;
  downstream.on('error', () => downstream.destroy());
  downstream.once('close', closed);

  const refuse = (flag: string): void => {
    record.flags = flag;
    downstream.destroy();
  };
  if (!dest) return refuse('NR');
  const cluster = dest.cluster;
  if (!cluster) return refuse('NC');

  const timeoutMs = deps.connectTimeoutMs ?? connectTimeoutFor(undefined, cluster);
  const traffic = cluster.traffic;
  const outlier = (host: string, ok: boolean): void => {
    if (traffic?.outlier) traffic.outlier.detector.report(host, ok ? 200 : 'reset', traffic.outlier.settings, traffic.hostKeys);
  };
  const tried = new Set<Endpoint>();
  const original = deps.originalDestination && originalEndpoint(cluster, deps.originalDestination);
  // A pod of a headless Service is reached where it was dialled or not at all: load balancing a
  // connection meant for web-1 to web-0 is worse than refusing it (Envoy's ORIGINAL_DST has no fallback).
  const pinned = deps.originalDestination !== undefined && cluster.service.headless === true;
  const attempt = (retry: boolean): void => {
    if (pinned && !original) return refuse('UH');
    // The original destination is tried once; failing it is failing the connection.
    if (original && retry) return refuse('UF');
    const pick = original ?? pickEndpoint(cluster, downstream, tried);
    if (!pick) return refuse(retry ? 'UF,URX' : 'UH');
    tried.add(pick);
    const port = endpointPort(pick, cluster.port);
    record.upstreamHost = `${pick.address}:${port}`;
    const host = endpointKey(pick, cluster.port);
    const dial = (slot: Slot | undefined): void => {
      let upstream: Socket;
      let ready = 'connect';
      let mtls = false;
      // The connector's reading of a TLS failure, which the socket's own error event does not carry.
      let tlsFailure: Error | undefined;
      try {
        const decision = deps.tls ? decideUpstreamTls(cluster, pick, deps.tls.identity, cluster.service.hostname) : undefined;
        // Mutual TLS the rule asks for and this proxy cannot do is refused, never sent in plaintext.
        if (decision && !decision.ok) throw new UpstreamTlsError(decision.reason, decision.message);
        const profile = decision?.ok ? decision.profile : undefined;
        mtls = profile?.kind === 'ISTIO_MUTUAL';
        if (profile && deps.tls) {
          const opened = deps.tls.connector.open(profile, pick.address, port, [], (err) => (tlsFailure = err), timeoutMs);
          if (!opened.ok) throw opened.error;
          upstream = opened.socket;
          upstream.allowHalfOpen = true;
          ready = 'secureConnect';
        } else {
          upstream = connect({ host: pick.address, port, allowHalfOpen: true, noDelay: true });
        }
      } catch (err) {
        // An endpoint that cannot even be dialled (a bad port) fails like a refused connection.
        record.failedWith(err);
        slot?.release();
        outlier(host, false);
        return retry ? refuse('UF,URX') : attempt(true);
      }
      upstream.setTimeout(timeoutMs);

      const abandon = (): void => {
        upstream.destroy();
        slot?.release();
      };
      const cleanup = (): void => {
        upstream.off(ready, onConnect);
        upstream.off('error', onFail);
        upstream.off('timeout', onFail);
        downstream.off('close', abandon);
      };
      const onFail = (err?: Error): void => {
        record.failedWith(tlsFailure ?? err);
        cleanup();
        upstream.on('error', () => {}); // a late error of an abandoned attempt is not ours to raise
        upstream.destroy();
        slot?.release();
        outlier(host, false);
        if (downstream.destroyed) return;
        if (!retry) attempt(true);
        else refuse('UF,URX');
      };
      const onConnect = (): void => {
        cleanup();
        outlier(host, true);
        upstream.once('close', () => slot?.release());
        upstream.setTimeout(0);
        if (downstream.destroyed) {
          upstream.destroy();
          return;
        }
        open++;
        record.connected(`${pick.address}:${port}`, upstream, { peer: workloadOfEndpoint(pick), mtls });
        upstream.once('close', closed);
        // Istio's TCP metadata exchange when the server sidecar took `istio-peer-exchange`: our frame
        // first, and the server's answering frame kept out of what the app reads.
        const exchange = mtls && deps.tls?.peerMetadata !== undefined && (upstream as TLSSocket).alpnProtocol === PEER_EXCHANGE_ALPN;
        if (exchange) upstream.write(peerFrame(deps.tls!.peerMetadata!.exchange));
        splice(downstream, upstream, initial, exchange ? new PeerFrameStripper() : undefined);
      };
      // The client went away while we were still connecting.
      downstream.once('close', abandon);
      upstream.once(ready, onConnect);
      upstream.once('error', onFail);
      upstream.once('timeout', onFail);
    };
    const admission = traffic?.breaker.openConnection(traffic.limits);
    if (admission instanceof Promise) {
      // Counted by the `--workers` primary: dial once it answers; a client gone meanwhile frees the slot.
      void admission.then((slot) => (slot === 'overflow' ? refuse('UO') : downstream.destroyed ? slot.release() : dial(slot)));
      return;
    }
    if (admission === 'overflow') return refuse('UO');
    dial(admission);
  };
  attempt(false);
}

/** An endpoint from the cluster's load balancer, avoiding ones that already failed when it can. */
function pickEndpoint(cluster: Cluster, downstream: Socket, tried: ReadonlySet<Endpoint>): Endpoint | undefined {
  const pick = cluster.lb.pick({
    headers: {},
    sourceIp: downstream.remoteAddress ?? '',
    query: new Map(),
    ...(tried.size > 0 ? { exclude: tried } : {}),
  });
  return pick?.endpoint;
}
