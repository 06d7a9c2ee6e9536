// What one TCP connection the proxy carried leaves behind, the one way every TCP path reports it —
// a routed cluster's (tcp-forward.ts), a sidecar's inbound side to its app, captured TCP under
// ALLOW_ANY and CONNECT tunnels (tcp-passthrough.ts): Istio's TCP metrics (opened when the upstream
// accepted, its bytes reported while open, closed with its flags) and, once the downstream and the
// upstream have both closed, the access-log line Envoy's tcp_proxy writes. A connection that never
// reached an upstream (UF, UH, NR, DC …) is counted too, opened and closed at its end with its flag,
// as Istio's stats filter reports every connection, not only the ones that carried bytes.

import type { Socket } from 'node:net';
import type { AccessLog, TcpOpened } from '../telemetry/access-log.js';
import type { WorkloadInfo } from '../telemetry/workload.js';
import { addressWithPort, socketEnds, type UpstreamSocketEnds } from './upstream-socket.js';
import { transportFailureReason } from './transport-failure.js';

export type TcpObserver = Pick<AccessLog, 'tcpOpened' | 'tcpClosed' | 'writeTcp'>;

export interface TcpRecordOptions {
  /** Where the metrics and the line go; without it nothing is reported (the summary still is). */
  readonly observer?: TcpObserver | undefined;
  readonly reporter: 'source' | 'destination';
  /** How metrics and the log name the destination: `outbound|…`, `inbound|<port>||`, `PassthroughCluster`; '' when none was chosen. */
  readonly cluster: string;
  /** The verified mesh peer that connected (server side). */
  readonly downstreamPeer?: WorkloadInfo | undefined;
  /** The SNI that chose the route (TLS passed through), for the access log. */
  readonly sni?: string | undefined;
  /** Where a captured connection was going (its original destination): Envoy's downstream local address for it. */
  readonly downstreamLocal?: { readonly address: string; readonly port: number } | undefined;
}

/** The connection as it ended. */
export interface TcpSummary {
  readonly cluster: string;
  /** `address:port` of the upstream used (or last tried). */
  readonly upstreamHost?: string;
  /** Envoy response flags: '' on success, `NR`, `NC`, `UH`, `UO`, `UF`, `UF,URX`, `DC` (client left first). */
  readonly flags: string;
  /** Bytes of the stream read from the downstream connection (bytes a listener peeked included) and written to it. */
  readonly bytesReceived: number;
  readonly bytesSent: number;
  readonly durationMs: number;
}

export class TcpConnectionRecord {
  /** Envoy's response flags so far; '' for none. */
  flags = '';
  upstreamHost: string | undefined;
  readonly #downstream: Socket;
  readonly #o: TcpRecordOptions;
  readonly #started = Date.now();
  readonly #remote: string;
  readonly #local: string | undefined;
  #upstreamConnection: UpstreamSocketEnds | undefined;
  #failureReason: string | undefined;
  /** What the downstream carried before the stream began (a CONNECT's request head; its 200 once connected). */
  readonly #readBefore: number;
  #writtenBefore: number;
  #opened: TcpOpened | undefined;
  #summary: TcpSummary | undefined;

  /** `initial`: bytes of the stream already read from `downstream` (a peeked ClientHello, sniffed bytes). */
  constructor(downstream: Socket, initial: number, o: TcpRecordOptions) {
    this.#downstream = downstream;
    this.#o = o;
    this.#remote = `${downstream.remoteAddress ?? ''}:${downstream.remotePort ?? 0}`;
    // Read while the connection is open: a closed socket no longer knows its address.
    const local = o.downstreamLocal ?? { address: downstream.localAddress, port: downstream.localPort };
    this.#local = addressWithPort(local.address, local.port);
    this.#readBefore = Math.max(0, downstream.bytesRead - initial);
    this.#writtenBefore = downstream.bytesWritten;
  }

  /** The upstream accepted the connection: counted as opened now, what it carries reported while it lasts. */
  connected(upstreamHost: string, socket: Socket, upstream: { readonly peer?: WorkloadInfo | undefined; readonly mtls?: boolean } = {}): void {
    this.upstreamHost = upstreamHost;
    this.#upstreamConnection = socketEnds(socket);
    this.#failureReason = undefined;
    // Whatever the proxy itself wrote before (a CONNECT's 200) is not the stream's.
    this.#writtenBefore = this.#downstream.bytesWritten;
    this.#opened = this.#labels(upstream.peer, upstream.mtls, this.#downstream);
    this.#o.observer?.tcpOpened?.(this.#opened);
  }

  /** An attempt to connect failed with `err`: its reason, in Envoy's words, goes on the line. */
  failedWith(err: unknown): void {
    this.#failureReason = transportFailureReason(err);
  }

  get isConnected(): boolean {
    return this.#opened !== undefined;
  }

  /** Everything has closed: counted closed and logged, once; later calls return the same summary. */
  finish(): TcpSummary {
    if (this.#summary) return this.#summary;
    const observer = this.#o.observer;
    // Closed with no verdict and never connected: the client left while the proxy chose or dialled.
    const flags = this.flags || (this.#opened ? '' : 'DC');
    const bytesReceived = Math.max(0, this.#downstream.bytesRead - this.#readBefore);
    const bytesSent = Math.max(0, this.#downstream.bytesWritten - this.#writtenBefore);
    let opened = this.#opened;
    if (!opened) {
      opened = this.#labels(undefined, false, undefined);
      observer?.tcpOpened?.(opened);
    }
    observer?.tcpClosed?.({ ...opened, flags: flags || '-', bytesReceived, bytesSent });
    const summary: TcpSummary = {
      cluster: this.#o.cluster,
      ...(this.upstreamHost !== undefined ? { upstreamHost: this.upstreamHost } : {}),
      flags,
      bytesReceived,
      bytesSent,
      durationMs: Date.now() - this.#started,
    };
    this.#summary = summary;
    const peers = { ...(opened.upstreamPeer ? { upstreamPeer: opened.upstreamPeer } : {}), ...(opened.downstreamPeer ? { downstreamPeer: opened.downstreamPeer } : {}) };
    observer?.writeTcp?.({
      ...summary,
      startTime: new Date(this.#started),
      upstreamCluster: summary.cluster,
      downstreamRemoteAddress: this.#remote,
      ...(this.#local !== undefined ? { downstreamLocalAddress: this.#local } : {}),
      ...(this.#upstreamConnection ? { upstreamConnection: this.#upstreamConnection } : {}),
      ...(this.#failureReason !== undefined ? { upstreamTransportFailureReason: this.#failureReason } : {}),
      ...(this.#o.sni ? { sni: this.#o.sni } : {}),
      ...peers,
    });
    return summary;
  }

  #labels(peer: WorkloadInfo | undefined, mtls: boolean | undefined, connection: Socket | undefined): TcpOpened {
    const o = this.#o;
    return {
      reporter: o.reporter,
      cluster: o.cluster,
      ...(peer ? { upstreamPeer: peer } : {}),
      ...(mtls ? { upstreamMtls: true } : {}),
      ...(o.downstreamPeer ? { downstreamPeer: o.downstreamPeer } : {}),
      ...(connection ? { connection } : {}),
    };
  }
}
