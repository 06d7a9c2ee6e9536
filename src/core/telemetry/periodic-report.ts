// Reports what long-lived TCP connections and gRPC streams have carried so far, every reporting
// interval (Istio's `tcp_reporting_duration`: 5 s, or a Telemetry's `reportingInterval`), so that a connection or stream that
// stays open for hours shows in istio_tcp_sent_bytes_total / istio_tcp_received_bytes_total and in
// the gRPC message counters while it is open, not only when it ends. When it ends, only what was
// not reported yet is added: the totals are the same as if everything were counted at the end.

import type { RequestRecord, TcpClosed, TcpOpened } from './access-log.js';
import type { IstioMetrics } from './istio-metrics.js';

/** Istio's default reporting interval. */
export const DEFAULT_REPORTING_INTERVAL_MS = 5000;

interface OpenConnection {
  readonly opened: TcpOpened;
  sent: number;
  received: number;
}

export class PeriodicReports {
  private readonly connections = new Map<object, OpenConnection>();
  private readonly streams = new Set<RequestRecord>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly metrics: IstioMetrics,
    private intervalMs: number = DEFAULT_REPORTING_INTERVAL_MS,
  ) {}

  /** A TCP connection whose byte counts can be read while it is open (`connection`). */
  tcpOpened(c: TcpOpened): void {
    if (!c.connection) return;
    this.connections.set(c.connection, { opened: c, sent: 0, received: 0 });
    this.arm();
  }

  /** The record of a closing connection, less what was already reported of it. */
  tcpClosed(c: TcpClosed): TcpClosed {
    const open = c.connection ? this.connections.get(c.connection) : undefined;
    if (!open) return c;
    this.connections.delete(c.connection!);
    return { ...c, bytesSent: Math.max(0, c.bytesSent - open.sent), bytesReceived: Math.max(0, c.bytesReceived - open.received) };
  }

  /** A gRPC request started: its message counts are reported while it lasts. */
  streamStarted(r: RequestRecord): void {
    this.streams.add(r);
    this.arm();
  }

  /** It ended: the record's own observe step adds what is left (IstioMetrics.observeRequest). */
  streamEnded(r: RequestRecord): void {
    this.streams.delete(r);
  }

  /** One round of reports (the timer's; tests call it too). */
  report(): void {
    for (const [conn, o] of this.connections) {
      const { bytesWritten: sent, bytesRead: received } = conn as { bytesWritten: number; bytesRead: number };
      if (sent === o.sent && received === o.received) continue;
      this.metrics.tcpSoFar(o.opened, sent - o.sent, received - o.received);
      o.sent = sent;
      o.received = received;
    }
    for (const r of this.streams) this.metrics.grpcMessagesSoFar(r);
    if (this.connections.size === 0 && this.streams.size === 0) this.stop();
  }

  /** The interval in force (a Telemetry `reportingInterval`); a running timer takes it at once. */
  setInterval(ms: number): void {
    if (ms === this.intervalMs) return;
    this.intervalMs = ms;
    if (this.timer) {
      this.stop();
      this.arm();
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  // The timer runs only while something is open, and never holds the process open.
  private arm(): void {
    this.timer ??= setInterval(() => this.report(), this.intervalMs).unref();
  }
}
